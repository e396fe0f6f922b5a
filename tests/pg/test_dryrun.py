"""The rolled-back dry-run against a real primary + streaming replica."""

from __future__ import annotations

import threading
import time

import psycopg

from fix_pg import PgDatabase, validate_sql
from pgparity.models.report import Verdict

USERS = """
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, score int);
INSERT INTO users SELECT g, 'user' || g || '@example.com', g % 100
FROM generate_series(1, 20000) g;
"""


def _rules(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.rule for f in report.findings]


def test_alter_column_type_is_reported_as_a_rewrite(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(pg_db, "ALTER TABLE users ALTER COLUMN score TYPE bigint;", tmp_path)
    statement = report.statements[0]
    assert "public.users" in statement.rewrites
    assert "public.users_pkey" in statement.rewrites
    assert "table-rewrite" in _rules(report)
    assert report.verdict is Verdict.VALIDATED  # a warning, not an error, without --strict


def test_volatile_default_rewrites_and_constant_default_does_not(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(USERS)
    report = validate_sql(
        pg_db,
        "ALTER TABLE users ADD COLUMN constant_default int DEFAULT 0;\n"
        "ALTER TABLE users ADD COLUMN volatile_default float8 DEFAULT random();\n",
        tmp_path,
    )
    constant, volatile = report.statements
    assert constant.rewrites == ()
    assert "public.users" in volatile.rewrites
    assert [f.statement for f in report.findings if f.rule == "table-rewrite"] == [2]


def test_create_index_takes_share_lock_and_is_warned_about(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(pg_db, "CREATE INDEX users_score_idx ON users (score);", tmp_path)
    locks = {(lock.relation, lock.mode) for lock in report.statements[0].locks}
    assert ("public.users", "ShareLock") in locks
    blocking = [f for f in report.findings if f.rule == "blocking-lock"]
    assert len(blocking) == 1
    assert "ShareLock on public.users" in blocking[0].message
    strict = validate_sql(
        pg_db, "CREATE INDEX users_score_idx ON users (score);", tmp_path, strict=True
    )
    assert strict.verdict is Verdict.REJECTED


def test_wal_duration_and_timeouts_in_effect_are_recorded(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(
        pg_db,
        "UPDATE users SET score = score + 1;",
        tmp_path,
        lock_timeout="1500ms",
        statement_timeout="7s",
    )
    statement = report.statements[0]
    assert statement.wal_bytes is not None
    assert statement.wal_bytes > 500_000
    assert statement.duration_ms is not None
    assert statement.duration_ms > 0
    assert statement.settings_in_effect == {"lock_timeout": "1500ms", "statement_timeout": "7s"}
    assert report.settings == {"lock_timeout": "1500ms", "statement_timeout": "7s"}


def test_lock_timeout_fires_when_another_session_holds_a_conflicting_lock(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(USERS)
    holder = pg_db.connect()
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT count(*) FROM users")  # ACCESS SHARE, held until ROLLBACK
        started = time.monotonic()
        report = validate_sql(
            pg_db, "ALTER TABLE users ADD COLUMN flag boolean;", tmp_path, lock_timeout="1s"
        )
        elapsed = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert report.verdict is Verdict.REJECTED
    assert report.statements[0].error is not None
    assert report.statements[0].error.sqlstate == "55P03"
    assert _rules(report)[0] == "lock-timeout"
    assert "statement 1 (line 1)" in report.findings[0].message
    assert 1.0 <= elapsed < 10.0


def test_statement_timeout_rejects_a_long_statement(pg_db: PgDatabase, tmp_path) -> None:
    report = validate_sql(
        pg_db,
        "CREATE TABLE t (a int);\nSELECT pg_sleep(3);\nCREATE TABLE u (a int);",
        tmp_path,
        statement_timeout="300ms",
    )
    assert report.verdict is Verdict.REJECTED
    assert report.statements[1].error is not None
    assert report.statements[1].error.sqlstate == "57014"
    assert report.statements[2].executed is False
    assert "statement-timeout" in _rules(report)


def test_migration_error_names_statement_and_line(pg_db: PgDatabase, tmp_path) -> None:
    report = validate_sql(
        pg_db, "CREATE TABLE a (x int);\n\nALTER TABLE missing ADD b int;", tmp_path
    )
    assert report.verdict is Verdict.REJECTED
    finding = report.findings[0]
    assert finding.rule == "migration-error"
    assert (finding.statement, finding.line) == (2, 3)
    assert "42P01" in finding.message


def test_everything_is_rolled_back(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(
        pg_db,
        "CREATE TABLE new_table (a int);\nALTER TABLE users ADD COLUMN c int;\nDELETE FROM users;",
        tmp_path,
    )
    assert report.verdict is Verdict.VALIDATED
    assert report.target.digest_after == report.target.digest_before
    assert pg_db.scalar("SELECT to_regclass('new_table')") is None
    assert pg_db.scalar("SELECT count(*) FROM users") == 20000
    # The replica streamed the same history: it has the rows and no new table either.
    with psycopg.connect(pg_db.replica_dsn) as replica:
        row = replica.execute("SELECT count(*), to_regclass('new_table') FROM users").fetchone()
    assert row == (20000, None)


def test_non_idempotent_statements_are_named(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(
        pg_db,
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS a int;\n"
        "ALTER TABLE users ADD COLUMN b int;\n"
        "CREATE TABLE extra (id int);",
        tmp_path,
    )
    flagged = {(f.statement, f.rule) for f in report.findings if f.rule == "not-idempotent"}
    assert flagged == {(2, "not-idempotent"), (3, "not-idempotent")}
    messages = " ".join(f.message for f in report.findings)
    assert "42701" in messages
    assert "42P07" in messages


def test_lock_hold_time_covers_the_rest_of_the_transaction(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(USERS)
    report = validate_sql(
        pg_db, "ALTER TABLE users ADD COLUMN c int;\nSELECT pg_sleep(0.4);", tmp_path
    )
    lock = next(
        lock
        for lock in report.statements[0].locks
        if lock.relation == "public.users" and lock.mode == "AccessExclusiveLock"
    )
    assert lock.held_ms is not None
    assert lock.held_ms >= 400


def test_ctrl_c_during_a_statement_cancels_it_and_rolls_back(pg_db: PgDatabase, tmp_path) -> None:
    """KeyboardInterrupt in the middle of a statement: the server cancels it, nothing stays."""
    import _thread

    pg_db.execute(USERS)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        validate_sql(pg_db, "CREATE TABLE during (a int);\nSELECT pg_sleep(20);", tmp_path)
    except KeyboardInterrupt:
        pass
    else:  # pragma: no cover - the interrupt must arrive
        raise AssertionError("the interrupt did not reach the dry-run")
    finally:
        timer.cancel()
    assert pg_db.scalar("SELECT to_regclass('during')") is None
    active = pg_db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(20)%'"
    )
    assert active == 0
