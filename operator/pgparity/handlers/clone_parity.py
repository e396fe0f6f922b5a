"""A StagingClone's ParityVerified condition: the parity floor against production, checked by
a Job every ``spec.parity.intervalMinutes``; and a builtin clone's parameters, derived from
production before its servers are created.

The operator never talks to production itself: each round it creates a Job running ``pgparity
parity --floor-only`` (``manifests.parity``), and once the Job finished it reads the result from
the report ConfigMap. Between rounds, and while a Job runs, the last result stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from pgparity import metrics
from pgparity.errors import SpecError
from pgparity.handlers.common import api, now, options
from pgparity.kube import client as kube
from pgparity.kube.reports import read_report
from pgparity.manifests.clone import CloneRef
from pgparity.manifests.parity import (
    build_derive_objects,
    build_parity_objects,
    check_round,
    parity_names,
)
from pgparity.manifests.queue import job_outcome
from pgparity.models.common import Condition, ConditionStatus
from pgparity.models.parity_report import FloorSummary, parse_floor, parse_parameters
from pgparity.models.staging_clone import ParitySpec, ParityState, StagingCloneStatus

CONDITION = "ParityVerified"
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


@dataclass(frozen=True)
class ParityObserved:
    condition: tuple[ConditionStatus, str, str]
    state: ParityState | None = None  # a new result; None keeps the last one


def parity_condition(status: StagingCloneStatus) -> Condition | None:
    return next((c for c in status.conditions if c.type == CONDITION), None)


async def observe_parity(
    clone: CloneRef,
    parity: ParitySpec,
    previous: StagingCloneStatus,
    clone_secret: str | None,
    ready: bool,
) -> ParityObserved:
    if not ready or clone_secret is None:
        return _kept(previous, "CloneNotReady", "parity is checked once the clone is Ready")
    round_ = check_round(datetime.now(UTC).timestamp(), parity)
    n = parity_names(clone.name, parity, round_)
    job = await api(kube.get, "batch/v1", "Job", n["job"], clone.namespace)
    if job is None:
        for body in build_parity_objects(
            clone, parity, clone_secret, round_, image=options().image
        ):
            await api(kube.create_missing, body)
        return _kept(previous, "Checking", f"parity Job {n['job']} started")
    outcome = job_outcome(job.get("status"))
    if outcome is None:
        return _kept(previous, "Checking", f"parity Job {n['job']} is running")
    if previous.parity is not None and previous.parity.job_name == n["job"]:
        return _kept(previous, "Checking", "")  # this round's result is already in the status
    if not outcome.succeeded:
        message = f"parity Job {n['job']} failed: {outcome.message or outcome.reason}"
        return ParityObserved((UNKNOWN, "ParityCheckFailed", message), _state(n["job"], None))
    return await _result(clone, n)


async def _result(clone: CloneRef, n: dict[str, str]) -> ParityObserved:
    text = await api(read_report, clone.namespace, n["report"])
    try:
        summary = parse_floor(text or "")
    except SpecError as exc:
        message = f"parity Job {n['job']} left no readable result: {exc}"
        return ParityObserved((UNKNOWN, "ParityReportUnreadable", message), _state(n["job"], None))
    metrics.set_clone_parity(clone.namespace, clone.name, summary.dimensions)
    state = TRUE if summary.ok else FALSE
    return ParityObserved((state, summary.reason, summary.describe()), _state(n["job"], summary))


def _state(job: str, summary: FloorSummary | None) -> ParityState:
    if summary is None:
        return ParityState(checked_at=now(), job_name=job)
    return ParityState(
        checked_at=now(),
        job_name=job,
        ok=summary.ok,
        first_broken=summary.first_broken,
        broken=summary.broken,
        dimensions=dict(summary.dimensions),
    )


def _kept(previous: StagingCloneStatus, reason: str, message: str) -> ParityObserved:
    """The last result stands; with none yet, the condition is Unknown for ``reason``."""
    last = parity_condition(previous)
    if last is not None and last.reason not in ("Checking", "CloneNotReady", "ParityNotChecked"):
        return ParityObserved((last.status, last.reason, last.message))
    return ParityObserved((UNKNOWN, reason, message or "checking"))


@dataclass(frozen=True)
class Derivation:
    """Production's parameters for a builtin clone, or why there are none yet."""

    parameters: Mapping[str, str] | None
    waiting: tuple[ConditionStatus, str, str] = (UNKNOWN, "DerivingParameters", "")


async def derive_parameters(
    clone: CloneRef, parity: ParitySpec, previous: StagingCloneStatus
) -> Derivation:
    """Once, before a builtin clone's servers exist: a Job reads production's effective values
    (``pgparity parity --emit parameters``); the clone is then created with them."""
    if previous.derived_parameters is not None:
        return Derivation(previous.derived_parameters)
    n = parity_names(clone.name, parity, 0)
    job = await api(kube.get, "batch/v1", "Job", n["derive"], clone.namespace)
    if job is None:
        for body in build_derive_objects(clone, parity, image=options().image):
            await api(kube.create_missing, body)
    outcome = job_outcome((job or {}).get("status"))
    if outcome is None:
        message = f"Job {n['derive']} reads production's parameters"
        return Derivation(None, (UNKNOWN, "DerivingParameters", message))
    if not outcome.succeeded:
        message = f"Job {n['derive']} failed: {outcome.message or outcome.reason}"
        return Derivation(None, (FALSE, "ParameterDerivationFailed", message))
    text = await api(read_report, clone.namespace, n["report"])
    try:
        return Derivation(dict(parse_parameters(text or "").parameters))
    except SpecError as exc:
        message = f"Job {n['derive']} left no readable parameters: {exc}"
        return Derivation(None, (FALSE, "ParameterDerivationFailed", message))
