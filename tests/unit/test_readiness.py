"""The conditions generic tools read (kstatus: Ready, Reconciling, Stalled), derived from every
status the builders make; whether a validation ran past its deadline; and the gauges of a
validation, removed with it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgparity import metrics
from pgparity.manifests.conditions import set_condition
from pgparity.manifests.readiness import (
    STALLED_REASONS,
    clone_conditions,
    deadline_exceeded,
    validation_conditions,
)
from pgparity.manifests.status import progress_status, with_readiness
from pgparity.models.common import Condition, ConditionStatus
from pgparity.models.migration_validation import MigrationValidationStatus, ValidationPhase
from pgparity.models.report import Verdict
from pgparity.models.staging_clone import ClonePhase, StagingCloneStatus

TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
Phase = ValidationPhase


def kstatus(conditions: tuple[Condition, ...]) -> dict[str, tuple[ConditionStatus, str]]:
    return {
        c.type: (c.status, c.reason)
        for c in conditions
        if c.type in ("Ready", "Reconciling", "Stalled")
    }


def validation(
    phase: Phase | None, verdict: Verdict | None, reason: str
) -> MigrationValidationStatus:
    conditions = set_condition((), "Validated", UNKNOWN, reason, "m", "t0", 1)
    return MigrationValidationStatus(
        phase=phase, verdict=verdict, conditions=conditions, message="m", observed_generation=1
    )


@pytest.mark.parametrize(
    ("phase", "verdict", "reason", "ready", "reconciling", "stalled"),
    [
        (None, None, "Pending", FALSE, TRUE, FALSE),
        (Phase.PENDING, None, "Queued", FALSE, TRUE, FALSE),
        (Phase.PENDING, None, "MigrationNotFound", FALSE, TRUE, FALSE),
        (Phase.WAITING_FOR_CLONE, None, "CloneNotReady", FALSE, TRUE, FALSE),
        (Phase.WAITING_FOR_CLONE, None, "CloneBusy", FALSE, TRUE, FALSE),
        (Phase.RUNNING, None, "JobRunning", FALSE, TRUE, FALSE),
        (Phase.COMPLETED, Verdict.VALIDATED, "Validated", TRUE, FALSE, FALSE),
        (Phase.COMPLETED, Verdict.REJECTED, "Rejected", FALSE, FALSE, TRUE),
        (Phase.FAILED, None, "JobDeadlineExceeded", FALSE, FALSE, TRUE),
        (Phase.FAILED, None, "InvalidSpec", FALSE, FALSE, TRUE),
        (Phase.FAILED, None, "ReportUnreadable", FALSE, FALSE, TRUE),
    ],
)
def test_a_validation_is_ready_only_when_validated_and_stalled_without_one(
    phase: Phase | None,
    verdict: Verdict | None,
    reason: str,
    ready: ConditionStatus,
    reconciling: ConditionStatus,
    stalled: ConditionStatus,
) -> None:
    found = kstatus(validation_conditions(validation(phase, verdict, reason), "t1", 1))
    assert found == {
        "Ready": (ready, reason),
        "Reconciling": (reconciling, reason),
        "Stalled": (stalled, reason),
    }


def test_every_status_the_builders_make_carries_them() -> None:
    start = MigrationValidationStatus()
    for phase in Phase:
        if phase is Phase.COMPLETED:
            continue
        status = progress_status(
            start, phase, "Why", "message", now="t", generation=2, failed=phase is Phase.FAILED
        )
        found = kstatus(status.conditions)
        assert set(found) == {"Ready", "Reconciling", "Stalled"}
        assert all(c.observed_generation == 2 for c in status.conditions)


def test_transition_times_move_only_when_the_status_does() -> None:
    first = with_readiness(validation(Phase.RUNNING, None, "JobRunning"), "t1", 1)
    again = with_readiness(replace(first, message="still running"), "t2", 1)
    times = {c.type: c.last_transition_time for c in again.conditions}
    assert times["Ready"] == times["Reconciling"] == times["Stalled"] == "t1"
    done = replace(again, phase=Phase.COMPLETED, verdict=Verdict.REJECTED)
    times = {c.type: c.last_transition_time for c in with_readiness(done, "t3", 1).conditions}
    assert times["Ready"] == "t1"  # False before and after
    assert times["Reconciling"] == times["Stalled"] == "t3"


def clone(phase: ClonePhase, *parts: tuple[str, ConditionStatus, str]) -> StagingCloneStatus:
    conditions: tuple[Condition, ...] = ()
    for type_, state, reason in parts:
        conditions = set_condition(conditions, type_, state, reason, f"{reason}!", "t0", 1)
    return StagingCloneStatus(phase=phase, conditions=conditions, message="msg")


def test_a_ready_clone_is_neither_reconciling_nor_stalled() -> None:
    status = clone(
        ClonePhase.READY, ("Provisioned", TRUE, "ObjectsCreated"), ("Ready", TRUE, "Ready")
    )
    found = kstatus(clone_conditions(status, "t1", 1))
    assert found["Reconciling"][0] is FALSE
    assert found["Stalled"][0] is FALSE
    assert found["Ready"] == (TRUE, "Ready")


@pytest.mark.parametrize(
    "reason",
    [
        "PrimaryNotReady",
        "ReplicasNotReady",
        "Seeding",
        "Unreachable",
        "CheckTimedOut",
        "SecretNotFound",
        "NoStreamingReplica",
        "ReplicaNotStreaming",
        "SeedIncomplete",
    ],
)
def test_a_clone_that_may_still_heal_is_reconciling(reason: str) -> None:
    status = clone(
        ClonePhase.PROVISIONING, ("Provisioned", FALSE, reason), ("Ready", FALSE, reason)
    )
    found = kstatus(clone_conditions(status, "t1", 1))
    assert found["Reconciling"] == (TRUE, reason)
    assert found["Stalled"][0] is FALSE


@pytest.mark.parametrize("reason", sorted(STALLED_REASONS))
def test_a_clone_that_needs_a_person_is_stalled(reason: str) -> None:
    status = clone(
        ClonePhase.PROVISIONING,
        ("Provisioned", TRUE, "External"),
        ("ReplicaStreaming", FALSE, reason),
        ("Ready", FALSE, reason),
    )
    conditions = clone_conditions(status, "t1", 1)
    found = kstatus(conditions)
    assert found["Stalled"] == (TRUE, reason)
    assert found["Reconciling"][0] is FALSE
    stalled = next(c for c in conditions if c.type == "Stalled")
    assert stalled.message == f"{reason}!"


def test_a_failed_clone_is_stalled_whatever_its_reason() -> None:
    status = clone(
        ClonePhase.FAILED, ("Seeded", FALSE, "SomethingNew"), ("Ready", FALSE, "SomethingNew")
    )
    assert kstatus(clone_conditions(status, "t1", 1))["Stalled"] == (TRUE, "SomethingNew")


def started(phase: Phase, at: str, reason: str = "JobRunning") -> MigrationValidationStatus:
    return replace(validation(phase, None, reason), started_at=at)


@pytest.mark.parametrize(
    ("status", "now", "exceeded"),
    [
        (started(Phase.RUNNING, "2026-11-25T10:00:00Z"), "2026-11-25T10:29:59Z", False),
        (started(Phase.RUNNING, "2026-11-25T10:00:00Z"), "2026-11-25T10:30:01Z", True),
        (
            started(Phase.FAILED, "2026-11-25T10:00:00Z", "JobDeadlineExceeded"),
            "2026-11-25T10:30:01Z",
            True,
        ),
        (
            started(Phase.FAILED, "2026-11-25T10:00:00Z", "JobDeadlineExceeded"),
            "2026-11-25T10:05:00Z",
            True,
        ),
        (
            started(Phase.FAILED, "2026-11-25T10:00:00Z", "JobBackoffLimitExceeded"),
            "2026-11-25T11:00:00Z",
            False,
        ),
        (started(Phase.PENDING, "2026-11-25T10:00:00Z", "Queued"), "2026-11-25T11:00:00Z", False),
        (
            replace(validation(Phase.RUNNING, None, "JobCreated"), started_at=None),
            "2026-11-25T11:00:00Z",
            False,
        ),
        (
            replace(started(Phase.COMPLETED, "2026-11-25T10:00:00Z"), verdict=Verdict.VALIDATED),
            "2026-11-25T11:00:00Z",
            False,
        ),
    ],
)
def test_the_deadline(status: MigrationValidationStatus, now: str, exceeded: bool) -> None:
    assert deadline_exceeded(status, 1800, now) is exceeded


def exposed() -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.REGISTRY).decode()


class TestValidationGauges:
    def set(self, name: str, phase: str, verdict: str | None, clone: str = "stc") -> None:
        metrics.set_validation(
            ("ns-gauges", name, clone),
            phases={p.value: p.value == phase for p in Phase},
            verdicts={v.value: v.value == verdict for v in Verdict},
            deadline_exceeded=False,
        )

    def test_one_hot_phase_and_verdict(self) -> None:
        self.set("v1", "Completed", "REJECTED")
        text = exposed()
        labels = 'clone="stc",name="v1",namespace="ns-gauges"'
        assert f'pgparity_validation_phase{{{labels},phase="Completed"}} 1.0' in text
        assert f'pgparity_validation_phase{{{labels},phase="Running"}} 0.0' in text
        assert f'pgparity_validation_verdict{{{labels},verdict="REJECTED"}} 1.0' in text
        assert f'pgparity_validation_verdict{{{labels},verdict="VALIDATED"}} 0.0' in text
        assert f"pgparity_validation_deadline_exceeded{{{labels}}} 0.0" in text
        metrics.forget_validation("ns-gauges", "v1")
        assert 'name="v1"' not in exposed()

    def test_a_changed_clone_label_leaves_no_stale_series(self) -> None:
        self.set("v2", "Running", None, clone="a")
        self.set("v2", "Running", None, clone="b")
        text = exposed()
        assert 'clone="a",name="v2"' not in text
        assert 'clone="b",name="v2"' in text
        metrics.forget_validation("ns-gauges", "v2")
        metrics.forget_validation("ns-gauges", "v2")  # twice is harmless
        assert 'name="v2"' not in exposed()
