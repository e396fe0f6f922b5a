"""MigrationValidation: resolve the inputs, run one validation Job, turn its report into status.

Level-based and event-driven: a coroutine per validation (a kopf daemon) looks at what exists —
its clone, the Job named after the validation key, the report ConfigMap — moves the status one
step, and sleeps until a watch event concerns it (its spec, its clone, its Job, the queue) or
``PGPARITY_RECONCILE_SECONDS`` pass. What it reads about other objects comes from kopf's
in-memory indexes (``handlers.indexes``), so an idle validation costs the API server nothing. A
restarted operator finds the same Job (its name is derived from the key), so a validation never
runs twice; an unchanged migration is never validated again; a changed one gets a new key, a new
Job and a fresh status. Starting a Job waits for the clone (one validation per clone) and for a
slot (``PGPARITY_MAX_CONCURRENT_JOBS``), in the queue order of ``manifests.queue``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import kopf

from pgparity import metrics
from pgparity.errors import PgparityError, SpecError
from pgparity.handlers.common import (
    Runtime,
    StatusWriter,
    announce,
    api,
    handler_error,
    now,
    options,
    runtime,
    seconds_between,
    sleep_until_woken,
)
from pgparity.handlers.indexes import CloneView, JobView, QueueEntry, Views, one
from pgparity.handlers.queue import decide
from pgparity.inputs import sql_control_character
from pgparity.kube import client as kube
from pgparity.kube.reports import read_report
from pgparity.manifests.queue import Admission, Contender, QueueKey, StartedJob
from pgparity.manifests.readiness import deadline_exceeded
from pgparity.manifests.status import completed_status, progress_status, with_readiness
from pgparity.manifests.validation import (
    ValidationInputs,
    ValidationRef,
    build_inputs,
    build_job,
    build_job_access,
    build_report_holder,
    names,
    validation_key,
)
from pgparity.models.common import GROUP, VERSION, KeyRef, Reason
from pgparity.models.migration_validation import (
    KIND,
    PLURAL,
    CloneParity,
    MigrationValidationSpec,
    MigrationValidationStatus,
    ReportRef,
    TrafficMode,
    ValidationPhase,
)
from pgparity.models.report import ValidationReport, Verdict
from pgparity.models.staging_clone import ClonePhase


class Waiting(Exception):  # noqa: N818 - a state, not an error
    """The validation cannot proceed yet: (phase, reason, message)."""

    def __init__(
        self,
        phase: ValidationPhase,
        reason: str,
        message: str,
        failed: bool = False,
        position: int | None = None,
    ) -> None:
        super().__init__(message)
        self.phase, self.reason, self.message, self.failed = phase, reason, message, failed
        self.position = position


@dataclass(frozen=True)
class Resolved:
    spec: MigrationValidationSpec
    inputs: ValidationInputs
    key: str
    parity: CloneParity = CloneParity.NOT_CHECKED


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
async def run_validation(
    body: kopf.Body,
    name: str,
    namespace: str | None,
    uid: str,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """Reconcile one validation whenever something it depends on changes, and at each resync."""
    assert namespace is not None  # a namespaced resource
    shared = runtime(memo)
    writer = StatusWriter(KIND)
    wake = shared.wakes.register(KIND, namespace, name)
    try:
        while True:
            try:
                await _reconcile_once(body, ValidationRef(name, namespace, uid), writer, shared)
            except PgparityError as exc:
                # The API server is slow or refuses, a call outlived its deadline: kopf runs
                # this daemon again after the delay, and it continues from what exists;
                # nothing is half-written.
                raise handler_error(exc) from exc
            await sleep_until_woken(wake, options().reconcile_seconds)
    finally:
        shared.wakes.forget(KIND, namespace, name)
        shared.queue_changed.set()


async def _reconcile_once(
    body: kopf.Body, ref: ValidationRef, writer: StatusWriter, shared: Runtime
) -> None:
    current = writer.current(body)
    generation = int(body.get("metadata", {}).get("generation") or 0)
    document = await _reconcile(body, ref, current, generation, shared)
    _export(body, ref, _parse_status(document))
    if await writer.write(body, current, document):
        _announce(body, current, document)


def _export(body: kopf.Body, ref: ValidationRef, status: MigrationValidationStatus) -> None:
    """The validation's phase, verdict and deadline as gauges (what the alerts look at)."""
    spec = body.get("spec") or {}
    clone = str((spec.get("cloneRef") or {}).get("name") or "")
    deadline = spec.get("deadlineSeconds")
    if not isinstance(deadline, int):
        deadline = MigrationValidationSpec.deadline_seconds
    metrics.set_validation(
        (ref.namespace, ref.name, clone),
        phases={phase.value: phase is status.phase for phase in ValidationPhase},
        verdicts={verdict.value: verdict is status.verdict for verdict in Verdict},
        deadline_exceeded=deadline_exceeded(status, deadline, now()),
    )


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def forget_validation(name: str, namespace: str | None, **_: Any) -> None:
    if namespace is not None:
        metrics.forget_validation(namespace, name)


async def _reconcile(
    body: kopf.Body,
    ref: ValidationRef,
    current: Mapping[str, Any],
    generation: int,
    shared: Runtime,
) -> dict[str, Any]:
    """The next status: one step further, or the verdict that stands for this very input."""
    previous = _parse_status(current)
    try:
        resolved = await _resolve(body, ref.namespace, shared.views)
        if previous.validation_key == resolved.key and previous.phase in (
            ValidationPhase.COMPLETED,
            ValidationPhase.FAILED,
        ):
            # The verdict stands; only the generation (and the conditions derived from the
            # status, for objects written before they existed) may be new.
            settled = with_readiness(previous, now(), generation).to_dict()
            return {
                **current,
                "conditions": settled["conditions"],
                "observedGeneration": generation,
            }
        if previous.validation_key != resolved.key:
            previous = MigrationValidationStatus(conditions=previous.conditions)
        new = await _advance(ref, resolved, previous, generation, shared)
    except Waiting as state:
        new = progress_status(
            previous,
            state.phase,
            state.reason,
            state.message,
            now=now(),
            generation=generation,
            failed=state.failed,
            queue_position=state.position,
        )
    return new.to_dict()


def _parse_status(current: Mapping[str, Any]) -> MigrationValidationStatus:
    try:
        return MigrationValidationStatus.parse({k: v for k, v in current.items() if k != "kopf"})
    except SpecError:
        return MigrationValidationStatus()


async def _resolve(body: kopf.Body, namespace: str, views: Views) -> Resolved:
    try:
        spec = MigrationValidationSpec.parse(dict(body.get("spec", {})))
    except SpecError as exc:
        raise Waiting(ValidationPhase.FAILED, Reason.INVALID_SPEC, str(exc), failed=True) from exc
    clone: CloneView | None = one(views.clones, (namespace, spec.clone_ref.name))
    if clone is None:
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            Reason.CLONE_NOT_FOUND,
            f"StagingClone {spec.clone_ref.name} does not exist",
        )
    if clone.phase != ClonePhase.READY.value:
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            Reason.CLONE_NOT_READY,
            f"StagingClone {spec.clone_ref.name} is "
            f"{clone.phase or 'not reconciled yet'}: {clone.message or ''}".rstrip(": "),
        )
    if not clone.secret:
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            Reason.CLONE_NOT_READY,
            f"StagingClone {spec.clone_ref.name} has no connection Secret yet",
        )
    parity = clone_parity(clone.parity)
    if parity is CloneParity.BROKEN and not spec.allow_parity_drift:
        _, reason, message = clone.parity or ("", "", "")
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            "ParityBroken",
            f"StagingClone {spec.clone_ref.name} is not at parity with production ({reason}: "
            f"{message}); spec.allowParityDrift: true runs anyway",
        )
    parameters = clone.parameters
    timeouts = spec.timeouts
    inputs = ValidationInputs(
        sql=await _migration_sql(spec, namespace),
        clone=spec.clone_ref.name,
        clone_secret=clone.secret,
        lock_timeout=(timeouts.lock_timeout if timeouts else None)
        or parameters.get("lock_timeout"),
        statement_timeout=(timeouts.statement_timeout if timeouts else None)
        or parameters.get("statement_timeout"),
        workload=await _workload(spec, namespace),
    )
    return Resolved(spec, inputs, validation_key(spec, inputs), parity)


def clone_parity(condition: tuple[str, str, str] | None) -> CloneParity:
    """The clone's ParityVerified condition (status, reason, message) as a parity state."""
    if condition is None:
        return CloneParity.NOT_CHECKED
    return {"True": CloneParity.VERIFIED, "False": CloneParity.BROKEN}.get(
        condition[0], CloneParity.UNKNOWN
    )


async def _migration_sql(spec: MigrationValidationSpec, namespace: str) -> str:
    if spec.migration.sql is not None:
        return spec.migration.sql
    ref = spec.migration.config_map_ref
    assert ref is not None
    text = await _configmap_text(namespace, ref, Reason.MIGRATION_NOT_FOUND)
    problem = sql_control_character(text)
    if problem:
        message = f"ConfigMap {ref.name} key {ref.key}: {problem}"
        raise Waiting(ValidationPhase.FAILED, Reason.INVALID_MIGRATION, message, failed=True)
    return text


async def _workload(spec: MigrationValidationSpec, namespace: str) -> str | None:
    traffic = spec.traffic
    if traffic is None or traffic.mode is not TrafficMode.WORKLOAD or traffic.workload_ref is None:
        return None
    return await _configmap_text(namespace, traffic.workload_ref, Reason.WORKLOAD_NOT_FOUND)


async def _configmap_text(namespace: str, ref: KeyRef, missing: Reason) -> str:
    text = await api(kube.configmap_value, namespace, ref.name, ref.key)
    if not text:
        message = f"ConfigMap {ref.name} has no key {ref.key}"
        raise Waiting(ValidationPhase.PENDING, missing, message)
    return text


async def _advance(
    ref: ValidationRef,
    resolved: Resolved,
    previous: MigrationValidationStatus,
    generation: int,
    shared: Runtime,
) -> MigrationValidationStatus:
    n = names(ref.name, resolved.key)
    jobs = shared.views.jobs.get((ref.namespace, ref.name), ())
    job: JobView | None = next((j for j in jobs if j.name == n.job), None)
    started = StartedJob(resolved.inputs.clone, resolved.key[:63])
    if job is None and shared.started.get((ref.namespace, ref.name)) != started:
        await _start(ref, resolved, shared)
        created = progress_status(
            previous,
            ValidationPhase.RUNNING,
            Reason.JOB_CREATED,
            f"validation Job {n.job} created",
            now=now(),
            generation=generation,
            key=resolved.key,
            job_name=n.job,
            started_at=now(),
        )
        return replace(created, parity=resolved.parity)  # the parity state it runs under
    if job is None or job.outcome is None:
        return progress_status(
            previous,
            ValidationPhase.RUNNING,
            Reason.JOB_RUNNING,
            f"validation Job {n.job} is running",
            now=now(),
            generation=generation,
            key=resolved.key,
            job_name=n.job,
        )
    if not job.outcome.succeeded:
        reason, message = job.outcome.reason, job.outcome.message
        raise Waiting(
            ValidationPhase.FAILED,
            f"Job{reason}",
            f"validation Job {n.job} failed ({reason}): {message}; no verdict",
            failed=True,
        )
    return await _complete(ref, resolved, previous, generation, job)


async def _start(ref: ValidationRef, resolved: Resolved, shared: Runtime) -> None:
    """Create the validation's objects and its Job — if the clone and a Job slot are free."""
    clone = resolved.inputs.clone
    # One decision at a time, each seeing the Jobs the ones before it created.
    async with shared.admission:
        me = Contender(_queue_key(shared.views, ref), clone)
        decision = decide(shared, me)[me.key]
        if decision.admission is Admission.CLONE_BUSY:
            raise Waiting(
                ValidationPhase.WAITING_FOR_CLONE,
                Reason.CLONE_BUSY,
                f"another validation ({decision.holder}) is running on StagingClone {clone}",
            )
        if decision.admission is Admission.QUEUED:
            raise Waiting(
                ValidationPhase.PENDING,
                Reason.QUEUED,
                f"waiting for one of {options().max_concurrent_jobs} validation Job slots "
                f"(PGPARITY_MAX_CONCURRENT_JOBS): position {decision.position} in the queue",
                position=decision.position,
            )
        for body in (
            build_inputs(ref, resolved.spec, resolved.inputs, resolved.key),
            build_report_holder(ref, clone, resolved.key),
            *build_job_access(ref, clone, resolved.key),
        ):
            await api(kube.create_missing, body)
        await api(
            kube.create_missing,
            build_job(
                ref,
                resolved.spec,
                resolved.inputs,
                resolved.key,
                image=options().image,
                cpu=options().job_cpu,
                memory=options().job_memory,
                parity=resolved.parity.value,
            ),
        )
        shared.started[(ref.namespace, ref.name)] = StartedJob(clone, resolved.key[:63])
    shared.queue_changed.set()


def _queue_key(views: Views, ref: ValidationRef) -> QueueKey:
    entry: QueueEntry | None = one(views.queue, (ref.namespace, ref.name))
    created = entry.key.created if entry is not None else ""
    return QueueKey(created, ref.name, ref.namespace)


async def _complete(
    ref: ValidationRef,
    resolved: Resolved,
    previous: MigrationValidationStatus,
    generation: int,
    job: JobView,
) -> MigrationValidationStatus:
    n = names(ref.name, resolved.key)
    try:
        text = await api(read_report, ref.namespace, n.report)
        if text is None:
            raise ValueError("the Job finished without writing a report")
        report = ValidationReport.parse(json.loads(text))
    except (ValueError, SpecError, kube.KubeError) as exc:
        if isinstance(exc, kube.KubeError) and exc.status != 404:
            raise  # the API server, not the report: try again
        raise Waiting(
            ValidationPhase.FAILED,
            Reason.REPORT_UNREADABLE,
            f"the report in ConfigMap {n.report} cannot be read: {exc}",
            failed=True,
        ) from exc
    started = job.start_time or previous.started_at
    finished = job.completion_time or now()
    duration = seconds_between(started, finished)
    status = completed_status(
        previous,
        report,
        now=now(),
        generation=generation,
        key=resolved.key,
        report_ref=ReportRef(n.report, "report.json"),
        job_name=n.job,
        started_at=started,
        duration_seconds=duration,
    )
    if previous.verdict is None or previous.validation_key != resolved.key:
        metrics.record_validation(report.verdict.value, duration)
    return status


# Waiting is reported in the status (reason, queue position), not in Events: at hundreds of
# validations an Event per wait would be most of the operator's writes to the API server.
_QUIET_PHASES = (ValidationPhase.PENDING.value, ValidationPhase.WAITING_FOR_CLONE.value)


def _announce(body: kopf.Body, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """An Event for a milestone: the Job created, a verdict, a failure."""
    if new.get("phase") in _QUIET_PHASES:
        return
    verdict = new.get("verdict")
    if verdict:
        reason = Reason.VALIDATED if verdict == Verdict.VALIDATED.value else Reason.REJECTED
        announce(
            body,
            old,
            new,
            reason=reason,
            message=str(new.get("message")),
            warning=verdict != Verdict.VALIDATED.value,
        )
        return
    conditions = {c.get("type"): c for c in new.get("conditions") or []}
    validated = conditions.get("Validated") or {}
    announce(
        body,
        old,
        new,
        reason=str(validated.get("reason") or new.get("phase")),
        message=str(new.get("message") or ""),
        warning=new.get("phase") == ValidationPhase.FAILED.value,
    )
