"""Statements that cannot run in a transaction: rehearsed on clones, then compensated."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

from fix_pg import PgDatabase, validate_sql
from pgparity.models.report import Phase, Verdict

ORDERS = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, total numeric);
INSERT INTO orders SELECT g, g % 500, g * 1.5 FROM generate_series(1, 20000) g;
CREATE INDEX orders_total_idx ON orders (total);
"""


def _index_exists(db: PgDatabase, name: str) -> bool:
    return db.scalar(f"SELECT to_regclass('{name}') IS NOT NULL") is True


class _ReleaseWhenWaiting(threading.Thread):
    """Commits ``reader`` ``hold_ms`` after a CREATE INDEX CONCURRENTLY is seen waiting on a
    lock (its wait for older snapshots), or after 60 s if it never is."""

    def __init__(self, db: PgDatabase, reader: psycopg.Connection[Any], hold_ms: int) -> None:
        super().__init__(daemon=True)
        self._db, self._reader, self._hold = db, reader, hold_ms / 1000
        self.saw_it_waiting = False

    def run(self) -> None:
        deadline = time.monotonic() + 60
        with self._db.connect() as watcher:
            while not self.saw_it_waiting and time.monotonic() < deadline:
                row = watcher.execute(_CIC_WAITING).fetchone()
                self.saw_it_waiting = bool(row and row[0])
                time.sleep(0.02)
        if self.saw_it_waiting:
            time.sleep(self._hold)
        self._reader.execute("COMMIT")


_CIC_WAITING = (
    "SELECT count(*) > 0 FROM pg_stat_activity "
    "WHERE query ILIKE 'CREATE INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'"
)


def test_create_index_concurrently_runs_on_a_clone_and_is_compensated(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(ORDERS)
    # An open snapshot elsewhere makes CREATE INDEX CONCURRENTLY wait (it waits for every
    # older transaction) while holding its lock, so the lock sampler sees it for certain.
    reader = pg_db.connect()
    reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    reader.execute("SELECT 1")
    # Released once the rehearsal is seen waiting for it (plus a pause, so the 10 ms lock
    # sampler cannot miss the lock): no guess at how long the run takes to get there.
    releaser = _ReleaseWhenWaiting(pg_db, reader, hold_ms=300)
    releaser.start()
    try:
        report = validate_sql(
            pg_db,
            "ALTER TABLE orders ADD COLUMN note text;\n"
            "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer);",
            tmp_path,
        )
    finally:
        releaser.join()
        reader.close()
    assert releaser.saw_it_waiting
    assert report.verdict is Verdict.VALIDATED, report.findings
    concurrent = report.statements[1]
    assert concurrent.duration_ms is not None
    assert concurrent.duration_ms >= 300  # it really waited for the older snapshot
    assert concurrent.phase is Phase.OUTSIDE_TRANSACTION
    assert concurrent.executed
    assert not concurrent.transactional
    assert concurrent.duration_ms is not None
    assert concurrent.duration_ms > 0
    assert ("public.orders", "ShareUpdateExclusiveLock") in {
        (lock.relation, lock.mode) for lock in concurrent.locks
    }
    assert any("DROP INDEX CONCURRENTLY" in step for step in concurrent.compensation)
    assert not _index_exists(pg_db, "orders_customer_idx")
    assert report.target.digest_after_compensation == report.target.digest_before


def test_unique_index_concurrently_on_duplicates_leaves_an_invalid_index(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(ORDERS)
    report = validate_sql(
        pg_db,
        "CREATE UNIQUE INDEX CONCURRENTLY orders_customer_key ON orders (customer);",
        tmp_path,
    )
    assert report.verdict is Verdict.REJECTED
    rules = [f.rule for f in report.findings]
    assert "migration-error" in rules  # 23505 unique violation
    assert "invalid-index" in rules
    assert not _index_exists(pg_db, "orders_customer_key")  # compensation dropped it
    assert report.target.digest_after_compensation == report.target.digest_before


def test_drop_index_concurrently_is_rebuilt_afterwards(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(ORDERS)
    report = validate_sql(pg_db, "DROP INDEX CONCURRENTLY orders_total_idx;", tmp_path)
    assert report.verdict is Verdict.VALIDATED, report.findings
    assert report.statements[0].executed
    assert any("CREATE INDEX CONCURRENTLY" in s for s in report.statements[0].compensation)
    assert _index_exists(pg_db, "orders_total_idx")
    assert report.target.digest_after_compensation == report.target.digest_before


def test_reindex_concurrently_and_vacuum_run_without_compensation(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(ORDERS)
    report = validate_sql(
        pg_db, "REINDEX INDEX CONCURRENTLY orders_total_idx;\nVACUUM (ANALYZE) orders;", tmp_path
    )
    assert report.verdict is Verdict.VALIDATED, report.findings
    assert all(s.executed and s.compensation == () for s in report.statements)
    assert report.target.digest_after_compensation == report.target.digest_before


def test_detach_partition_concurrently_is_reattached(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute("""
        CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
        CREATE TABLE events_2025 PARTITION OF events
            FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE events_2026 PARTITION OF events
            FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
        INSERT INTO events SELECT g, date '2025-01-01' + g % 700 FROM generate_series(1, 5000) g;
    """)
    report = validate_sql(
        pg_db, "ALTER TABLE events DETACH PARTITION events_2025 CONCURRENTLY;", tmp_path
    )
    assert report.verdict is Verdict.VALIDATED, report.findings
    assert any("ATTACH PARTITION" in s for s in report.statements[0].compensation)
    assert pg_db.scalar("SELECT count(*) FROM events") == 5000
    assert report.target.digest_after_compensation == report.target.digest_before


def test_statements_outside_a_transaction_are_not_run_on_a_non_clone(
    pg_plain_db: PgDatabase, tmp_path
) -> None:
    pg_plain_db.execute(ORDERS)
    report = validate_sql(
        pg_plain_db, "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer);", tmp_path
    )
    statement = report.statements[0]
    assert not statement.executed
    assert statement.not_executed_reason is not None
    assert "not a pgparity clone" in statement.not_executed_reason
    assert [f.rule for f in report.findings] == ["not-executed"]
    assert not report.target.is_clone
    assert not _index_exists(pg_plain_db, "orders_customer_idx")


def test_index_on_a_column_added_by_the_migration_is_not_misreported(
    pg_db: PgDatabase, tmp_path
) -> None:
    pg_db.execute(ORDERS)
    report = validate_sql(
        pg_db,
        "ALTER TABLE orders ADD COLUMN region int;\n"
        "CREATE INDEX CONCURRENTLY orders_region_idx "
        "ON orders (region);",
        tmp_path,
    )
    statement = report.statements[1]
    assert not statement.executed
    assert "rolled back" in (statement.not_executed_reason or "")
    assert report.verdict is Verdict.VALIDATED
    assert report.target.digest_after_compensation == report.target.digest_before


def test_cluster_level_statements_are_reported_not_executed(pg_db: PgDatabase, tmp_path) -> None:
    report = validate_sql(pg_db, "CREATE DATABASE should_not_exist;", tmp_path)
    assert not report.statements[0].executed
    assert pg_db.scalar("SELECT count(*) FROM pg_database WHERE datname = 'should_not_exist'") == 0
    assert [f.rule for f in report.findings] == ["not-executed"]


def test_lock_timeout_applies_outside_the_transaction_too(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(ORDERS)
    holder = pg_db.connect()
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE")
        report = validate_sql(
            pg_db,
            "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer);",
            tmp_path,
            lock_timeout="500ms",
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert report.statements[0].error is not None
    assert report.statements[0].error.sqlstate == "55P03"
    assert report.verdict is Verdict.REJECTED
    assert not _index_exists(pg_db, "orders_customer_idx")
