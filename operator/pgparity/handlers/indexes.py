"""In-memory views of the cluster, kept by kopf from its watch streams (its "indexes").

What a reconciliation reads about other objects — a validation's clone, its Jobs, the queue —
comes from here, not from a request per object per tick: one watch per kind keeps them current,
kopf fills them completely before any handler runs (so a restarted operator decides with the
whole picture), and they cost the API server nothing between changes. The values are small
frozen views, never the live bodies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from pgparity.manifests.labels import CLONE_LABEL, KEY_LABEL, VALIDATION_LABEL
from pgparity.manifests.queue import JobOutcome, QueueKey, job_outcome
from pgparity.models.common import GROUP, VERSION, Reason
from pgparity.models.migration_validation import PLURAL as VALIDATIONS
from pgparity.models.migration_validation import ValidationPhase
from pgparity.models.staging_clone import PLURAL as CLONES

Ref = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class CloneView:
    phase: str | None
    message: str | None
    secret: str | None
    parameters: Mapping[str, str]
    parity: tuple[str, str, str] | None = None  # ParityVerified: status, reason, message


@dataclass(frozen=True)
class JobView:
    name: str
    key: str  # the validation key label (its first 63 characters)
    clone: str
    outcome: JobOutcome | None  # None while the Job is active
    start_time: str | None
    completion_time: str | None


@dataclass(frozen=True)
class QueueEntry:
    """A validation as the queue sees it: its order, its clone, and what its status says."""

    key: QueueKey
    clone: str | None
    phase: str | None
    reason: str | None  # of the Validated condition: Queued, CloneBusy, …
    position: int | None

    @property
    def waiting_for_job(self) -> bool:
        """Ready to run at its last reconciliation, held back by a limit."""
        return (self.phase, self.reason) in (
            (ValidationPhase.PENDING.value, Reason.QUEUED),
            (ValidationPhase.WAITING_FOR_CLONE.value, Reason.CLONE_BUSY),
        )


@kopf.index(GROUP, VERSION, CLONES)
async def clone_views(
    namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict[Ref, CloneView]:
    endpoints = status.get("endpoints") or {}
    return {
        (namespace or "", name): CloneView(
            phase=status.get("phase"),
            message=status.get("message"),
            secret=endpoints.get("secretName"),
            # What the servers run with (derived from production, then the spec's own), or
            # the spec's until the clone has a status.
            parameters=dict(
                status.get("parameters") or (spec.get("postgres") or {}).get("parameters") or {}
            ),
            parity=_parity_condition(status),
        )
    }


def _parity_condition(status: kopf.Status) -> tuple[str, str, str] | None:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "ParityVerified":
            return (
                str(condition.get("status")),
                str(condition.get("reason") or ""),
                str(condition.get("message") or ""),
            )
    return None


@kopf.index("batch", "v1", "jobs", labels={VALIDATION_LABEL: kopf.PRESENT})
async def validation_jobs(
    namespace: str | None, name: str, labels: kopf.Labels, status: kopf.Status, **_: Any
) -> dict[Ref, JobView]:
    """Validation Jobs by their validation (namespace, name); an old key's Job stays listed."""
    return {
        (namespace or "", labels[VALIDATION_LABEL]): JobView(
            name=name,
            key=labels.get(KEY_LABEL, ""),
            clone=labels.get(CLONE_LABEL, ""),
            outcome=job_outcome(status),
            start_time=status.get("startTime"),
            completion_time=status.get("completionTime"),
        )
    }


@kopf.index(GROUP, VERSION, VALIDATIONS)
async def validation_queue(
    namespace: str | None,
    name: str,
    meta: kopf.Meta,
    spec: kopf.Spec,
    status: kopf.Status,
    **_: Any,
) -> dict[Ref, QueueEntry]:
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    return {
        (namespace or "", name): QueueEntry(
            key=QueueKey(str(meta.get("creationTimestamp") or ""), name, namespace or ""),
            clone=(spec.get("cloneRef") or {}).get("name"),
            phase=status.get("phase"),
            reason=(conditions.get("Validated") or {}).get("reason"),
            position=status.get("queuePosition"),
        )
    }


@kopf.index(GROUP, VERSION, VALIDATIONS)
async def validations_by_clone(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[Ref, str]:
    """The names of the validations of each clone: whom a clone's change concerns."""
    return {(namespace or "", str((spec.get("cloneRef") or {}).get("name"))): name}


@dataclass(frozen=True)
class Views:
    """The indexes, as kopf hands them to operator-level handlers (by the functions' names)."""

    clones: kopf.Index[Ref, CloneView]
    jobs: kopf.Index[Ref, JobView]
    queue: kopf.Index[Ref, QueueEntry]
    by_clone: kopf.Index[Ref, str]

    @classmethod
    def of(cls, kwargs: Mapping[str, Any]) -> Views:
        return cls(
            clones=kwargs["clone_views"],
            jobs=kwargs["validation_jobs"],
            queue=kwargs["validation_queue"],
            by_clone=kwargs["validations_by_clone"],
        )


def one(index: kopf.Index[Ref, Any], ref: Ref) -> Any:
    """The single value an index holds for ``ref``, or None."""
    return next(iter(index.get(ref, ())), None)


def values(index: kopf.Index[Ref, Any]) -> Iterator[Any]:
    for store in index.values():
        yield from store
