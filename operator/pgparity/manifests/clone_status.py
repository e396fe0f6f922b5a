"""A StagingClone's next status from what one check found: pure, so every branch is tested.

The handler (``handlers.staging_clone``) observes — the objects it made, the seeding Job, the
database's health — and says so as one ``ConditionState`` per condition; these functions
decide the conditions, the Ready condition's reason, the phase and the rest of the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from pgparity.manifests.conditions import set_condition
from pgparity.manifests.readiness import clone_conditions
from pgparity.models.clone_health import CloneHealth
from pgparity.models.common import Condition, ConditionStatus, Reason
from pgparity.models.staging_clone import ClonePhase, DataSummary, Endpoints, StagingCloneStatus

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
READY_MESSAGE = "primary and replicas streaming"


@dataclass(frozen=True)
class ConditionState:
    """One condition as a check found it."""

    status: ConditionStatus
    reason: str  # a Reason, or the health check's
    message: str

    @property
    def true(self) -> bool:
        return self.status is TRUE


@dataclass(frozen=True)
class CloneObservation:
    """What one check found, condition by condition, and the database's health if asked."""

    provisioned: ConditionState
    seeded: ConditionState
    streaming: ConditionState
    secret: str | None = None
    health: CloneHealth | None = None
    derived: Mapping[str, str] | None = None  # production's parameters (builtin + spec.parity)

    @property
    def parts(self) -> tuple[ConditionState, ConditionState, ConditionState]:
        return (self.provisioned, self.seeded, self.streaming)

    @property
    def ready(self) -> bool:
        return all(part.true for part in self.parts)

    @property
    def blocking(self) -> ConditionState:
        """The first condition that is not True (Ready's reason and message), if any."""
        return next(
            (part for part in self.parts if not part.true),
            ConditionState(TRUE, Reason.READY, READY_MESSAGE),
        )


def invalid_spec(problem: str) -> CloneObservation:
    unknown = ConditionState(UNKNOWN, Reason.INVALID_SPEC, "")
    return CloneObservation(ConditionState(FALSE, Reason.INVALID_SPEC, problem), unknown, unknown)


def judge_health(
    provisioned: ConditionState, seeded: ConditionState, secret: str, health: CloneHealth
) -> CloneObservation:
    """The conditions once the database was checked: not provisioned while it cannot be
    reached or is not marked as a clone (it may be production); seeded only when complete."""
    if not health.reachable or not health.marked:
        return CloneObservation(
            ConditionState(FALSE, health.reason, health.message),
            seeded,
            ConditionState(UNKNOWN, health.reason, health.message),
            secret,
            health,
        )
    if health.seed_state not in (None, "complete"):
        seeded = ConditionState(
            FALSE, Reason.SEED_INCOMPLETE, f"pgparity.seed_state is {health.seed_state}"
        )
    if health.replica_ok:
        streaming = ConditionState(
            TRUE, Reason.STREAMING, f"{health.streaming_replicas} replica(s) streaming"
        )
    else:
        streaming = ConditionState(FALSE, health.reason, health.message)
    return CloneObservation(provisioned, seeded, streaming, secret, health)


def observed_conditions(
    previous: tuple[Condition, ...], observed: CloneObservation, now: str, generation: int
) -> tuple[Condition, ...]:
    conditions = previous
    for type_, part in (
        ("Provisioned", observed.provisioned),
        ("Seeded", observed.seeded),
        ("ReplicaStreaming", observed.streaming),
    ):
        reason = part.reason or Reason.UNKNOWN
        conditions = set_condition(
            conditions, type_, part.status, reason, part.message, now, generation
        )
    ready, blocking = observed.ready, observed.blocking
    return set_condition(
        conditions,
        "Ready",
        TRUE if ready else FALSE,
        Reason.READY if ready else blocking.reason or Reason.NOT_READY,
        blocking.message,
        now,
        generation,
    )


def clone_status(
    previous: StagingCloneStatus,
    observed: CloneObservation,
    parameters: Mapping[str, str] | None,
    *,
    now: str,
    generation: int,
) -> StagingCloneStatus:
    """``parameters``: the spec's PostgreSQL parameters (None: the spec is invalid)."""
    health = observed.health
    ready = observed.ready
    status = replace(
        previous,
        phase=clone_phase(observed),
        conditions=observed_conditions(previous.conditions, observed, now, generation),
        endpoints=Endpoints(secret_name=observed.secret) if observed.secret else None,
        schema_digest=health.digest if health and health.digest else previous.schema_digest,
        schema_digest_short=health.digest[7:19]
        if health and health.digest
        else previous.schema_digest_short,
        data=DataSummary(tables=health.tables, rows=health.rows, bytes=health.bytes)
        if health and health.marked
        else previous.data,
        replicas_ready=health.streaming_replicas if health else 0,
        parameters=dict(parameters or {}),
        message="ready" if ready else observed.blocking.message,
        observed_generation=generation,
    )
    # kstatus' Reconciling and Stalled, from the status just decided.
    return replace(status, conditions=clone_conditions(status, now, generation))


def clone_phase(observed: CloneObservation) -> ClonePhase:
    """Ready; Failed when only a person can help (a bad spec, a failed seed); else how far."""
    if observed.ready:
        return ClonePhase.READY
    seeded = observed.seeded
    if observed.provisioned.reason == Reason.INVALID_SPEC or (
        seeded.status is FALSE and seeded.reason == Reason.SEED_JOB_FAILED
    ):
        return ClonePhase.FAILED
    if not observed.provisioned.true:
        return ClonePhase.PROVISIONING
    if not seeded.true:
        return ClonePhase.SEEDING
    return ClonePhase.PROVISIONING


def clone_event_reason(status: StagingCloneStatus) -> str:
    """The reason an Event gives for a status: Ready, or the first condition's that is not."""
    if status.phase is ClonePhase.READY:
        return Reason.READY
    for condition in status.conditions:
        if condition.status is not TRUE:
            return condition.reason or Reason.NOT_READY
    return Reason.NOT_READY
