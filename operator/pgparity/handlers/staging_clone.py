"""StagingClone: create a builtin clone's objects or check an external one; report readiness.

Conditions: Provisioned (the objects exist / the external database answers), Seeded (the seeding
Job finished / the data is complete), ReplicaStreaming (a replica really streams from the
primary), Ready (all three), and with ``spec.parity`` ParityVerified (``handlers.clone_parity``:
the parity floor against production, not part of Ready). A clone that cannot become ready says
why in the condition reason and an Event, and is checked again and again (with backoff) — never
a silent hang.

Each clone has a coroutine (a kopf daemon) that reconciles its status; it holds no thread while
it waits, and the PostgreSQL checks and Kubernetes calls run in ``handlers.common``'s bounded
pool, with timeouts. Ready clones are sampled for the metrics by ``handlers.sampler``.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import kopf

from pgparity import metrics
from pgparity.clonecheck import inspect_clone
from pgparity.errors import CallTimeoutError, PgparityError, SpecError
from pgparity.handlers.clone_parity import CONDITION as PARITY_CONDITION
from pgparity.handlers.clone_parity import (
    ParityObserved,
    derive_parameters,
    observe_parity,
    parity_condition,
)
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
from pgparity.manifests.clone_status import (
    FALSE,
    TRUE,
    UNKNOWN,
    CloneObservation,
    ConditionState,
    clone_event_reason,
    clone_status,
    invalid_spec,
    judge_health,
)
from pgparity.manifests.conditions import set_condition
from pgparity.manifests.status import retry_delay
from pgparity.models.clone_health import CloneHealth
from pgparity.models.common import GROUP, VERSION, Reason
from pgparity.models.staging_clone import (
    KIND,
    PLURAL,
    ClonePhase,
    Provider,
    StagingCloneSpec,
    StagingCloneStatus,
)
from pgparity.redaction import sanitize


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
    parameters: Mapping[str, str] | None = None
    spec: StagingCloneSpec | None = None
    derived = previous.derived_parameters
    try:
        spec = StagingCloneSpec.parse(dict(body.get("spec", {})))
    except SpecError as exc:
        observed = invalid_spec(str(exc))
    else:
        observed = await _observe(clone, spec, previous)
        derived = observed.derived or previous.derived_parameters
        parameters = {**(derived or {}), **spec.postgres.parameters}
    status = clone_status(previous, observed, parameters, now=now(), generation=generation)
    ready = status.phase is ClonePhase.READY
    status = replace(status, derived_parameters=derived)
    if spec is not None and spec.parity is not None:
        parity = await observe_parity(clone, spec.parity, previous, observed.secret, ready)
        status = _with_parity(status, parity, generation)
    elif parity_condition(status) is not None:
        status = replace(
            status,
            conditions=tuple(c for c in status.conditions if c.type != PARITY_CONDITION),
            parity=None,
        )
    new = status.to_dict()
    metrics.set_clone_ready(clone.namespace, clone.name, ready)
    if await writer.write(body, current, new):
        _announce_parity(body, previous, status)
        announce(
            body,
            current,
            new,
            reason=clone_event_reason(status),
            message=status.message or "",
            warning=status.phase is ClonePhase.FAILED,
        )
    return ready


def _with_parity(
    status: StagingCloneStatus, parity: ParityObserved, generation: int
) -> StagingCloneStatus:
    state, reason, message = parity.condition
    conditions = set_condition(
        status.conditions, PARITY_CONDITION, state, reason, message, now(), generation
    )
    return replace(status, conditions=conditions, parity=parity.state or status.parity)


def _announce_parity(body: kopf.Body, old: StagingCloneStatus, new: StagingCloneStatus) -> None:
    """An Event when ParityVerified changes status or reason (a dimension broke or healed)."""
    before, after = parity_condition(old), parity_condition(new)
    if after is None or (before and (before.status, before.reason) == (after.status, after.reason)):
        return
    kopf.event(
        body,
        type="Warning" if after.status is FALSE else "Normal",
        reason=after.reason,
        message=sanitize(after.message),
    )


def _parse_status(current: Mapping[str, Any]) -> StagingCloneStatus:
    try:
        return StagingCloneStatus.parse(current)
    except SpecError:
        return StagingCloneStatus()


async def _observe(
    clone: CloneRef, spec: StagingCloneSpec, previous: StagingCloneStatus
) -> CloneObservation:
    if spec.provider is not Provider.BUILTIN:
        return await _external(clone, spec)
    if spec.parity is None or (previous.derived_parameters is None and await _created(clone)):
        # Parameters are derived before the servers exist; a clone that already runs keeps
        # its configuration (spec.parity added later only checks it).
        return await _builtin(clone, spec)
    derivation = await derive_parameters(clone, spec.parity, previous)
    if derivation.parameters is None:
        waiting = ConditionState(*derivation.waiting)
        later = ConditionState(UNKNOWN, waiting.reason, "")
        return CloneObservation(waiting, later, later)
    observed = await _builtin(clone, with_parameters(spec, derivation.parameters))
    return replace(observed, derived=derivation.parameters)


async def _created(clone: CloneRef) -> bool:
    config = names(clone.name).config
    return await api(kube.get, "v1", "ConfigMap", config, clone.namespace) is not None


def with_parameters(spec: StagingCloneSpec, derived: Mapping[str, str]) -> StagingCloneSpec:
    """``spec`` running with production's parameters, overridden by its own."""
    merged = {**derived, **spec.postgres.parameters}
    return replace(spec, postgres=replace(spec.postgres, parameters=merged))


async def _builtin(clone: CloneRef, spec: StagingCloneSpec) -> CloneObservation:
    n = names(clone.name)
    existing = await api(kube.get, "v1", "Secret", n.secret, clone.namespace)
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
    provisioned = ConditionState(
        TRUE,
        Reason.OBJECTS_CREATED,
        "StatefulSets, Services, Secret, ConfigMap and NetworkPolicy exist",
    )
    primary = await _ready_replicas(clone.namespace, n.primary)
    replicas = await _ready_replicas(clone.namespace, n.replica)
    seeded = await _seed_state(clone.namespace, n.seed, spec)
    if primary < 1:
        return CloneObservation(
            provisioned,
            seeded,
            ConditionState(UNKNOWN, Reason.PRIMARY_NOT_READY, "the primary's pod is not ready"),
            n.secret,
        )
    if replicas < spec.replicas:
        return CloneObservation(
            provisioned,
            seeded,
            ConditionState(
                FALSE, Reason.REPLICAS_NOT_READY, f"{replicas}/{spec.replicas} replica pods ready"
            ),
            n.secret,
        )
    data = await api(kube.secret_data, clone.namespace, n.secret) or {}
    return await _checked(clone, provisioned, seeded, n.secret, data)


async def _ready_replicas(namespace: str, statefulset: str) -> int:
    found = await api(kube.get, "apps/v1", "StatefulSet", statefulset, namespace)
    return int(((found or {}).get("status") or {}).get("readyReplicas") or 0)


async def _seed_state(namespace: str, job_name: str, spec: StagingCloneSpec) -> ConditionState:
    if spec.source is None:
        return ConditionState(TRUE, Reason.NO_SOURCE, "nothing to seed")
    job = await api(kube.get, "batch/v1", "Job", job_name, namespace)
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") == "Complete":
            return ConditionState(
                TRUE, Reason.SEED_JOB_COMPLETE, f"seeding Job {job_name} completed"
            )
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return ConditionState(
                FALSE, Reason.SEED_JOB_FAILED, str(condition.get("message") or "seeding failed")
            )
    return ConditionState(UNKNOWN, Reason.SEEDING, f"seeding Job {job_name} is running")


async def _external(clone: CloneRef, spec: StagingCloneSpec) -> CloneObservation:
    assert spec.external is not None
    secret = spec.external.secret_ref.name
    data = await api(kube.secret_data, clone.namespace, secret)
    if data is None or "dsn" not in data:
        missing = ConditionState(
            FALSE, Reason.SECRET_NOT_FOUND, f"Secret {secret} with key dsn not found"
        )
        return CloneObservation(
            missing,
            ConditionState(UNKNOWN, Reason.SECRET_NOT_FOUND, ""),
            ConditionState(UNKNOWN, Reason.SECRET_NOT_FOUND, ""),
            secret,
        )
    provisioned = ConditionState(
        TRUE, Reason.EXTERNAL, f"an existing database named by Secret {secret}"
    )
    seeded = ConditionState(TRUE, Reason.EXTERNAL, "the external database holds its own data")
    return await _checked(clone, provisioned, seeded, secret, data)


async def _checked(
    clone: CloneRef,
    provisioned: ConditionState,
    seeded: ConditionState,
    secret: str,
    data: Mapping[str, str],
) -> CloneObservation:
    health = await _inspect(clone, data.get("dsn") or "", data.get("replicaDsn"))
    return judge_health(provisioned, seeded, secret, health)


async def _inspect(clone: CloneRef, dsn: str, replica_dsn: str | None) -> CloneHealth:
    about = ("check", clone.namespace, clone.name)
    try:
        return await database("the clone check", about, inspect_clone, dsn, replica_dsn)
    except CallTimeoutError as exc:
        return CloneHealth(reachable=False, reason=Reason.CHECK_TIMED_OUT, message=str(exc))


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def forget_clone(name: str, namespace: str | None, **_: Any) -> None:
    if namespace is not None:
        metrics.forget_clone(namespace, name)
