"""When the observer cannot observe, the report says so: unknown, never "0 blocked, 0 B behind".

A role without pg_monitor sees pg_stat_replication's rows but not their positions; a sampler
whose session dies, or a replica that stops answering, observes nothing after that; a target
with no replica has no lag to measure. Each is an ``observation-incomplete`` finding — an
error when a budget depends on what could not be observed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fix_pg import (
    PgDatabase,
    Unprivileged,
    run_pgparity,
    start_pgparity,
    table_t,
    wait_for_progress,
)
from pgparity.pg.localcluster import LocalCluster

ROWS = table_t(1000)


def _validate(dsn: str, tmp_path: Path, migration: str, *extra: str) -> dict[str, Any]:
    path = tmp_path / "m.sql"
    path.write_text(migration)
    result = run_pgparity(
        "validate", "--migration", str(path), "--dsn", dsn, "--format", "json", "--quiet", *extra
    )
    assert result.returncode in (0, 1), result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _incomplete(report: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (f["severity"], f["message"])
        for f in report["findings"]
        if f["rule"] == "observation-incomplete"
    ]


class TestObservationGaps:
    MIGRATION = "UPDATE t SET v = repeat('z', 500);\nSELECT pg_sleep(0.3);\n"

    def test_a_role_without_pg_monitor_sees_no_replication_positions(
        self, tmp_path: Path, pg_unprivileged: Unprivileged
    ) -> None:
        report = _validate(pg_unprivileged.dsn, tmp_path, self.MIGRATION)
        observations = report["observations"]
        assert observations["max_replication_lag_bytes"] is None
        assert observations["max_replication_lag_seconds"] is None
        assert observations["max_blocked_sessions"] == 0  # pg_locks is visible to everyone
        assert {g["quantity"] for g in observations["observation_gaps"]} == {
            "replication_lag_bytes",
            "replication_lag_seconds",
        }
        observed = [s["observed"] for s in report["statements"] if s["observed"]]
        assert observed
        assert all(o["max_replication_lag_bytes"] is None for o in observed)
        assert report["verdict"] == "VALIDATED"
        assert [severity for severity, _ in _incomplete(report)] == ["warning", "warning"]
        assert "pg_monitor" in _incomplete(report)[0][1]

    def test_with_a_lag_budget_it_is_an_error(
        self, tmp_path: Path, pg_unprivileged: Unprivileged
    ) -> None:
        report = _validate(
            pg_unprivileged.dsn, tmp_path, self.MIGRATION, "--max-replication-lag", "64MB"
        )
        assert report["verdict"] == "REJECTED"
        errors = [m for severity, m in _incomplete(report) if severity == "error"]
        assert errors
        assert "--max-replication-lag" in errors[0]

    def test_the_replicas_own_position_still_gives_the_bytes(
        self, tmp_path: Path, pg_unprivileged: Unprivileged
    ) -> None:
        report = _validate(
            pg_unprivileged.dsn,
            tmp_path,
            self.MIGRATION,
            "--replica-dsn",
            pg_unprivileged.replica_dsn,
        )
        observations = report["observations"]
        assert observations["max_replication_lag_bytes"] is not None
        assert observations["max_replication_lag_seconds"] is None
        assert [g["quantity"] for g in observations["observation_gaps"]] == [
            "replication_lag_seconds"
        ]

    @pytest.mark.parametrize("budget", [(), ("--max-lock-wait", "1s")])
    def test_a_sampler_whose_session_is_terminated(
        self, pg_db: PgDatabase, tmp_path: Path, budget: tuple[str, ...]
    ) -> None:
        pg_db.execute(ROWS)

        def terminate_the_observer() -> None:
            terminated = pg_db.scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'pgparity-observer' AND datname = current_database()"
            )
            assert terminated == 1

        report, code = _validate_while(
            terminate_the_observer,
            tmp_path,
            "ALTER TABLE t ADD COLUMN w int;\nSELECT pg_sleep(1.5);\n",
            "--dsn",
            pg_db.dsn,
            *budget,
        )
        observations = report["observations"]
        for key in ("max_blocked_sessions", "max_lock_wait_seconds", "max_replication_lag_bytes"):
            assert observations[key] is None, key
        assert report["statements"][1]["observed"]["max_blocked_sessions"] is None
        severities = {severity for severity, _ in _incomplete(report)}
        assert severities == ({"warning", "error"} if budget else {"warning"})
        assert report["verdict"] == ("REJECTED" if budget else "VALIDATED")
        assert code == (1 if budget else 0)

    def test_a_replica_that_stops_answering(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        pg_db.execute(ROWS)
        pg_db.cluster.wait_replay()

        def terminate_the_replica_observer() -> None:
            with psycopg.connect(pg_db.replica_dsn, autocommit=True) as replica:
                replica.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'pgparity-observer'"
                )

        report, _ = _validate_while(
            terminate_the_replica_observer,
            tmp_path,
            "UPDATE t SET v = 'y';\nSELECT pg_sleep(1.5);\n",
            "--dsn",
            pg_db.dsn,
            "--replica-dsn",
            pg_db.replica_dsn,
        )
        observations = report["observations"]
        assert observations["max_replication_lag_bytes"] is None
        assert observations["max_blocked_sessions"] == 0  # the primary was still observed
        reasons = " ".join(g["reason"] for g in observations["observation_gaps"])
        assert "replica could not be sampled" in reasons


def _validate_while(
    act: Callable[[], None], tmp_path: Path, migration: str, *args: str
) -> tuple[dict[str, Any], int]:
    """Validate ``migration`` and, while its second statement runs, ``act``."""
    path = tmp_path / "m.sql"
    path.write_text(migration)
    process = start_pgparity("validate", "--migration", str(path), "--format", "json", *args)
    wait_for_progress(process, "statement 2 (line 2)")
    time.sleep(0.3)
    act()
    out, _ = process.communicate(timeout=60)
    report: dict[str, Any] = json.loads(out)
    return report, process.returncode


@pytest.fixture(scope="module")
def lone_primary() -> Iterator[LocalCluster]:
    with LocalCluster(durable=False, replicas=0) as cluster:
        yield cluster


class TestNoReplica:
    def test_no_replica_is_unknown_lag_and_an_error_only_under_a_lag_budget(
        self, lone_primary: LocalCluster, tmp_path: Path
    ) -> None:
        with psycopg.connect(lone_primary.primary_dsn, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS t")
            conn.execute(ROWS)
        plain = _validate(lone_primary.primary_dsn, tmp_path, TestObservationGaps.MIGRATION)
        assert plain["observations"]["max_replication_lag_bytes"] is None
        assert plain["verdict"] == "VALIDATED"
        assert _incomplete(plain) == []
        budgeted = _validate(
            lone_primary.primary_dsn,
            tmp_path,
            TestObservationGaps.MIGRATION,
            "--max-replication-lag",
            "10s",
        )
        assert budgeted["verdict"] == "REJECTED"
        assert [s for s, _ in _incomplete(budgeted)] == ["error"]
        assert "no replica" in _incomplete(budgeted)[0][1]
