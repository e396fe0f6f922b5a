"""The validation queue, kept current: who may start, who waits where, and its metrics.

``decide`` applies ``manifests.queue.admit`` to what kopf's indexes show: the validation Jobs
running now (plus the ones this process has just created and the index does not show yet) and
the validations whose status says they wait (``Queued``, ``CloneBusy``). Statuses are the queue's
memory, so a restarted operator rebuilds the same queue from the API objects.

``keep_queue`` runs for the operator's lifetime: after anything that may move the queue (a
validation or a Job appeared, changed or went away), it recomputes the decisions once per burst
of changes, publishes the metrics, and wakes exactly the validations whose status would change —
the head when a slot frees, those whose position moved. Each of them then decides for itself,
under the admission lock, with the same function.
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from pgparity import metrics
from pgparity.handlers.common import Runtime, options
from pgparity.handlers.indexes import JobView, QueueEntry, Ref, values
from pgparity.manifests.queue import (
    Admission,
    Contender,
    Decision,
    Occupancy,
    QueueKey,
    admit,
    queued,
)
from pgparity.models.common import Reason
from pgparity.models.migration_validation import KIND

logger = logging.getLogger(__name__)

# Changes arriving within this window are handled in one pass (a burst of new objects).
DEBOUNCE_SECONDS = 0.5


def decide(shared: Runtime, me: Contender | None = None) -> dict[QueueKey, Decision]:
    """A decision for every waiting validation (and ``me``, which is about to ask)."""
    occupancy = _occupancy(shared.views.jobs, shared)
    contenders = {
        entry.key: Contender(entry.key, entry.clone)
        for entry in values(shared.views.queue)
        if entry.waiting_for_job
        and entry.clone
        and (entry.key.namespace, entry.key.name) not in shared.started
    }
    if me is not None:
        contenders[me.key] = me
    return admit(
        contenders.values(), occupancy.busy, occupancy.running, options().max_concurrent_jobs
    )


def running_jobs(shared: Runtime) -> int:
    return _occupancy(shared.views.jobs, shared).running


def _occupancy(jobs: kopf.Index[Ref, JobView], shared: Runtime) -> Occupancy:
    """The Jobs the index lists, and those this process started that it does not list yet."""
    busy: dict[tuple[str, str], str] = {}
    listed: set[tuple[str, str, str]] = set()
    running = 0
    for (namespace, validation), store in jobs.items():
        for job in store:
            listed.add((namespace, validation, job.key))
            if job.outcome is None:
                busy[(namespace, job.clone)] = validation
                running += 1
    for (namespace, validation), started in list(shared.started.items()):
        if (namespace, validation, started.key_label) in listed:  # the index caught up
            del shared.started[(namespace, validation)]
            continue
        busy[(namespace, started.clone)] = validation
        running += 1
    return Occupancy(busy, running)


def _stale(entry: QueueEntry, decision: Decision) -> bool:
    """Would the validation's status change if it reconciled now?"""
    if decision.admission is Admission.START:
        return True
    if decision.admission is Admission.CLONE_BUSY:
        return entry.reason != Reason.CLONE_BUSY
    return entry.reason != Reason.QUEUED or entry.position != decision.position


async def keep_queue(shared: Runtime) -> None:
    while True:
        await shared.queue_changed.wait()
        await asyncio.sleep(DEBOUNCE_SECONDS)
        shared.queue_changed.clear()
        try:
            _wake_the_stale(shared)
        except Exception:  # a bug must not stop the queue for the operator's lifetime
            logger.exception("recomputing the validation queue failed; the resync still runs")


def _wake_the_stale(shared: Runtime) -> None:
    decisions = decide(shared)
    metrics.set_validation_queue(queued(decisions), running_jobs(shared))
    for entry in values(shared.views.queue):
        decision = decisions.get(entry.key)
        if decision is not None and _stale(entry, decision):
            shared.wakes.wake(KIND, entry.key.namespace, entry.key.name)
