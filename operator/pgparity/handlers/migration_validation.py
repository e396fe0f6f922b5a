"""MigrationValidation: resolve the inputs, run one validation Job, turn its report into status.

Level-based: each tick looks at what exists — the clone, the Job named after the validation
key, the report ConfigMap — and moves the status one step. A restarted operator finds the same
Job (its name is derived from the key), so a validation never runs twice; an unchanged
migration is never validated again; a changed one gets a new key, a new Job and a fresh status.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from pgparity import metrics
from pgparity.errors import SpecError
from pgparity.handlers.common import SETTINGS, announce, apply_status, now, seconds_between
from pgparity.inputs import sql_control_character
from pgparity.kube import client as kube
from pgparity.kube.reports import read_report
from pgparity.manifests.labels import CLONE_LABEL, KEY_LABEL
from pgparity.manifests.status import completed_status, progress_status
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
from pgparity.models.common import API_VERSION, GROUP, VERSION, KeyRef
from pgparity.models.migration_validation import (
    PLURAL,
    MigrationValidationSpec,
    MigrationValidationStatus,
    ReportRef,
    TrafficMode,
    ValidationPhase,
)
from pgparity.models.report import ValidationReport, Verdict
from pgparity.models.staging_clone import ClonePhase

# One validation per clone at a time: the lock orders this operator's own decisions, the Job
# listing sees validations started before a restart.
_clone_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


class Waiting(Exception):  # noqa: N818 - a state, not an error
    """The validation cannot proceed yet: (phase, reason, message)."""

    def __init__(
        self, phase: ValidationPhase, reason: str, message: str, failed: bool = False
    ) -> None:
        super().__init__(message)
        self.phase, self.reason, self.message, self.failed = phase, reason, message, failed


@dataclass(frozen=True)
class Resolved:
    spec: MigrationValidationSpec
    inputs: ValidationInputs
    key: str


@kopf.timer(GROUP, VERSION, PLURAL, interval=SETTINGS.reconcile_seconds, initial_delay=0.2)
def reconcile_validation(
    body: kopf.Body,
    meta: kopf.Meta,
    status: kopf.Status,
    name: str,
    namespace: str | None,
    uid: str,
    patch: kopf.Patch,
    **_: Any,
) -> None:
    assert namespace is not None  # a namespaced resource
    ref = ValidationRef(name, namespace, uid)
    generation = int(meta.get("generation") or 0)
    current = dict(status)
    previous = _parse_status(current)
    try:
        resolved = _resolve(body, namespace)
        if previous.validation_key == resolved.key and previous.phase in (
            ValidationPhase.COMPLETED,
            ValidationPhase.FAILED,
        ):
            if previous.observed_generation != generation:
                patch.status["observedGeneration"] = generation
            return
        if previous.validation_key != resolved.key:
            previous = MigrationValidationStatus(conditions=previous.conditions)
        new = _advance(ref, resolved, previous, generation)
    except Waiting as state:
        new = progress_status(
            previous,
            state.phase,
            state.reason,
            state.message,
            now=now(),
            generation=generation,
            failed=state.failed,
        )
    document = new.to_dict()
    if apply_status(patch, current, document):
        _announce(body, current, document)


def _parse_status(current: Mapping[str, Any]) -> MigrationValidationStatus:
    try:
        return MigrationValidationStatus.parse({k: v for k, v in current.items() if k != "kopf"})
    except SpecError:
        return MigrationValidationStatus()


def _resolve(body: kopf.Body, namespace: str) -> Resolved:
    try:
        spec = MigrationValidationSpec.parse(dict(body.get("spec", {})))
    except SpecError as exc:
        raise Waiting(ValidationPhase.FAILED, "InvalidSpec", str(exc), failed=True) from None
    clone = kube.get(API_VERSION, "StagingClone", spec.clone_ref.name, namespace)
    if clone is None:
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            "CloneNotFound",
            f"StagingClone {spec.clone_ref.name} does not exist",
        )
    clone_status = clone.get("status") or {}
    if clone_status.get("phase") != ClonePhase.READY.value:
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            "CloneNotReady",
            f"StagingClone {spec.clone_ref.name} is "
            f"{clone_status.get('phase') or 'not reconciled yet'}: "
            f"{clone_status.get('message') or ''}".rstrip(": "),
        )
    secret = (clone_status.get("endpoints") or {}).get("secretName")
    if not secret:
        raise Waiting(
            ValidationPhase.WAITING_FOR_CLONE,
            "CloneNotReady",
            f"StagingClone {spec.clone_ref.name} has no connection Secret yet",
        )
    parameters = ((clone.get("spec") or {}).get("postgres") or {}).get("parameters") or {}
    timeouts = spec.timeouts
    inputs = ValidationInputs(
        sql=_migration_sql(spec, namespace),
        clone=spec.clone_ref.name,
        clone_secret=str(secret),
        lock_timeout=(timeouts.lock_timeout if timeouts else None)
        or parameters.get("lock_timeout"),
        statement_timeout=(timeouts.statement_timeout if timeouts else None)
        or parameters.get("statement_timeout"),
        workload=_workload(spec, namespace),
    )
    return Resolved(spec, inputs, validation_key(spec, inputs))


def _migration_sql(spec: MigrationValidationSpec, namespace: str) -> str:
    if spec.migration.sql is not None:
        return spec.migration.sql
    ref = spec.migration.config_map_ref
    assert ref is not None
    text = _configmap_text(namespace, ref, "MigrationNotFound")
    problem = sql_control_character(text)
    if problem:
        message = f"ConfigMap {ref.name} key {ref.key}: {problem}"
        raise Waiting(ValidationPhase.FAILED, "InvalidMigration", message, failed=True)
    return text


def _workload(spec: MigrationValidationSpec, namespace: str) -> str | None:
    traffic = spec.traffic
    if traffic is None or traffic.mode is not TrafficMode.WORKLOAD or traffic.workload_ref is None:
        return None
    return _configmap_text(namespace, traffic.workload_ref, "WorkloadNotFound")


def _configmap_text(namespace: str, ref: KeyRef, missing: str) -> str:
    text = kube.configmap_value(namespace, ref.name, ref.key)
    if not text:
        message = f"ConfigMap {ref.name} has no key {ref.key}"
        raise Waiting(ValidationPhase.PENDING, missing, message)
    return text


def _advance(
    ref: ValidationRef, resolved: Resolved, previous: MigrationValidationStatus, generation: int
) -> MigrationValidationStatus:
    n = names(ref.name, resolved.key)
    job = kube.get("batch/v1", "Job", n["job"], ref.namespace)
    if job is None:
        job = _start(ref, resolved)
        return progress_status(
            previous,
            ValidationPhase.RUNNING,
            "JobCreated",
            f"validation Job {n['job']} created",
            now=now(),
            generation=generation,
            key=resolved.key,
            job_name=n["job"],
            started_at=now(),
        )
    finished = _finished(job)
    if finished is None:
        return progress_status(
            previous,
            ValidationPhase.RUNNING,
            "JobRunning",
            f"validation Job {n['job']} is running",
            now=now(),
            generation=generation,
            key=resolved.key,
            job_name=n["job"],
        )
    succeeded, reason, message = finished
    if not succeeded:
        raise Waiting(
            ValidationPhase.FAILED,
            f"Job{reason}",
            f"validation Job {n['job']} failed ({reason}): {message}; no verdict",
            failed=True,
        )
    return _complete(ref, resolved, previous, generation, job)


def _start(ref: ValidationRef, resolved: Resolved) -> dict[str, Any]:
    clone = resolved.inputs.clone
    with _clone_lock(ref.namespace, clone):
        busy = [
            j
            for j in kube.list_objects("batch/v1", "Job", ref.namespace, {CLONE_LABEL: clone})
            if _finished(j) is None
            and (j["metadata"].get("labels") or {}).get(KEY_LABEL) != resolved.key[:63]
        ]
        if busy:
            raise Waiting(
                ValidationPhase.WAITING_FOR_CLONE,
                "CloneBusy",
                f"another validation ({busy[0]['metadata']['name']}) is running on "
                f"StagingClone {clone}",
            )
        for body in (
            build_inputs(ref, resolved.spec, resolved.inputs, resolved.key),
            build_report_holder(ref, clone, resolved.key),
            *build_job_access(ref, clone, resolved.key),
        ):
            kube.create_missing(body)
        job, _ = kube.create_missing(
            build_job(
                ref,
                resolved.spec,
                resolved.inputs,
                resolved.key,
                image=SETTINGS.image,
                cpu=SETTINGS.job_cpu,
                memory=SETTINGS.job_memory,
            )
        )
    return job


def _clone_lock(namespace: str, clone: str) -> threading.Lock:
    with _locks_guard:
        return _clone_locks.setdefault((namespace, clone), threading.Lock())


def _finished(job: Mapping[str, Any]) -> tuple[bool, str, str] | None:
    """(succeeded, reason, message) once the Job is complete or failed, else None."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return True, "Complete", ""
        if condition.get("type") == "Failed":
            return (
                False,
                str(condition.get("reason") or "Failed"),
                str(condition.get("message") or ""),
            )
    return None


def _complete(
    ref: ValidationRef,
    resolved: Resolved,
    previous: MigrationValidationStatus,
    generation: int,
    job: Mapping[str, Any],
) -> MigrationValidationStatus:
    n = names(ref.name, resolved.key)
    try:
        text = read_report(ref.namespace, n["report"])
        if text is None:
            raise ValueError("the Job finished without writing a report")
        report = ValidationReport.parse(json.loads(text))
    except (ValueError, SpecError, kube.KubeError) as exc:
        raise Waiting(
            ValidationPhase.FAILED,
            "ReportUnreadable",
            f"the report in ConfigMap {n['report']} cannot be read: {exc}",
            failed=True,
        ) from None
    job_status = job.get("status") or {}
    started = job_status.get("startTime") or previous.started_at
    finished = job_status.get("completionTime") or now()
    duration = seconds_between(started, finished)
    status = completed_status(
        previous,
        report,
        now=now(),
        generation=generation,
        key=resolved.key,
        report_ref=ReportRef(n["report"], "report.json"),
        job_name=n["job"],
        started_at=started,
        duration_seconds=duration,
    )
    if previous.verdict is None or previous.validation_key != resolved.key:
        metrics.record_validation(report.verdict.value, duration)
    return status


def _announce(body: kopf.Body, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    verdict = new.get("verdict")
    if verdict:
        reason = "Validated" if verdict == Verdict.VALIDATED.value else "Rejected"
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
