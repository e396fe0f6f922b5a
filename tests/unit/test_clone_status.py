"""A StagingClone's status from what one check found (manifests.clone_status): every branch."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pgparity.manifests.clone_status import (
    FALSE,
    TRUE,
    UNKNOWN,
    CloneObservation,
    ConditionState,
    clone_event_reason,
    clone_phase,
    clone_status,
    invalid_spec,
    judge_health,
)
from pgparity.models.clone_health import CloneHealth
from pgparity.models.common import ConditionStatus, Reason
from pgparity.models.staging_clone import ClonePhase, StagingCloneStatus

DIGEST = "sha256:" + "ab" * 32
PROVISIONED = ConditionState(TRUE, Reason.OBJECTS_CREATED, "objects exist")
SEEDED = ConditionState(TRUE, Reason.SEED_JOB_COMPLETE, "seeding Job completed")
HEALTHY = CloneHealth(
    reachable=True,
    marked=True,
    streaming_replicas=1,
    replica_ok=True,
    reason=Reason.STREAMING,
    digest=DIGEST,
    tables=3,
    rows=120,
    bytes=8192,
)


def _status(
    observed: CloneObservation, previous: StagingCloneStatus | None = None
) -> StagingCloneStatus:
    return clone_status(
        previous or StagingCloneStatus(), observed, {"work_mem": "4MB"}, now="t1", generation=2
    )


def _conditions(status: StagingCloneStatus) -> dict[str, tuple[ConditionStatus, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_a_healthy_clone_is_ready_with_its_data_and_digest() -> None:
    status = _status(judge_health(PROVISIONED, SEEDED, "shop-credentials", HEALTHY))
    assert status.phase is ClonePhase.READY
    assert _conditions(status)["Ready"] == (TRUE, Reason.READY)
    assert _conditions(status)["ReplicaStreaming"] == (TRUE, Reason.STREAMING)
    assert status.message == "ready"
    assert status.schema_digest == DIGEST
    assert status.schema_digest_short == ("ab" * 32)[:12]
    assert status.data is not None
    assert status.data.rows == 120
    assert status.replicas_ready == 1
    assert status.endpoints is not None
    assert status.endpoints.secret_name == "shop-credentials"
    assert dict(status.parameters) == {"work_mem": "4MB"}
    assert status.observed_generation == 2
    assert clone_event_reason(status) == Reason.READY


class TestNotReadySaysWhy:
    @pytest.mark.parametrize(
        ("health", "reason"),
        [
            (CloneHealth(reachable=False, reason=Reason.UNREACHABLE), Reason.UNREACHABLE),
            (CloneHealth(reachable=False, reason=Reason.CHECK_TIMED_OUT), Reason.CHECK_TIMED_OUT),
            (CloneHealth(reachable=True, reason=Reason.NOT_A_PRIMARY), Reason.NOT_A_PRIMARY),
            (CloneHealth(reachable=True, reason=Reason.NOT_A_CLONE), Reason.NOT_A_CLONE),
        ],
    )
    def test_a_database_that_cannot_be_used_is_not_provisioned(
        self, health: CloneHealth, reason: Reason
    ) -> None:
        status = _status(judge_health(PROVISIONED, SEEDED, "s", health))
        assert status.phase is ClonePhase.PROVISIONING
        assert _conditions(status)["Provisioned"] == (FALSE, reason)
        assert _conditions(status)["ReplicaStreaming"] == (UNKNOWN, reason)
        assert _conditions(status)["Ready"] == (FALSE, reason)
        assert status.data is None  # an unmarked database may be production: nothing is read
        assert clone_event_reason(status) == reason

    def test_a_replica_that_does_not_stream(self) -> None:
        health = replace(HEALTHY, replica_ok=False, reason=Reason.NO_REPLICA_DSN, message="m")
        status = _status(judge_health(PROVISIONED, SEEDED, "s", health))
        assert status.phase is ClonePhase.PROVISIONING
        assert _conditions(status)["ReplicaStreaming"] == (FALSE, Reason.NO_REPLICA_DSN)
        assert status.message == "m"

    def test_an_incomplete_seed(self) -> None:
        health = replace(HEALTHY, seed_state="copying")
        status = _status(judge_health(PROVISIONED, SEEDED, "s", health))
        assert status.phase is ClonePhase.SEEDING
        assert _conditions(status)["Seeded"] == (FALSE, Reason.SEED_INCOMPLETE)
        assert status.message == "pgparity.seed_state is copying"

    def test_a_primary_pod_not_ready_yet(self) -> None:
        waiting = ConditionState(
            UNKNOWN, Reason.PRIMARY_NOT_READY, "the primary's pod is not ready"
        )
        status = _status(CloneObservation(PROVISIONED, SEEDED, waiting, "s"))
        assert status.phase is ClonePhase.PROVISIONING
        assert _conditions(status)["Ready"] == (FALSE, Reason.PRIMARY_NOT_READY)
        assert status.replicas_ready == 0

    def test_a_seeding_job_still_running(self) -> None:
        seeding = ConditionState(UNKNOWN, Reason.SEEDING, "seeding Job shop-seed is running")
        status = _status(judge_health(PROVISIONED, seeding, "s", HEALTHY))
        assert status.phase is ClonePhase.SEEDING

    def test_an_empty_reason_is_unknown_not_blank(self) -> None:
        blank = ConditionState(FALSE, "", "")
        status = _status(CloneObservation(PROVISIONED, SEEDED, blank))
        assert _conditions(status)["ReplicaStreaming"] == (FALSE, Reason.UNKNOWN)
        assert _conditions(status)["Ready"] == (FALSE, Reason.NOT_READY)


class TestOnlyAPersonCanHelp:
    def test_an_invalid_spec_fails(self) -> None:
        status = clone_status(
            StagingCloneStatus(), invalid_spec("spec.replicas: must be an integer"), None,
            now="t", generation=1,
        )  # fmt: skip
        assert status.phase is ClonePhase.FAILED
        assert _conditions(status)["Provisioned"] == (FALSE, Reason.INVALID_SPEC)
        assert status.message == "spec.replicas: must be an integer"
        assert dict(status.parameters) == {}

    def test_a_failed_seeding_job_fails(self) -> None:
        failed = ConditionState(FALSE, Reason.SEED_JOB_FAILED, "BackoffLimitExceeded")
        observed = CloneObservation(PROVISIONED, failed, ConditionState(UNKNOWN, "", ""))
        assert clone_phase(observed) is ClonePhase.FAILED


def test_a_check_that_cannot_read_keeps_what_was_known() -> None:
    ready = _status(judge_health(PROVISIONED, SEEDED, "s", HEALTHY))
    busy = replace(HEALTHY, digest=None)  # the catalog was locked by a validation
    again = clone_status(
        ready, judge_health(PROVISIONED, SEEDED, "s", busy), {}, now="t2", generation=2
    )
    assert again.schema_digest == DIGEST
    assert [c.last_transition_time for c in again.conditions] == [
        c.last_transition_time for c in ready.conditions
    ]  # nothing changed status: no transition
