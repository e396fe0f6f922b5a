"""The handlers' error boundary: which failures are tried again (and when), which give up."""

from __future__ import annotations

import pytest

from pgparity import errors
from pgparity.errors import (
    CallTimeoutError,
    ClusterError,
    DatabaseError,
    KubeError,
    PgparityError,
    PolicyRejectedError,
    SpecError,
    UsageError,
)
from pgparity.manifests.failures import (
    CONFLICT_RETRY_SECONDS,
    FailurePlan,
    Recovery,
    plan_failure,
)

RESYNC = 30.0


class TestFailuresThatPassOnTheirOwnAreTriedAgain:
    @pytest.mark.parametrize(
        "error",
        [
            KubeError("listing Jobs: cannot reach the API server"),
            KubeError("patching status: 500 Internal Server Error", 500),
            KubeError("patching status: 429 Too Many Requests", 429),
            KubeError("creating a Job: 403 Forbidden", 403),
            CallTimeoutError("the clone check did not finish within 10 s"),
            DatabaseError("cannot connect to clone primary"),
            ClusterError("local primary did not start"),
            PgparityError("anything else pgparity raises on purpose"),
        ],
    )
    def test_at_the_next_resync(self, error: Exception) -> None:
        assert plan_failure(error, RESYNC) == FailurePlan(Recovery.RETRY, RESYNC)

    def test_a_write_conflict_soon(self) -> None:
        plan = plan_failure(KubeError("patching status: 409 Conflict", 409), RESYNC)
        assert plan == FailurePlan(Recovery.RETRY, CONFLICT_RETRY_SECONDS)

    def test_never_later_than_the_resync(self) -> None:
        plan = plan_failure(KubeError("patching status: 409 Conflict", 409), 0.5)
        assert plan.delay_seconds == 0.5


class TestBadInputGivesUp:
    @pytest.mark.parametrize(
        "error",
        [
            UsageError("a value that cannot be used as given"),
            SpecError("spec.budgets.maxBlockedSessions", "must be an integer"),
            PolicyRejectedError(["public.users.email: unclassified column"]),
        ],
    )
    def test_until_a_person_changes_it(self, error: Exception) -> None:
        assert plan_failure(error, RESYNC).recovery is Recovery.GIVE_UP


def test_every_error_class_lives_in_the_one_tree() -> None:
    classes = [v for v in vars(errors).values() if isinstance(v, type)]
    assert all(issubclass(c, PgparityError) for c in classes if issubclass(c, Exception))
    assert {c.__name__ for c in classes} >= {
        "KubeError",
        "PolicyRejectedError",
        "CallTimeoutError",
        "EngineError",
    }


def test_a_policy_rejection_lists_five_problems_and_counts_the_rest() -> None:
    error = PolicyRejectedError([f"t.c{i}: unclassified column" for i in range(7)])
    assert "t.c4" in str(error)
    assert "t.c5" not in str(error)
    assert "(and 2 more)" in str(error)
    assert len(error.problems) == 7
