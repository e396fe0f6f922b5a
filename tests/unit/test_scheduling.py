"""The validation queue and the operator's scheduling decisions: pure functions, many cases.

Promises: at most ``limit`` validation Jobs run at once; never two on one clone; the queue is
ordered by creation time, then name, then namespace, whatever order the inputs come in (so a
restarted operator, which rebuilds it from the API objects, decides the same); a validation
waiting for its clone takes no slot and holds nobody up; positions count 1, 2, 3, … .
"""

from __future__ import annotations

import random

import pytest

from pgparity import config
from pgparity.errors import UsageError
from pgparity.manifests.queue import (
    Admission,
    Contender,
    Decision,
    JobOutcome,
    QueueKey,
    admit,
    job_outcome,
    queued,
)
from pgparity.manifests.status import MAX_RETRY_SECONDS, progress_status, retry_delay
from pgparity.models.migration_validation import MigrationValidationStatus, ValidationPhase

START = Decision(Admission.START)


def contender(name: str, clone: str, second: int = 0, namespace: str = "ns") -> Contender:
    return Contender(QueueKey(f"2026-11-25T10:00:{second:02d}Z", name, namespace), clone)


def by_name(decisions: dict[QueueKey, Decision]) -> dict[str, Decision]:
    return {key.name: decision for key, decision in decisions.items()}


class TestAdmission:
    def test_free_slots_start_in_queue_order(self) -> None:
        got = by_name(admit([contender("a", "c1"), contender("b", "c2")], {}, 0, 2))
        assert got == {"a": START, "b": START}

    def test_no_more_jobs_than_the_limit(self) -> None:
        many = [contender(f"v{i:02d}", f"c{i}") for i in range(25)]
        for limit in (1, 3, 10, 25, 40):
            for running in (0, 1, limit - 1, limit, limit + 5):
                started = [d for d in admit(many, {}, running, limit).values() if d == START]
                assert len(started) == max(0, min(len(many), limit - running))

    def test_the_rest_wait_with_positions_one_two_three(self) -> None:
        got = admit([contender(f"v{i}", f"c{i}") for i in range(6)], {}, 0, 2)
        positions = sorted(d.position or 0 for d in got.values() if d.admission is Admission.QUEUED)
        assert positions == [1, 2, 3, 4]
        assert queued(got) == 4

    def test_earlier_creation_goes_first_whatever_the_name(self) -> None:
        got = by_name(admit([contender("zulu", "c1", 1), contender("alpha", "c2", 2)], {}, 0, 1))
        assert got["zulu"] == START
        assert got["alpha"] == Decision(Admission.QUEUED, position=1)

    def test_same_second_by_name_then_namespace(self) -> None:
        got = admit(
            [
                contender("b", "c1", namespace="x"),
                contender("a", "c2", namespace="z"),
                contender("a", "c3", namespace="y"),
            ],
            {},
            0,
            0,
        )
        order = sorted(got, key=lambda key: got[key].position or 0)
        assert [(k.name, k.namespace) for k in order] == [("a", "y"), ("a", "z"), ("b", "x")]

    def test_input_order_does_not_matter(self) -> None:
        people = [contender(f"v{i}", f"c{i % 4}", second=i % 3) for i in range(30)]
        expected = admit(people, {("ns", "c0"): "running"}, 2, 5)
        for seed in range(20):
            shuffled = people[:]
            random.Random(seed).shuffle(shuffled)
            assert admit(shuffled, {("ns", "c0"): "running"}, 2, 5) == expected

    def test_one_validation_per_clone(self) -> None:
        got = by_name(admit([contender("a", "c1"), contender("b", "c1")], {}, 0, 5))
        assert got["a"] == START
        assert got["b"] == Decision(Admission.CLONE_BUSY, holder="a")

    def test_a_running_job_holds_its_clone(self) -> None:
        got = by_name(admit([contender("b", "c1")], {("ns", "c1"): "a"}, 1, 5))
        assert got["b"] == Decision(Admission.CLONE_BUSY, holder="a")

    def test_clones_are_per_namespace(self) -> None:
        got = admit([contender("b", "c1", namespace="other")], {("ns", "c1"): "a"}, 1, 5)
        assert list(got.values()) == [START]

    def test_waiting_for_a_clone_takes_no_slot_and_blocks_nobody(self) -> None:
        got = by_name(
            admit(
                [contender("a", "busy", 0), contender("b", "free", 1)], {("ns", "busy"): "x"}, 1, 2
            )
        )
        assert got["a"].admission is Admission.CLONE_BUSY
        assert got["b"] == START

    def test_a_queued_validation_keeps_its_clone_from_later_ones(self) -> None:
        # No slot: both wait in the queue; when one frees, the earlier one takes it and the
        # later one (same clone) waits for the clone instead of jumping ahead.
        waiting = [contender("a", "c1", 0), contender("b", "c1", 1), contender("c", "c2", 2)]
        full = by_name(admit(waiting, {}, 2, 2))
        assert [full[n].position for n in "abc"] == [1, 2, 3]
        one_free = by_name(admit(waiting, {}, 1, 2))
        assert one_free["a"] == START
        assert one_free["b"] == Decision(Admission.CLONE_BUSY, holder="a")
        assert one_free["c"] == Decision(Admission.QUEUED, position=1)

    def test_more_running_than_the_limit_starts_nothing(self) -> None:
        # The limit was lowered while Jobs ran: nothing new until enough of them finish.
        got = admit([contender("a", "c1")], {}, 7, 3)
        assert list(got.values()) == [Decision(Admission.QUEUED, position=1)]

    def test_nobody_waiting(self) -> None:
        assert admit([], {("ns", "c1"): "a"}, 1, 1) == {}


class TestJobOutcome:
    @pytest.mark.parametrize(
        ("status", "outcome"),
        [
            (None, None),
            ({}, None),
            ({"active": 1}, None),
            ({"conditions": [{"type": "Complete", "status": "False"}]}, None),
            (
                {"conditions": [{"type": "Complete", "status": "True"}]},
                JobOutcome(True, "Complete", ""),
            ),
            (
                {
                    "conditions": [
                        {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
                    ]
                },
                JobOutcome(False, "DeadlineExceeded", ""),
            ),
            (
                {"conditions": [{"type": "Failed", "status": "True", "message": "boom"}]},
                JobOutcome(False, "Failed", "boom"),
            ),
            (
                {
                    "conditions": [
                        {"type": "SuccessCriteriaMet", "status": "True"},
                        {"type": "Complete", "status": "True"},
                    ]
                },
                JobOutcome(True, "Complete", ""),
            ),
        ],
    )
    def test_outcome(self, status: dict[str, object] | None, outcome: JobOutcome | None) -> None:
        assert job_outcome(status) == outcome


class TestRetryDelay:
    def test_doubles_from_five_seconds_to_five_minutes(self) -> None:
        delays = [retry_delay(n, 60.0) for n in range(1, 10)]
        assert delays[:7] == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, MAX_RETRY_SECONDS]
        assert all(d == MAX_RETRY_SECONDS for d in delays[6:])

    def test_never_slower_than_a_short_resync_at_first(self) -> None:
        assert retry_delay(1, 1.0) == 1.0
        assert retry_delay(3, 1.0) == 4.0

    def test_huge_failure_counts_stay_bounded(self) -> None:
        assert retry_delay(10_000, 60.0) == MAX_RETRY_SECONDS
        assert retry_delay(0, 60.0) == 5.0


class TestQueuedStatus:
    def test_position_only_while_queued(self) -> None:
        queued_status = progress_status(
            MigrationValidationStatus(),
            ValidationPhase.PENDING,
            "Queued",
            "position 3",
            now="t1",
            generation=1,
            queue_position=3,
        )
        assert queued_status.to_dict()["queuePosition"] == 3
        running = progress_status(
            queued_status,
            ValidationPhase.RUNNING,
            "JobCreated",
            "created",
            now="t2",
            generation=1,
        )
        assert "queuePosition" not in running.to_dict()

    def test_a_failure_keeps_its_time_while_it_stays_the_same(self) -> None:
        def fail(
            previous: MigrationValidationStatus, message: str, at: str
        ) -> MigrationValidationStatus:
            return progress_status(
                previous,
                ValidationPhase.FAILED,
                "InvalidSpec",
                message,
                now=at,
                generation=1,
                failed=True,
            )

        first = fail(MigrationValidationStatus(), "spec.cloneRef: missing", "t1")
        again = fail(first, "spec.cloneRef: missing", "t2")
        assert again.completed_at == "t1"
        assert again == first  # reconciling a failed validation again writes nothing
        other = fail(again, "spec.migration: missing", "t3")
        assert other.completed_at == "t3"


class TestScaleSettings:
    def test_defaults(self) -> None:
        settings = config.load({})
        assert settings.max_concurrent_jobs == 10
        assert settings.max_workers == 8
        assert settings.sampler_concurrency == 4

    def test_from_the_environment(self) -> None:
        settings = config.load(
            {
                "PGPARITY_MAX_CONCURRENT_JOBS": "3",
                "PGPARITY_MAX_WORKERS": "16",
                "PGPARITY_SAMPLER_CONCURRENCY": "2",
                "PGPARITY_API_TIMEOUT_SECONDS": "2.5",
                "PGPARITY_CHECK_TIMEOUT_SECONDS": "4",
            }
        )
        assert (settings.max_concurrent_jobs, settings.max_workers) == (3, 16)
        assert (settings.api_timeout_seconds, settings.check_timeout_seconds) == (2.5, 4.0)

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("PGPARITY_MAX_CONCURRENT_JOBS", "0"),
            ("PGPARITY_MAX_CONCURRENT_JOBS", "-2"),
            ("PGPARITY_MAX_CONCURRENT_JOBS", "ten"),
            ("PGPARITY_MAX_WORKERS", "0"),
            ("PGPARITY_MAX_WORKERS", "2.5"),
            ("PGPARITY_SAMPLER_CONCURRENCY", ""),
            ("PGPARITY_API_TIMEOUT_SECONDS", "0"),
            ("PGPARITY_CHECK_TIMEOUT_SECONDS", "-1"),
        ],
    )
    def test_bad_values_name_the_variable(self, variable: str, value: str) -> None:
        with pytest.raises(UsageError, match=variable):
            config.load({variable: value})
