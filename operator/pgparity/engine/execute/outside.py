"""Rehearse statements that cannot run in a transaction, on a clone, and undo them.

CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY, DETACH PARTITION
CONCURRENTLY and VACUUM cannot be rolled back, so they run after the rolled-back part, each on
its own in autocommit under the same timeouts, and only on databases marked as clones. Their
locks are sampled from a second session (the rehearsing session's own pg_locks is gone when an
autocommit statement ends). Afterwards the schema is put back with a compensation plan computed
from catalog snapshots, and an index left invalid is reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from pgparity.engine.execute import trace
from pgparity.engine.execute.dryrun import (
    Mark,
    ProgressPacer,
    Timeouts,
    TransactionalRun,
    no_mark,
    set_timeouts,
)
from pgparity.engine.sql.statements import OutsideAction, Statement
from pgparity.errors import DatabaseError
from pgparity.models.progress import Progress, quiet
from pgparity.models.report import NotExecuted, StatementError, StatementResult
from pgparity.pg.connection import connect, error_message
from pgparity.pg.sqlexec import CATALOG_SEARCH_PATH, LexingChangedError, execute_one
from pgparity.schema.compensation import plan_compensation
from pgparity.schema.digest import CatalogSnapshot, ObjectChange, take_snapshot

LOCK_SAMPLE_SECONDS = 0.01
# The lock sampler only ever runs pgparity's own queries: resolve them in pg_catalog.
CATALOG_ONLY = f"-c search_path={CATALOG_SEARCH_PATH.replace(' ', '')}"
# Errors meaning "an object this statement names does not exist" (class 42, undefined_*).
# What a statement raises when an object an earlier statement made (and the dry-run rolled
# back) is missing.
_UNDEFINED = (
    pg_errors.UndefinedTable,
    pg_errors.UndefinedColumn,
    pg_errors.UndefinedObject,
    pg_errors.UndefinedFunction,
)


@dataclass(frozen=True)
class InvalidIndex:
    statement: Statement
    index: str


@dataclass
class OutsideRun:
    results: list[StatementResult] = field(default_factory=list)
    invalid_indexes: list[InvalidIndex] = field(default_factory=list)
    compensation_failures: list[str] = field(default_factory=list)
    unplannable: list[ObjectChange] = field(default_factory=list)


def not_executed(statements: Sequence[Statement], reason: str) -> list[StatementResult]:
    return [s.result(executed=False, not_executed_reason=reason) for s in statements]


def rehearse_outside_transaction(
    dsn: str,
    statements: Sequence[Statement],
    timeouts: Timeouts,
    baseline: CatalogSnapshot,
    transactional: TransactionalRun,
    *,
    mark: Mark = no_mark,
    on_session: Callable[[int], None] = lambda _: None,
    progress: Progress = quiet,
) -> OutsideRun:
    """Run each statement on the clone at ``dsn``, measure it, and restore ``baseline``.

    ``on_session`` learns the rehearsing session's pid (an observer counts who it blocks);
    ``mark`` says which statement runs (compensation is not the migration: it is unmarked).
    """
    run = OutsideRun()
    pacer = ProgressPacer(progress, len(statements))
    with (
        connect(dsn, role="clone", user_sql=True) as conn,
        connect(dsn, role="clone (lock sampler)", session_options=CATALOG_ONLY) as watch,
    ):
        on_session(conn.info.backend_pid)
        set_timeouts(conn, timeouts, local=False)
        for statement in statements:
            reason = _skip_reason(statement, transactional)
            if reason:
                run.results.extend(not_executed([statement], reason))
                continue
            pacer.statement(statement, " outside the transaction")
            try:
                run.results.append(_rehearse(conn, watch, statement, transactional, mark))
            except KeyboardInterrupt:
                # Ctrl-C or SIGTERM: psycopg cancelled the statement on the server, which can
                # leave an invalid index behind; put the clone back before giving up.
                _restore(conn, statement, baseline, run, progress)
                raise
            steps = _restore(conn, statement, baseline, run, progress)
            if steps:
                run.results[-1] = replace(run.results[-1], compensation=steps)
    return run


def _skip_reason(statement: Statement, transactional: TransactionalRun) -> NotExecuted | None:
    if statement.action is OutsideAction.CLUSTER_LEVEL:
        return NotExecuted.CLUSTER_LEVEL
    if transactional.failed:
        return NotExecuted.TRANSACTIONAL_PART_FAILED
    return None


def _rehearse(
    conn: psycopg.Connection[Any],
    watch: psycopg.Connection[Any],
    statement: Statement,
    transactional: TransactionalRun,
    mark: Mark,
) -> StatementResult:
    state = trace.session_state(conn)
    files = trace.relation_files(conn)
    settings = state.timeouts()
    sampler = LockSampler(watch, conn.info.backend_pid)
    mark(statement.index)
    started = time.perf_counter()
    error: StatementError | None = None
    undefined = False
    with sampler:
        try:
            execute_one(conn, statement.sql)
        except psycopg.Error as exc:
            if conn.closed:
                raise DatabaseError(f"lost the connection to the clone: {exc}") from exc
            error = StatementError(exc.sqlstate, error_message(exc))
            undefined = isinstance(exc, _UNDEFINED)
        except LexingChangedError as exc:
            error = StatementError(None, str(exc))
        finally:
            mark(None)
    elapsed = (time.perf_counter() - started) * 1000
    if undefined and _depends_on_migration(statement, transactional):
        return statement.result(
            executed=False,
            settings_in_effect=settings,
            not_executed_reason=NotExecuted.DEPENDS_ON_MIGRATION,
        )
    return statement.result(
        executed=True,
        settings_in_effect=settings,
        duration_ms=elapsed,
        wal_bytes=max(0, trace.session_state(conn).wal_lsn - state.wal_lsn),
        locks=tuple(trace.lock_record(lock, held_ms=elapsed) for lock in sorted(sampler.locks)),
        rewrites=tuple(trace.rewritten(files, trace.relation_files(conn))),
        error=error,
    )


def _depends_on_migration(statement: Statement, transactional: TransactionalRun) -> bool:
    changed = transactional.created_relations | transactional.touched_relations
    bare = {name.rpartition(".")[2] for name in changed}
    return any(rel in changed or rel.rpartition(".")[2] in bare for rel in statement.relations)


def _restore(
    conn: psycopg.Connection[Any],
    statement: Statement,
    baseline: CatalogSnapshot,
    run: OutsideRun,
    progress: Progress,
) -> tuple[str, ...]:
    """Compensate what ``statement`` changed; returns the compensating statements."""
    after = take_snapshot(conn)
    for key, definition in after.objects.items():
        was = baseline.objects.get(key)
        if (
            key.startswith("index:")
            and definition.get("valid") is False
            and (was is None or was.get("valid") is not False)
        ):
            run.invalid_indexes.append(InvalidIndex(statement, key.partition(":")[2]))
    plan = plan_compensation(baseline, after)
    run.unplannable.extend(plan.unplannable)
    for step in plan.steps:
        progress(f"compensating: {step.reason}")
        try:
            conn.execute(step.statement)
        except psycopg.Error as exc:
            run.compensation_failures.append(f"{step.reason}: {error_message(exc)}")
    return tuple(step.statement.as_string(conn) for step in plan.steps)


class LockSampler:
    """Samples the granted locks of one backend from another session until stopped."""

    def __init__(
        self, conn: psycopg.Connection[Any], pid: int, period: float = LOCK_SAMPLE_SECONDS
    ) -> None:
        self._conn = conn
        self._pid = pid
        self._period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="pgparity-lock-sampler", daemon=True
        )
        self.locks: set[trace.HeldLock] = set()
        self.error: BaseException | None = None

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                self.locks |= trace.held_locks(self._conn, self._pid)
                self._stop.wait(self._period)
        except psycopg.Error as exc:  # the report says fewer locks; the run goes on
            self.error = exc
