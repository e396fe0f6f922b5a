"""Setting one condition in a list of them, as the Kubernetes API conventions want it."""

from __future__ import annotations

from collections.abc import Iterable

from pgparity.models.common import Condition, ConditionStatus
from pgparity.models.migration_validation import CONDITION_TYPES


def set_condition(
    previous: Iterable[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: str,
    generation: int,
) -> tuple[Condition, ...]:
    """``previous`` with ``type_`` set; its transition time changes only with its status."""
    found = {c.type: c for c in previous}
    old = found.get(type_)
    when = old.last_transition_time if old is not None and old.status is status else now
    found[type_] = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32768],
        last_transition_time=when,
        observed_generation=generation,
    )
    return tuple(found[t] for t in sorted(found, key=_order))


def _order(type_: str) -> tuple[int, str]:
    return (CONDITION_TYPES.index(type_) if type_ in CONDITION_TYPES else 99, type_)
