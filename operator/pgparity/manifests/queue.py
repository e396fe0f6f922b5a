"""Who may start a validation Job now, and who waits for what: fair, deterministic, restartable.

Two limits protect the clones and the cluster: one validation per clone at a time, and at most
``limit`` validation Jobs at once across the operator (``PGPARITY_MAX_CONCURRENT_JOBS``).
Validations that are ready to run but held back wait in one queue, ordered by creation time,
then name, then namespace — an order the API objects themselves carry, so a restarted operator
computes the same queue. Pure: inputs are what the API objects say, no clock, no client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, order=True)
class QueueKey:
    """A validation's place in the order: RFC 3339 creation time (sorts as text), name, ns."""

    created: str
    name: str
    namespace: str


@dataclass(frozen=True)
class StartedJob:
    """A validation Job this process created, which the Job index may not show yet."""

    clone: str
    key_label: str  # the validation key as the Job's label holds it (63 characters)


@dataclass(frozen=True)
class Occupancy:
    """Which clones a validation Job runs on ((namespace, clone) → validation), and how many
    validation Jobs run."""

    busy: Mapping[tuple[str, str], str]
    running: int


@dataclass(frozen=True)
class Contender:
    """A validation that is ready to run (its clone is Ready) but has no Job yet."""

    key: QueueKey
    clone: str


class Admission(StrEnum):
    START = "Start"  # create the Job now
    CLONE_BUSY = "CloneBusy"  # another validation holds (or is about to hold) the clone
    QUEUED = "Queued"  # every Job slot is taken: wait at ``position``


@dataclass(frozen=True)
class Decision:
    admission: Admission
    position: int | None = None  # QUEUED: 1 is next
    holder: str | None = None  # CLONE_BUSY: the validation holding the clone


def admit(
    contenders: Iterable[Contender],
    busy: Mapping[tuple[str, str], str],
    running: int,
    limit: int,
) -> dict[QueueKey, Decision]:
    """A decision for every contender.

    ``busy`` maps (namespace, clone) to the validation whose Job runs there; ``running`` counts
    the validation Jobs running now. Walking the queue in order: a contender whose clone is busy
    waits for it without taking a slot (so it blocks nobody behind it); otherwise it starts
    while slots are free, and claims its clone, so a later contender for the same clone waits
    for it; the rest are queued in order.
    """
    slots = max(0, limit - running)
    claimed = dict(busy)
    waiting = 0
    decisions: dict[QueueKey, Decision] = {}
    for contender in sorted(contenders, key=lambda c: c.key):
        clone = (contender.key.namespace, contender.clone)
        if clone in claimed:
            decisions[contender.key] = Decision(Admission.CLONE_BUSY, holder=claimed[clone])
        elif slots > 0:
            slots -= 1
            claimed[clone] = contender.key.name
            decisions[contender.key] = Decision(Admission.START)
        else:
            waiting += 1
            decisions[contender.key] = Decision(Admission.QUEUED, position=waiting)
    return decisions


def queued(decisions: Mapping[QueueKey, Decision]) -> int:
    """How many validations wait for a Job slot."""
    return sum(d.admission is Admission.QUEUED for d in decisions.values())


@dataclass(frozen=True)
class JobOutcome:
    succeeded: bool
    reason: str
    message: str


def job_outcome(job_status: Mapping[str, Any] | None) -> JobOutcome | None:
    """How a Job ended (its Complete or Failed condition), or None while it is active."""
    for condition in (job_status or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobOutcome(True, "Complete", "")
        if condition.get("type") == "Failed":
            return JobOutcome(
                False,
                str(condition.get("reason") or "Failed"),
                str(condition.get("message") or ""),
            )
    return None
