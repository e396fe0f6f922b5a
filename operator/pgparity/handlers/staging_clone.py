"""StagingClone: create a builtin clone's objects or check an external one; report readiness.

Conditions: Provisioned (the objects exist / the external database answers), Seeded (the seeding
Job finished / the data is complete), ReplicaStreaming (a replica really streams from the
primary), Ready (all three). A clone that cannot become ready says why in the condition reason
and an Event, and is checked again at every tick — never a silent hang.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import kopf

from pgparity import metrics
from pgparity.engine.clonecheck import CloneHealth, inspect_clone, sample_clone
from pgparity.errors import DatabaseError, SpecError
from pgparity.handlers.common import SETTINGS, announce, apply_status, now
from pgparity.kube import client as kube
from pgparity.manifests.clone import CloneRef, build_clone_objects, names
from pgparity.manifests.status import set_condition
from pgparity.models.common import GROUP, VERSION, Condition, ConditionStatus
from pgparity.models.staging_clone import (
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


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.reconcile_seconds, initial_delay=0.1)
def reconcile_clone(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    name: str,
    namespace: str | None,
    uid: str,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    assert namespace is not None
    generation = int(meta.get("generation") or 0)
    if not _due(namespace, name, generation):
        return
    current = {k: v for k, v in dict(status).items() if k != "kopf"}
    previous = _parse_status(current)
    clone = CloneRef(name, namespace, uid)
    spec: StagingCloneSpec | None = None
    try:
        spec = StagingCloneSpec.parse(dict(body.get("spec", {})))
    except SpecError as exc:
        invalid = (UNKNOWN, "InvalidSpec", "")
        observed = Observed((FALSE, "InvalidSpec", str(exc)), invalid, invalid)
    else:
        observed = (
            _builtin(clone, spec) if spec.provider is Provider.BUILTIN else _external(clone, spec)
        )
    new = _status(previous, observed, spec, generation).to_dict()
    _schedule(namespace, name, generation, ready=new.get("phase") == ClonePhase.READY.value)
    metrics.set_clone_ready(namespace, name, new.get("phase") == ClonePhase.READY.value)
    if apply_status(patch, current, new):
        ready = new.get("phase") == ClonePhase.READY.value
        announce(
            body,
            current,
            new,
            reason="Ready" if ready else _reason(new),
            message=str(new.get("message") or ""),
            warning=new.get("phase") == ClonePhase.FAILED.value,
        )


# A clone that is not ready is checked again with exponential backoff (up to 5 minutes); a
# change of its spec (generation) checks it at once.
_retry: dict[tuple[str, str], tuple[int, float, int]] = {}
MAX_BACKOFF_SECONDS = 300.0


def _due(namespace: str, name: str, generation: int) -> bool:
    _, at, seen = _retry.get((namespace, name), (0, 0.0, generation))
    return seen != generation or time.monotonic() >= at


def _schedule(namespace: str, name: str, generation: int, *, ready: bool) -> None:
    if ready:
        _retry.pop((namespace, name), None)
        return
    failures = _retry.get((namespace, name), (0, 0.0, generation))[0] + 1
    delay = min(SETTINGS.reconcile_seconds * 2 ** min(failures - 1, 10), MAX_BACKOFF_SECONDS)
    _retry[(namespace, name)] = (failures, time.monotonic() + delay, generation)


def _parse_status(current: Mapping[str, Any]) -> StagingCloneStatus:
    try:
        return StagingCloneStatus.parse(current)
    except SpecError:
        return StagingCloneStatus()


def _reason(status: Mapping[str, Any]) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            return str(condition.get("reason") or "NotReady")
    return "NotReady"


def _builtin(clone: CloneRef, spec: StagingCloneSpec) -> Observed:
    n = names(clone.name)
    existing = kube.get("v1", "Secret", n["secret"], clone.namespace)
    # A new password only for a new clone: the Secret, once made, is the source of truth.
    password = secrets.token_urlsafe(24) if existing is None else ""
    for body in build_clone_objects(
        clone,
        spec,
        password=password,
        postgres_image=SETTINGS.postgres_image,
        pgparity_image=SETTINGS.image,
        operator_namespace=SETTINGS.operator_namespace,
    ):
        if body["kind"] == "Secret" and existing is not None:
            continue
        kube.create_missing(body)
    provisioned = (
        TRUE,
        "ObjectsCreated",
        "StatefulSets, Services, Secret, ConfigMap and NetworkPolicy exist",
    )
    primary = _ready_replicas(clone.namespace, n["primary"])
    replicas = _ready_replicas(clone.namespace, n["replica"])
    seeded = _seed_state(clone.namespace, n["seed"], spec)
    if primary < 1:
        return Observed(
            provisioned,
            seeded,
            (UNKNOWN, "PrimaryNotReady", "the primary's pod is not ready"),
            n["secret"],
        )
    if replicas < spec.replicas:
        return Observed(
            provisioned,
            seeded,
            (FALSE, "ReplicasNotReady", f"{replicas}/{spec.replicas} replica pods ready"),
            n["secret"],
        )
    return _checked(provisioned, seeded, clone.namespace, n["secret"])


def _ready_replicas(namespace: str, statefulset: str) -> int:
    found = kube.get("apps/v1", "StatefulSet", statefulset, namespace)
    return int(((found or {}).get("status") or {}).get("readyReplicas") or 0)


def _seed_state(
    namespace: str, job_name: str, spec: StagingCloneSpec
) -> tuple[ConditionStatus, str, str]:
    if spec.source is None:
        return TRUE, "NoSource", "nothing to seed"
    job = kube.get("batch/v1", "Job", job_name, namespace)
    for condition in ((job or {}).get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") == "Complete":
            return TRUE, "SeedJobComplete", f"seeding Job {job_name} completed"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return FALSE, "SeedJobFailed", str(condition.get("message") or "seeding failed")
    return UNKNOWN, "Seeding", f"seeding Job {job_name} is running"


def _external(clone: CloneRef, spec: StagingCloneSpec) -> Observed:
    assert spec.external is not None
    secret = spec.external.secret_ref.name
    dsn = kube.secret_value(clone.namespace, secret, "dsn")
    if dsn is None:
        missing = (FALSE, "SecretNotFound", f"Secret {secret} with key dsn not found")
        return Observed(
            missing, (UNKNOWN, "SecretNotFound", ""), (UNKNOWN, "SecretNotFound", ""), secret
        )
    provisioned = (TRUE, "External", f"an existing database named by Secret {secret}")
    seeded = (TRUE, "External", "the external database holds its own data")
    return _checked(provisioned, seeded, clone.namespace, secret)


def _checked(
    provisioned: tuple[ConditionStatus, str, str],
    seeded: tuple[ConditionStatus, str, str],
    namespace: str,
    secret: str,
) -> Observed:
    dsn = kube.secret_value(namespace, secret, "dsn") or ""
    health = inspect_clone(dsn, kube.secret_value(namespace, secret, "replicaDsn"))
    if not health.reachable or not health.marked:  # unreachable, or maybe production
        return Observed(
            (FALSE, health.reason, health.message),
            seeded,
            (UNKNOWN, health.reason, health.message),
            secret,
            health,
        )
    if health.seed_state not in (None, "complete"):
        seeded = (FALSE, "SeedIncomplete", f"pgparity.seed_state is {health.seed_state}")
    streaming = (
        TRUE if health.replica_ok else FALSE,
        "Streaming" if health.replica_ok else health.reason,
        f"{health.streaming_replicas} replica(s) streaming"
        if health.replica_ok
        else health.message,
    )
    return Observed(provisioned, seeded, streaming, secret, health)


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
            conditions, type_, state, reason or "Unknown", message, at, generation
        )
    parts = (observed.provisioned, observed.seeded, observed.streaming)
    ready = all(state is TRUE for state, _, _ in parts)
    blocking = next(
        ((reason, message) for state, reason, message in parts if state is not TRUE),
        ("Ready", "primary and replicas streaming"),
    )
    conditions = set_condition(
        conditions,
        "Ready",
        TRUE if ready else FALSE,
        "Ready" if ready else blocking[0] or "NotReady",
        blocking[1],
        at,
        generation,
    )
    health = observed.health
    return replace(
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


def _phase(observed: Observed, ready: bool) -> ClonePhase:
    if ready:
        return ClonePhase.READY
    if observed.provisioned[1] == "InvalidSpec" or (
        observed.seeded[0] is FALSE and observed.seeded[1] == "SeedJobFailed"
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


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
def monitor_clone(
    stopped: kopf.DaemonStopped,
    body: kopf.Body,
    name: str,
    namespace: str | None,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    """Sample each Ready clone's primary for the live gauges (lag, lock waits)."""
    assert namespace is not None
    try:
        while not stopped:
            status = body.get("status") or {}
            secret = (status.get("endpoints") or {}).get("secretName")
            if status.get("phase") == ClonePhase.READY.value and secret:
                _sample(namespace, name, str(secret), logger)
            stopped.wait(SETTINGS.monitor_seconds)
    finally:
        metrics.forget_clone(namespace, name)


def _sample(
    namespace: str, name: str, secret: str, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> None:
    dsn = kube.secret_value(namespace, secret, "dsn")
    if not dsn:
        return
    try:
        sample = sample_clone(dsn)
    except DatabaseError as exc:
        logger.warning("cannot sample clone %s/%s: %s", namespace, name, exc)
        return
    metrics.set_clone_sample(
        namespace,
        name,
        lag_bytes=sample.lag_bytes,
        waiting=sample.waiting_sessions,
        longest_wait=sample.longest_wait_seconds,
    )


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
def forget_clone(name: str, namespace: str | None, **_: Any) -> None:
    if namespace is not None:
        metrics.forget_clone(namespace, name)
