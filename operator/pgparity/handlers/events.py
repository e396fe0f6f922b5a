"""Which watch events wake which object's coroutine — the event-driven half of reconciling.

kopf updates its indexes and an object's live body before it calls these, so whoever is woken
sees the change. A status patch of our own comes back as an event too: it wakes nobody unless
the spec moved on (``metadata.generation`` ahead of ``status.observedGeneration``), so a
reconciliation never triggers itself.
"""

from __future__ import annotations

from typing import Any

import kopf

from pgparity.handlers.common import runtime
from pgparity.manifests.labels import VALIDATION_LABEL
from pgparity.models.common import GROUP, VERSION
from pgparity.models.migration_validation import KIND as VALIDATION
from pgparity.models.migration_validation import PLURAL as VALIDATIONS
from pgparity.models.staging_clone import KIND as CLONE
from pgparity.models.staging_clone import PLURAL as CLONES


def _spec_moved(meta: kopf.Meta, status: kopf.Status) -> bool:
    return status.get("observedGeneration") != meta.get("generation")


@kopf.on.event(GROUP, VERSION, CLONES)
async def clone_event(
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A clone's spec changed: check it now. Anything changed: its validations look again."""
    shared, namespace = runtime(memo), namespace or ""
    if _spec_moved(meta, status):
        shared.wakes.wake(CLONE, namespace, name)
    for validation in shared.views.by_clone.get((namespace, name), ()):
        shared.wakes.wake(VALIDATION, namespace, validation)


@kopf.on.event(GROUP, VERSION, VALIDATIONS)
async def validation_event(
    name: str,
    namespace: str | None,
    meta: kopf.Meta,
    status: kopf.Status,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A validation appeared, changed or went: the queue may move; a new spec is handled now."""
    shared = runtime(memo)
    shared.queue_changed.set()
    if _spec_moved(meta, status):
        shared.wakes.wake(VALIDATION, namespace or "", name)


@kopf.on.event("batch", "v1", "jobs", labels={VALIDATION_LABEL: kopf.PRESENT})
async def validation_job_event(
    namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any
) -> None:
    """A validation Job started, finished or went: its validation looks, the queue may move."""
    shared = runtime(memo)
    shared.queue_changed.set()
    shared.wakes.wake(VALIDATION, namespace or "", labels[VALIDATION_LABEL])
