"""The rolled-back dry-run: every transactional statement in one transaction, measured, undone.

BEGIN; SET LOCAL lock_timeout/statement_timeout (the production values); then for each
statement: the timeouts in effect, its duration, the locks it newly took, the relations it
rewrote (file node changed) and the WAL it generated. The first error stops the run, as it
would stop the migration in production. Then ROLLBACK: nothing persists. ``mark`` tells an
observer which statement runs, so what other sessions go through is charged to it.

``run_after_checks`` then applies the migration once more, in a second rolled-back transaction
that nobody measures: the plans of the application's queries are explained with the migration
applied, and the migration is applied a second time inside savepoints to find statements that
cannot be re-run after a partial failure. Keeping these out of the first transaction keeps its
locks — and so the waits it causes — exactly as long as the migration itself would hold them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg
from psycopg import sql

from pgparity.engine import trace
from pgparity.engine.connection import error_message
from pgparity.engine.plans import PlanOutcome, explain_all
from pgparity.engine.statements import Statement
from pgparity.errors import DatabaseError
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.quantities import Duration
from pgparity.models.report import StatementError, StatementResult

Progress = Callable[[str], None]
Mark = Callable[[int | None], None]


def no_mark(_: int | None) -> None:
    return None


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: Duration
    statement_timeout: Duration

    def as_settings(self) -> dict[str, str]:
        return {
            "lock_timeout": self.lock_timeout.text,
            "statement_timeout": self.statement_timeout.text,
        }


@dataclass(frozen=True)
class RerunFailure:
    """A statement that failed when the migration was applied a second time."""

    statement: Statement
    sqlstate: str | None
    message: str


@dataclass
class TransactionalRun:
    results: list[StatementResult] = field(default_factory=list)
    created_relations: set[str] = field(default_factory=set)
    touched_relations: set[str] = field(default_factory=set)

    @property
    def failed(self) -> bool:
        return any(r.error is not None for r in self.results)


def run_in_rolled_back_transaction(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    timeouts: Timeouts,
    *,
    mark: Mark = no_mark,
    progress: Progress = lambda _: None,
) -> TransactionalRun:
    """Run ``statements`` in one transaction on ``conn`` (autocommit), then roll it back."""
    run = TransactionalRun()
    if not statements:
        return run
    try:
        conn.execute("BEGIN")
        _set_local_timeouts(conn, timeouts)
        _apply_measured(conn, statements, run, mark, progress)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"lost the connection during the dry-run: {exc}") from None
    finally:
        mark(None)
        if not conn.closed:
            conn.execute("ROLLBACK")
    run.results = _with_hold_times(run.results)
    return run


def _set_local_timeouts(conn: psycopg.Connection[Any], timeouts: Timeouts) -> None:
    for name, value in (
        ("lock_timeout", timeouts.lock_timeout),
        ("statement_timeout", timeouts.statement_timeout),
    ):
        conn.execute(
            sql.SQL("SET LOCAL {} = {}").format(
                sql.Identifier(name), sql.Literal(value.as_setting())
            )
        )


def _apply_measured(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    run: TransactionalRun,
    mark: Mark,
    progress: Progress,
) -> None:
    files = trace.relation_files(conn)
    baseline_oids = set(files)
    locks = trace.held_locks(conn)
    for position, statement in enumerate(statements):
        progress(f"statement {statement.index} (line {statement.line}): {_abbrev(statement.sql)}")
        state = trace.session_state(conn)
        mark(statement.index)
        started = time.perf_counter()
        try:
            conn.execute(statement.sql.encode("utf-8"))
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.closed:
                raise
            elapsed = (time.perf_counter() - started) * 1000
            run.results.append(_failed(statement, elapsed, state, exc))
            run.results.extend(_skipped(statements[position + 1 :]))
            return
        elapsed = (time.perf_counter() - started) * 1000
        after_state = trace.session_state(conn)
        new_files = trace.relation_files(conn)
        new_locks = trace.held_locks(conn)
        taken = sorted(new_locks - locks)
        run.results.append(
            statement.result(
                executed=True,
                duration_ms=elapsed,
                wal_bytes=max(0, after_state.wal_lsn - state.wal_lsn),
                locks=tuple(trace.lock_record(lock) for lock in taken),
                rewrites=tuple(trace.rewritten(files, new_files)),
                settings_in_effect=state.timeouts(),
            )
        )
        run.touched_relations |= {lock.object for lock in taken if lock.locktype == "relation"}
        run.created_relations |= {new_files[oid].name for oid in set(new_files) - baseline_oids}
        files, locks = new_files, new_locks


def _failed(
    statement: Statement, elapsed: float, state: trace.SessionState, exc: psycopg.Error
) -> StatementResult:
    return statement.result(
        executed=True,
        duration_ms=elapsed,
        error=StatementError(sqlstate=exc.sqlstate, message=error_message(exc)),
        settings_in_effect=state.timeouts(),
    )


def _skipped(statements: Sequence[Statement]) -> list[StatementResult]:
    return [
        s.result(executed=False, not_executed_reason="an earlier statement failed")
        for s in statements
    ]


@dataclass
class AfterChecks:
    """What the second, unmeasured application of the migration found."""

    applied: bool = False
    problem: str | None = None
    rerun_failures: list[RerunFailure] = field(default_factory=list)
    plans: dict[str, PlanOutcome] = field(default_factory=dict)


def run_after_checks(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    timeouts: Timeouts,
    *,
    rerun: bool,
    explain: Sequence[ExplainQuery] = (),
    explain_analyze: bool = False,
    analyze_tables: Sequence[sql.Identifier] = (),
    progress: Progress = lambda _: None,
) -> AfterChecks:
    """Apply the migration again (statements that must run outside a transaction in their
    in-transaction form), explain, re-run inside savepoints, and roll everything back."""
    checks = AfterChecks()
    try:
        conn.execute("BEGIN")
        _set_local_timeouts(conn, timeouts)
        checks.problem = _apply_quietly(conn, statements)
        if checks.problem is None:
            checks.applied = True
            for table in analyze_tables:
                conn.execute(sql.SQL("ANALYZE {}").format(table))
            if explain:
                progress("explaining the queries with the migration applied")
                checks.plans = explain_all(conn, explain, analyze=explain_analyze)
            if rerun:
                progress("re-running the migration inside savepoints (idempotency check)")
                checks.rerun_failures = _rerun(conn, [s for s in statements if s.transactional])
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"lost the connection during the checks: {exc}") from None
    finally:
        if not conn.closed:
            conn.execute("ROLLBACK")
    return checks


def _apply_quietly(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> str | None:
    for statement in statements:
        text = statement.sql if statement.transactional else statement.in_transaction_sql
        if text is None:
            continue
        try:
            conn.execute(text.encode("utf-8"))
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.closed:
                raise
            return f"statement {statement.index} (line {statement.line}): {error_message(exc)}"
    return None


def _rerun(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> list[RerunFailure]:
    failures: list[RerunFailure] = []
    for statement in statements:
        conn.execute("SAVEPOINT pgparity_rerun_statement")
        try:
            conn.execute(statement.sql.encode("utf-8"))
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.closed:
                raise
            conn.execute("ROLLBACK TO SAVEPOINT pgparity_rerun_statement")
            # A timeout on the second pass says nothing about idempotency.
            if exc.sqlstate not in ("57014", "55P03"):
                failures.append(RerunFailure(statement, exc.sqlstate, error_message(exc)))
        else:
            conn.execute("RELEASE SAVEPOINT pgparity_rerun_statement")
    return failures


def _with_hold_times(results: list[StatementResult]) -> list[StatementResult]:
    """A lock is held from the statement that took it until the transaction ends.

    In production the transaction commits right after its last statement, so the time a lock
    is held is the duration of the statement that took it plus every statement after it.
    """
    executed = [r.duration_ms or 0.0 for r in results]
    updated: list[StatementResult] = []
    for position, result in enumerate(results):
        held = sum(executed[position:])
        locks = tuple(replace(lock, held_ms=held) for lock in result.locks)
        updated.append(replace(result, locks=locks))
    return updated


def _abbrev(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
