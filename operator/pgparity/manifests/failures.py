"""What a handler does when a reconciliation fails: try again (after how long), or give up.

Pure: the decision is made from the error alone; ``handlers.common.handler_error`` turns it
into kopf's ``TemporaryError(delay=…)`` or ``PermanentError``. Giving up is for input that
cannot work until a person changes it; everything that may pass on its own (the API server
slow, refusing or in conflict, a database away, a call past its deadline) is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pgparity.errors import KubeError, UsageError

CONFLICT_RETRY_SECONDS = 1.0  # someone else wrote the object: read it afresh, soon
_CONFLICT = 409


class Recovery(StrEnum):
    RETRY = "retry"
    GIVE_UP = "give-up"


@dataclass(frozen=True)
class FailurePlan:
    recovery: Recovery
    delay_seconds: float = 0.0  # RETRY: after how long


def plan_failure(error: Exception, resync_seconds: float) -> FailurePlan:
    """Bad input gives up; a write conflict retries soon; anything else at the next resync."""
    if isinstance(error, UsageError):
        return FailurePlan(Recovery.GIVE_UP)
    if isinstance(error, KubeError) and error.status == _CONFLICT:
        return FailurePlan(Recovery.RETRY, min(CONFLICT_RETRY_SECONDS, resync_seconds))
    return FailurePlan(Recovery.RETRY, resync_seconds)
