"""The dry-run under production-like surroundings: traffic, long readers, replica lag, plans."""

from __future__ import annotations

import psycopg
import pytest

from fix_pg import PgDatabase, validate_sql
from pgparity.engine.observe.holdlock import HoldLock
from pgparity.engine.observe.observation import Budgets, ObservationOptions, TrafficPlan
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.report import Rule, Verdict
from pgparity.models.workload import ExplainFile, Workload

USERS = """
CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text NOT NULL,
                    score int NOT NULL DEFAULT 0);
INSERT INTO users (email, score) SELECT 'user' || g || '@example.com', g % 100
FROM generate_series(1, 50000) g;
CREATE INDEX users_email_idx ON users (email);
ANALYZE users;
"""
AUTO = TrafficPlan(auto=True, clients=3, rate=50)


def _rules(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.rule for f in report.findings]


def _pgparity_sessions(db: PgDatabase) -> int:
    """pgparity's sessions still connected; a closed connection's backend exits a moment after
    the client leaves, so give it that moment before counting."""
    import time

    deadline = time.monotonic() + 3
    while True:
        names = db.scalar(
            "SELECT array_agg(application_name) FROM pg_stat_activity "
            "WHERE application_name LIKE 'pgparity%' "
            "AND datname = current_database()"
        )
        if not names or time.monotonic() > deadline:
            return len(names or [])  # type: ignore[arg-type]
        time.sleep(0.05)


def test_traffic_queues_behind_an_access_exclusive_lock(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(
        pg_db,
        "ALTER TABLE users ADD COLUMN nickname text;\nSELECT pg_sleep(1.5);",
        tmp_path,
        observation=ObservationOptions(traffic=AUTO),
    )
    alter = report.statements[0]
    assert alter.observed is not None
    assert (alter.observed.max_blocked_sessions or 0) > 0
    # The lock was held for the sleep (1.5 s) and traffic queued behind it for about as long.
    assert (alter.observed.max_lock_wait_seconds or 0.0) >= 1.3
    assert alter.observed.blocking[0].waiter == "pgparity-traffic"
    assert alter.observed.blocking[0].relation == "public.users"
    traffic = report.to_dict()["observations"]["traffic"]
    assert traffic["transactions"] > 0
    assert traffic["latency_before"]["count"] > 0
    assert traffic["latency_during"]["p99_ms"] >= 1000
    assert traffic["latency_before"]["p50_ms"] < 500
    assert (
        report.to_dict()["observations"]["max_blocked_sessions"]
        == alter.observed.max_blocked_sessions
    )
    assert "sessions-blocked" in _rules(report)
    assert _pgparity_sessions(pg_db) == 0


def test_budgets_reject_blocking_and_waits(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    budgets = Budgets(max_lock_wait_seconds=0.5, max_blocked_sessions=0)
    report = validate_sql(
        pg_db,
        "ALTER TABLE users ADD COLUMN nickname text;\nSELECT pg_sleep(1.5);",
        tmp_path,
        observation=ObservationOptions(traffic=AUTO, budgets=budgets),
    )
    assert report.verdict is Verdict.REJECTED
    by_rule = {f.rule: f for f in report.findings}
    assert by_rule[Rule.LOCK_WAIT_BUDGET].statement == 1
    assert by_rule[Rule.BLOCKED_SESSIONS_BUDGET].statement == 1
    assert "budget 0.5 s" in by_rule[Rule.LOCK_WAIT_BUDGET].message


def test_hold_lock_makes_the_migration_time_out_like_production(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(USERS)
    migration = "ALTER TABLE users ADD COLUMN flag boolean;"
    held = validate_sql(
        pg_db,
        migration,
        tmp_path,
        lock_timeout="1s",
        observation=(ObservationOptions(hold_locks=(HoldLock("public.users", 3.0),))),
    )
    assert held.verdict is Verdict.REJECTED
    error = held.statements[0].error
    assert error is not None
    assert error.sqlstate == "55P03"
    assert _rules(held)[0] == "lock-timeout"
    observed = held.statements[0].observed
    assert observed is not None
    assert (observed.own_lock_wait_seconds or 0.0) >= 0.8
    assert observed.blocking[0].blocker == "pgparity-hold-lock"
    free = validate_sql(pg_db, migration, tmp_path, lock_timeout="1s")
    assert free.verdict is Verdict.VALIDATED
    assert _pgparity_sessions(pg_db) == 0


def test_replication_lag_budget_with_replay_paused(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    backfill = "UPDATE users SET score = score + 1;"
    options = ObservationOptions(budgets=Budgets(max_lag_bytes=1024 * 1024), catchup_timeout=2)
    with psycopg.connect(pg_db.replica_dsn, autocommit=True) as replica:
        replica.execute("SELECT pg_wal_replay_pause()")
        try:
            paused = validate_sql(pg_db, backfill, tmp_path, observation=options, check_rerun=False)
        finally:
            replica.execute("SELECT pg_wal_replay_resume()")
    assert paused.verdict is Verdict.REJECTED
    lag = next(f for f in paused.findings if f.rule == "replication-lag-budget")
    assert lag.statement == 1
    assert "budget 1.0 MB" in lag.message
    assert paused.to_dict()["observations"]["max_replication_lag_bytes"] > 1024 * 1024
    assert paused.to_dict()["observations"]["replica_catchup_seconds"] is None  # never caught up
    generous = ObservationOptions(budgets=Budgets(max_lag_bytes=1024**3))
    running = validate_sql(pg_db, backfill, tmp_path, observation=generous, check_rerun=False)
    assert running.verdict is Verdict.VALIDATED, running.findings
    assert "replication-lag-budget" not in _rules(running)
    assert running.to_dict()["observations"]["replica_catchup_seconds"] is not None


def test_dropping_an_index_changes_the_plan(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    query = ExplainQuery(
        name="user by email",
        sql="SELECT * FROM users WHERE email = 'user42@example.com'",
        uses_index="users_email_idx",
        no_seq_scan_on=("users",),
    )
    explain = ExplainFile(queries=(query,))
    dropped = validate_sql(pg_db, "DROP INDEX users_email_idx;", tmp_path, explain=explain)
    (plan,) = dropped.to_dict()["observations"]["plans"]
    assert plan["changed"]
    assert "users_email_idx" in plan["before"]["indexes"]
    assert plan["after"]["seq_scans"] == ["public.users"]
    assert any("no longer uses index users_email_idx" in c for c in plan["changes"])
    rules = _rules(dropped)
    assert "plan-changed" in rules
    assert rules.count("plan-expectation") == 2  # index not used, and a seq scan
    assert dropped.verdict is Verdict.REJECTED
    assert pg_db.scalar("SELECT to_regclass('users_email_idx') IS NOT NULL") is True
    kept = validate_sql(
        pg_db, "ALTER TABLE users ADD COLUMN nickname text;", tmp_path, explain=explain
    )
    assert not kept.to_dict()["observations"]["plans"][0]["changed"]
    assert "plan-expectation" not in _rules(kept)


def test_index_built_concurrently_is_seen_by_the_plan_check(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    query = ExplainQuery(
        name="by score", sql="SELECT * FROM users WHERE score = 7", uses_index="users_score_idx"
    )
    report = validate_sql(
        pg_db,
        "CREATE INDEX CONCURRENTLY users_score_idx ON users (score);",
        tmp_path,
        explain=ExplainFile(queries=(query,), analyze_tables=True),
    )
    assert "plan-expectation" not in _rules(report), report.findings
    assert "users_score_idx" in report.to_dict()["observations"]["plans"][0]["after"]["indexes"]


def test_workload_file_traffic_and_its_errors(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    workload = Workload.parse(
        {
            "clients": 2,
            "rate": 40,
            "warmup": "300ms",
            "statements": [
                {
                    "name": "by id",
                    "sql": "SELECT * FROM users WHERE id = %(id)s",
                    "weight": 3,
                    "params": {"id": {"intRange": [1, 50000]}},
                },
                {
                    "name": "broken",
                    "sql": "SELECT 1 / %(zero)s",
                    "weight": 1,
                    "params": {"zero": {"value": 0}},
                },
            ],
        }
    )
    report = validate_sql(
        pg_db,
        "SELECT pg_sleep(0.5);",
        tmp_path,
        observation=ObservationOptions(traffic=TrafficPlan(workload=workload)),
    )
    traffic = report.to_dict()["observations"]["traffic"]
    assert traffic["statements"] == ["by id", "broken"]
    assert traffic["transactions_ok"] > 0
    assert traffic["errors"]["22012"] > 0  # division_by_zero, counted by SQLSTATE
    assert "traffic-errors" in _rules(report)
    assert _pgparity_sessions(pg_db) == 0


def test_observers_leave_no_session_behind_when_the_migration_fails(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(USERS)
    options = ObservationOptions(traffic=AUTO, hold_locks=(HoldLock("users", 2.0),))
    report = validate_sql(
        pg_db,
        "ALTER TABLE users ADD COLUMN c int;\nSELECT 1/0;",
        tmp_path,
        lock_timeout="5s",
        observation=options,
    )
    assert report.verdict is Verdict.REJECTED
    assert _pgparity_sessions(pg_db) == 0
    assert report.to_dict()["observations"]["samples"] > 0


def test_hold_lock_on_a_missing_table_is_bad_input(pg_db: PgDatabase, tmp_path) -> None:
    from pgparity.errors import UsageError

    with pytest.raises(UsageError, match="--hold-lock nope"):
        validate_sql(
            pg_db,
            "SELECT 1;",
            tmp_path,
            observation=ObservationOptions(hold_locks=(HoldLock("nope", 1.0),)),
        )
    assert _pgparity_sessions(pg_db) == 0
