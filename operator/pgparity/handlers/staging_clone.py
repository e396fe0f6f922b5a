"""StagingClone: create a builtin clone's objects or check an external one; report readiness.

Conditions: Provisioned (the objects exist / the external database answers), Seeded (the seeding
Job finished / the data is complete), ReplicaStreaming (a replica really streams from the
primary), Ready (all three). A clone that cannot become ready says why in the condition reason
and an Event, and is checked again and again (with backoff) — never a silent hang.

Each clone has a coroutine (a kopf daemon) that reconciles its status; it holds no thread while
it waits, and the PostgreSQL checks and Kubernetes calls run in ``handlers.common``'s bounded
pool, with timeouts. Ready clones are sampled for the metrics by ``handlers.sampler``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import kopf

from pgparity import metrics
from pgparity.clonecheck import CloneHealth, inspect_clone
from pgparity.errors import CallTimeoutError, PgparityError, SpecError
from pgparity.handlers.common import (
    StatusWriter,
    announce,
    api,
    database,
    handler_error,
    now,
    options,
    runtime,
    sleep_until_woken,
)
from pgparity.kube import client as kube
from pgparity.manifests.clone import CloneRef, build_clone_objects, names
from pgparity.manifests.conditions import set_condition
from pgparity.manifests.readiness import clone_conditions
from pgparity.manifests.status import retry_delay
from pgparity.models.common import GROUP, VERSION, Condition, ConditionStatus, Reason
from pgparity.models.staging_clone import (
    KIND,
    PLURAL,
    ClonePhase,
    DataSummary,
    Endpoints,
    Provider,
    StagingCloneSpec,
    StagingCloneStatus,
)

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


@dataclass(frozen=True)
class Observed:
    """What one tick found, condition by condition: (status, reason, message)."""

    provisioned: tuple[ConditionStatus, str, str]
    seeded: tuple[ConditionStatus, str, str]
    streaming: tuple[ConditionStatus, str, str]
    secret: str | None = None
    health: CloneHealth | None = None


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def run_clone(
    body: kopf.Body,
    name: str,
    namespace: str | None,
    uid: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Check one clone when its spec changes, at each resync, and — while it is not Ready —
    again and again with exponential backoff (``manifests.status.retry_delay``)."""
    assert namespace is not None
    shared = runtime(memo)
    writer = StatusWriter(KIND)
    wake = shared.wakes.register(KIND, namespace, name)
    failures = 0
    try:
        while True:
            try:
                ready = await _reconcile_once(body, CloneRef(name, namespace, uid), writer)
            except PgparityError as exc:
                # The API server is slow or refuses, a call outlived its deadline: kopf runs
                # this daemon again after the delay, and it continues from what exists;
                # nothing is half-written.
                raise handler_error(exc) from exc
            failures = 0 if ready else failures + 1
            await sleep_until_woken(
                wake,
                options().reconcile_seconds
                if ready
                else retry_delay(failures, options().reconcile_seconds),
            )
    finally:
        shared.wakes.forget(KIND, namespace, name)


async def _reconcile_once(body: kopf.Body, clone: CloneRef, writer: StatusWriter) -> bool:
    """Observe the clone, patch its status if anything changed; whether it is Ready."""
    generation = int(body.get("metadata", {}).get("generation") or 0)
    current = writer.current(body)
    previous = _parse_status(current)
    spec: StagingCloneSpec | None = None
    try:
        spec = StagingCloneSpec.parse(dict(body.get("spec", {})))
    except SpecError as exc:
        invalid = (UNKNOWN, Reason.INVALID_SPEC, "")
        observed = Observed((FALSE, Reason.INVALID_SPEC, str(exc)), invalid, invalid)
    else:
        observed = await _observe(clone, spec)
    new = _status(previous, observed, spec, generation).to_dict()
    ready = new.get("phase") == ClonePhase.READY.value
    metrics.set_clone_ready(clone.namespace, clone.name, ready)
    if await writer.write(body, current, new):
        announce(
            body,
            current,
            new,
            reason=Reason.READY if ready else _reason(new),
            message=str(new.get("message") or ""),
            warning=new.get("phase") == ClonePhase.FAILED.value,
        )
    return ready


def _parse_status(current: Mapping[str, Any]) -> StagingCloneStatus:
    try:
        return StagingCloneStatus.parse(current)
    except SpecError:
        return StagingCloneStatus()


def _reason(status: Mapping[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            return str(condition.get("reason") or Reason.NOT_READY)
    return Reason.NOT_READY


async def _observe(clone: CloneRef, spec: StagingCloneSpec) -> Observed:
    if spec.provider is Provider.BUILTIN:
        return await _builtin(clone, spec)
    return await _external(clone, spec)


async def _builtin(clone: CloneRef, spec: StagingCloneSpec) -> Observed:
    n = names(clone.name)
    existing = await api(kube.get, "v1", "Secret", n["secret"], clone.namespace)
    # A new password only for a new clone: the Secret, once made, is the source of truth.
    password = secrets.token_urlsafe(24) if existing is None else ""
    for body in build_clone_objects(
        clone,
        spec,
        password=password,
        postgres_image=options().postgres_image,
        pgparity_image=options().image,
        operator_namespace=options().operator_namespace,
    ):
        if body["kind"] == "Secret" and existing is not None:
            continue
        await api(kube.create_missing, body)
    provisioned = (
        TRUE,
        Reason.OBJECTS_CREATED,
        "StatefulSets, Services, Secret, ConfigMap and NetworkPolicy exist",
    )
    primary = await _ready_replicas(clone.namespace, n["primary"])
    replicas = await _ready_replicas(clone.namespace, n["replica"])
    seeded = await _seed_state(clone.namespace, n["seed"], spec)
    if primary < 1:
        return Observed(
            provisioned,
            seeded,
            (UNKNOWN, Reason.PRIMARY_NOT_READY, "the primary's pod is not ready"),
            n["secret"],
        )
    if replicas < spec.replicas:
        return Observed(
            provisioned,
            seeded,
            (FALSE, Reason.REPLICAS_NOT_READY, f"{replicas}/{spec.replicas} replica pods ready"),
            n["secret"],
        )
    data = await api(kube.secret_data, clone.namespace, n["secret"]) or {}
    return await _checked(clone, provisioned, seeded, n["secret"], data)


async def _ready_replicas(namespace: str, statefulset: str) -> int:
    found = await api(kube.get, "apps/v1", "StatefulSet", statefulset, namespace)
    return int(((found or {}).get("status") or {}).get("readyReplicas") or 0)


async def _seed_state(
    namespace: str, job_name: str, spec: StagingCloneSpec
) -> tuple[ConditionStatus, str, str]:
    if spec.source is None:
        return TRUE, Reason.NO_SOURCE, "nothing to seed"
    job = await api(kube.get, "batch/v1", "Job", job_name, namespace)
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") == "Complete":
            return TRUE, Reason.SEED_JOB_COMPLETE, f"seeding Job {job_name} completed"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return FALSE, Reason.SEED_JOB_FAILED, str(condition.get("message") or "seeding failed")
    return UNKNOWN, Reason.SEEDING, f"seeding Job {job_name} is running"


async def _external(clone: CloneRef, spec: StagingCloneSpec) -> Observed:
    assert spec.external is not None
    secret = spec.external.secret_ref.name
    data = await api(kube.secret_data, clone.namespace, secret)
    if data is None or "dsn" not in data:
        missing = (FALSE, Reason.SECRET_NOT_FOUND, f"Secret {secret} with key dsn not found")
        return Observed(
            missing,
            (UNKNOWN, Reason.SECRET_NOT_FOUND, ""),
            (UNKNOWN, Reason.SECRET_NOT_FOUND, ""),
            secret,
        )
    provisioned = (TRUE, Reason.EXTERNAL, f"an existing database named by Secret {secret}")
    seeded = (TRUE, Reason.EXTERNAL, "the external database holds its own data")
    return await _checked(clone, provisioned, seeded, secret, data)


async def _checked(
    clone: CloneRef,
    provisioned: tuple[ConditionStatus, str, str],
    seeded: tuple[ConditionStatus, str, str],
    secret: str,
    data: Mapping[str, str],
) -> Observed:
    health = await _inspect(clone, data.get("dsn") or "", data.get("replicaDsn"))
    if not health.reachable or not health.marked:  # unreachable, or maybe production
        return Observed(
            (FALSE, health.reason, health.message),
            seeded,
            (UNKNOWN, health.reason, health.message),
            secret,
            health,
        )
    if health.seed_state not in (None, "complete"):
        seeded = (FALSE, Reason.SEED_INCOMPLETE, f"pgparity.seed_state is {health.seed_state}")
    streaming = (
        TRUE if health.replica_ok else FALSE,
        Reason.STREAMING if health.replica_ok else health.reason,
        f"{health.streaming_replicas} replica(s) streaming"
        if health.replica_ok
        else health.message,
    )
    return Observed(provisioned, seeded, streaming, secret, health)


async def _inspect(clone: CloneRef, dsn: str, replica_dsn: str | None) -> CloneHealth:
    about = ("check", clone.namespace, clone.name)
    try:
        return await database("the clone check", about, inspect_clone, dsn, replica_dsn)
    except CallTimeoutError as exc:
        return CloneHealth(reachable=False, reason=Reason.CHECK_TIMED_OUT, message=str(exc))


def _status(
    previous: StagingCloneStatus, observed: Observed, spec: StagingCloneSpec | None, generation: int
) -> StagingCloneStatus:
    at = now()
    conditions: tuple[Condition, ...] = previous.conditions
    for type_, (state, reason, message) in (
        ("Provisioned", observed.provisioned),
        ("Seeded", observed.seeded),
        ("ReplicaStreaming", observed.streaming),
    ):
        conditions = set_condition(
            conditions, type_, state, reason or Reason.UNKNOWN, message, at, generation
        )
    parts = (observed.provisioned, observed.seeded, observed.streaming)
    ready = all(state is TRUE for state, _, _ in parts)
    blocking = next(
        ((reason, message) for state, reason, message in parts if state is not TRUE),
        (Reason.READY, "primary and replicas streaming"),
    )
    conditions = set_condition(
        conditions,
        "Ready",
        TRUE if ready else FALSE,
        Reason.READY if ready else blocking[0] or Reason.NOT_READY,
        blocking[1],
        at,
        generation,
    )
    health = observed.health
    status = replace(
        previous,
        phase=_phase(observed, ready),
        conditions=conditions,
        endpoints=_endpoints(observed),
        schema_digest=health.digest if health and health.digest else previous.schema_digest,
        schema_digest_short=(health.digest or "")[7:19]
        if health and health.digest
        else previous.schema_digest_short,
        data=DataSummary(tables=health.tables, rows=health.rows, bytes=health.bytes)
        if health and health.marked
        else previous.data,
        replicas_ready=health.streaming_replicas if health else 0,
        parameters=dict(spec.postgres.parameters) if spec else {},
        message=blocking[1] if not ready else "ready",
        observed_generation=generation,
    )
    return replace(status, conditions=clone_conditions(status, at, generation))


def _phase(observed: Observed, ready: bool) -> ClonePhase:
    if ready:
        return ClonePhase.READY
    if observed.provisioned[1] == Reason.INVALID_SPEC or (
        observed.seeded[0] is FALSE and observed.seeded[1] == Reason.SEED_JOB_FAILED
    ):
        return ClonePhase.FAILED
    if observed.provisioned[0] is not TRUE:
        return ClonePhase.PROVISIONING
    if observed.seeded[0] is not TRUE:
        return ClonePhase.SEEDING
    return ClonePhase.PROVISIONING


def _endpoints(observed: Observed) -> Endpoints | None:
    if observed.secret is None:
        return None
    return Endpoints(secret_name=observed.secret)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def forget_clone(name: str, namespace: str | None, **_: Any) -> None:
    if namespace is not None:
        metrics.forget_clone(namespace, name)
