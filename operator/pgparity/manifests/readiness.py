"""Conditions generic tools read (kstatus), and whether a validation ran past its deadline.

kstatus — what Flux's health checks, cli-utils (``kpt live status``) and ``kubectl wait`` build
on — judges any resource by three conditions beside ``observedGeneration``: ``Reconciling``
True means in progress, ``Stalled`` True means failed (it needs a person or a new spec), and
neither means current; ``Ready`` says whether it is usable. pgparity keeps its own conditions and
phase, and derives these three from them, in the same status patch:

- MigrationValidation: Ready only for VALIDATED; Reconciling while Pending, WaitingForClone or
  Running; Stalled for REJECTED and for Failed (no verdict). So a Flux gate fails on a rejected
  migration, and ``kubectl wait --for=condition=Ready mv/NAME`` waits for a validated one.
- StagingClone: Ready as before; Stalled for what will not heal by itself (``STALLED_REASONS``,
  the same list the Argo CD health check has); Reconciling for everything else not Ready.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pgparity.manifests.conditions import set_condition
from pgparity.models.common import Condition, ConditionStatus
from pgparity.models.migration_validation import MigrationValidationStatus, ValidationPhase
from pgparity.models.report import Verdict
from pgparity.models.staging_clone import ClonePhase, StagingCloneStatus

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, RECONCILING, STALLED = "Ready", "Reconciling", "Stalled"
IN_PROGRESS = (ValidationPhase.PENDING, ValidationPhase.WAITING_FOR_CLONE, ValidationPhase.RUNNING)
# Reasons of a clone's conditions that need a person: an invalid spec, a failed seeding Job, a
# database that must not be used as a clone, a Secret without the replica's DSN.
STALLED_REASONS = frozenset(
    {"InvalidSpec", "SeedJobFailed", "NotAClone", "NotAPrimary", "NoReplicaDsn"}
)
# The Validated condition's reason when the Job's activeDeadlineSeconds stopped it (Job + the
# reason the job controller gives).
DEADLINE_REASON = "JobDeadlineExceeded"


def _by_type(conditions: Iterable[Condition]) -> dict[str, Condition]:
    return {c.type: c for c in conditions}


def _set_all(
    conditions: tuple[Condition, ...],
    states: Iterable[tuple[str, ConditionStatus, str, str]],
    now: str,
    generation: int,
) -> tuple[Condition, ...]:
    for type_, state, reason, message in states:
        conditions = set_condition(conditions, type_, state, reason, message, now, generation)
    return conditions


def validation_conditions(
    status: MigrationValidationStatus, now: str, generation: int
) -> tuple[Condition, ...]:
    """``status.conditions`` with Ready, Reconciling and Stalled derived from it."""
    validated = _by_type(status.conditions).get("Validated")
    reason = validated.reason if validated else "Pending"
    message = status.message or (validated.message if validated else "")
    verdict, phase = status.verdict, status.phase
    ready = phase is ValidationPhase.COMPLETED and verdict is Verdict.VALIDATED
    stalled = phase is ValidationPhase.FAILED or (
        phase is ValidationPhase.COMPLETED and verdict is Verdict.REJECTED
    )
    reconciling = phase is None or phase in IN_PROGRESS
    return _set_all(
        status.conditions,
        (
            (READY, TRUE if ready else FALSE, reason, message),
            (RECONCILING, TRUE if reconciling else FALSE, reason, message),
            (STALLED, TRUE if stalled else FALSE, reason, message),
        ),
        now,
        generation,
    )


def clone_conditions(
    status: StagingCloneStatus, now: str, generation: int
) -> tuple[Condition, ...]:
    """``status.conditions`` (with Ready already decided) plus Reconciling and Stalled."""
    found = _by_type(status.conditions)
    ready = found.get(READY)
    stuck = _stalled_by(status)
    if stuck is not None:
        stalled = (STALLED, TRUE, stuck.reason, stuck.message)
        reconciling = (RECONCILING, FALSE, stuck.reason, stuck.message)
    else:
        reason = ready.reason if ready else "Pending"
        message = status.message or (ready.message if ready else "")
        is_ready = ready is not None and ready.status is TRUE
        stalled = (STALLED, FALSE, reason, message)
        reconciling = (RECONCILING, FALSE if is_ready else TRUE, reason, message)
    return _set_all(status.conditions, (reconciling, stalled), now, generation)


def _stalled_by(status: StagingCloneStatus) -> Condition | None:
    """The first condition not True for a reason that needs a person (phase Failed is one)."""
    derived = (RECONCILING, STALLED)
    not_true = [c for c in status.conditions if c.status is not TRUE and c.type not in derived]
    stuck = next((c for c in not_true if c.reason in STALLED_REASONS), None)
    if stuck is None and status.phase is ClonePhase.FAILED:
        stuck = _by_type(status.conditions).get(READY) or next(iter(not_true), None)
    return stuck


def deadline_exceeded(status: MigrationValidationStatus, deadline_seconds: int, now: str) -> bool:
    """The validation ran past ``spec.deadlineSeconds``: its Job was stopped at its deadline,
    or it is still running past it (the job controller did not stop it yet)."""
    if status.phase is ValidationPhase.FAILED:
        validated = _by_type(status.conditions).get("Validated")
        return validated is not None and validated.reason == DEADLINE_REASON
    if status.phase is ValidationPhase.RUNNING and status.started_at:
        return _seconds(status.started_at, now) > deadline_seconds
    return False


def _seconds(start: str, end: str) -> float:
    def parse(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    return (parse(end) - parse(start)).total_seconds()
