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
from psycopg import errors as pg_errors
from psycopg import sql

from pgparity.engine.execute import trace
from pgparity.engine.execute.buffers import BufferCounter
from pgparity.engine.sql.statements import Statement
from pgparity.errors import DatabaseError
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.progress import Progress, quiet
from pgparity.models.quantities import Duration
from pgparity.models.report import (
    Buffers,
    Headroom,
    NotExecuted,
    PlanOutcome,
    Runs,
    RunSample,
    StatementError,
    StatementMargins,
    StatementResult,
)
from pgparity.pg.connection import error_message
from pgparity.pg.explain import explain_all
from pgparity.pg.sqlexec import LexingChangedError, execute_one, own_queries

Mark = Callable[[int | None], None]


def no_mark(_: int | None) -> None:
    return None


# A migration of thousands of statements shows where it is, not a line per statement.
EVERY_STATEMENT_UP_TO = 50
PROGRESS_PERIOD_SECONDS = 1.0


class ProgressPacer:
    """Says which statement runs: each one for short migrations, else about once a second
    (and always the first and the last)."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._total = total
        self._done = 0
        self._last = -PROGRESS_PERIOD_SECONDS

    def statement(self, statement: Statement, where: str = "") -> None:
        now = time.monotonic()
        self._done += 1
        position = f", {self._done} of {self._total}" if self._total > 1 else ""
        if (
            self._total <= EVERY_STATEMENT_UP_TO
            or now - self._last >= PROGRESS_PERIOD_SECONDS
            or self._done in (1, self._total)
        ):
            self._last = now
            self._progress(
                f"statement {statement.index} (line {statement.line}){position}{where}: "
                f"{_abbrev(statement.sql)}"
            )


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


@dataclass(frozen=True)
class Refusal:
    """A statement the run stopped at, and why."""

    statement: Statement
    reason: str


@dataclass
class TransactionalRun:
    results: list[StatementResult] = field(default_factory=list)
    created_relations: set[str] = field(default_factory=set)
    touched_relations: set[str] = field(default_factory=set)
    # Statements the run stopped at: a write to a foreign table, a lexer setting changed.
    refusals: list[Refusal] = field(default_factory=list)
    lexing_changes: list[Refusal] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return bool(self.refusals or self.lexing_changes)

    @property
    def failed(self) -> bool:
        return self.stopped or any(r.error is not None for r in self.results)


def run_in_rolled_back_transaction(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    timeouts: Timeouts,
    *,
    mark: Mark = no_mark,
    progress: Progress = quiet,
) -> TransactionalRun:
    """Run ``statements`` in one transaction on ``conn`` (autocommit), then roll it back."""
    run = TransactionalRun()
    if not statements:
        return run
    try:
        conn.execute("BEGIN")
        set_timeouts(conn, timeouts, local=True)
        _apply_measured(conn, statements, run, mark, progress)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"lost the connection during the dry-run: {exc}") from exc
    finally:
        mark(None)
        if not conn.closed:
            conn.execute("ROLLBACK")
    run.results = _with_hold_times(run.results)
    return run


def set_timeouts(conn: psycopg.Connection[Any], timeouts: Timeouts, *, local: bool) -> None:
    """The production timeouts, for the transaction (``local``: ``SET LOCAL``) or the session."""
    scope = sql.SQL("LOCAL " if local else "")
    for name, value in (
        ("lock_timeout", timeouts.lock_timeout),
        ("statement_timeout", timeouts.statement_timeout),
    ):
        conn.execute(
            sql.SQL("SET {}{} = {}").format(
                scope, sql.Identifier(name), sql.Literal(value.as_setting())
            )
        )


def _apply_measured(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    run: TransactionalRun,
    mark: Mark,
    progress: Progress,
) -> None:
    tracer = trace.StatementTracer.start(conn)
    counter = BufferCounter.start(conn)
    pacer = ProgressPacer(progress, len(statements))
    for position, statement in enumerate(statements):
        pacer.statement(statement)
        stop = _run_measured(conn, statement, (tracer, counter), run, mark)
        if stop is not None:
            run.results.extend(_skipped(statements[position + 1 :], stop))
            return


def _run_measured(
    conn: psycopg.Connection[Any],
    statement: Statement,
    meters: tuple[trace.StatementTracer, BufferCounter],
    run: TransactionalRun,
    mark: Mark,
) -> str | None:
    """Run one statement and record what it did; returns why the run stops here, if it does."""
    tracer, counter = meters
    state = tracer.state
    refusal = _foreign_write_refusal(conn, statement)
    if refusal is not None:
        run.refusals.append(Refusal(statement, refusal))
        run.results.append(_refused(statement, state, refusal))
        return STOPPED
    mark(statement.index)
    started = time.perf_counter()
    try:
        execute_one(conn, statement.sql)
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) and conn.closed:
            raise
        run.results.append(_failed(statement, _since(started), state, exc))
        return FAILED
    except LexingChangedError as exc:
        # The session no longer reads SQL as pglast does: nothing more runs in it, not even
        # pgparity's own measurements.
        run.lexing_changes.append(Refusal(statement, str(exc)))
        run.results.append(
            statement.result(
                executed=True, duration_ms=_since(started), settings_in_effect=state.timeouts()
            )
        )
        return STOPPED
    elapsed = _since(started)
    step = tracer.after_statement(conn)
    run.results.append(_measured(statement, elapsed, step, counter.after_statement(conn)))
    run.touched_relations |= {lock.object for lock in step.locks if lock.locktype == "relation"}
    run.created_relations |= step.created
    if step.foreign_writes:
        wrote = f"it wrote to foreign table {', '.join(step.foreign_writes)}"
        run.refusals.append(Refusal(statement, wrote))
        return STOPPED
    return None


# What lock_timeout and statement_timeout raise.
TIMEOUTS = (pg_errors.LockNotAvailable, pg_errors.QueryCanceled)
FAILED = NotExecuted.EARLIER_FAILED
STOPPED = NotExecuted.RUN_STOPPED


def _since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _measured(
    statement: Statement, elapsed: float, step: trace.StatementTrace, buffers: Buffers
) -> StatementResult:
    return statement.result(
        executed=True,
        duration_ms=elapsed,
        wal_bytes=step.wal_bytes,
        locks=tuple(trace.lock_record(lock) for lock in step.locks),
        rewrites=step.rewrites,
        settings_in_effect=step.before.timeouts(),
        margins=_one_run(RunSample(duration_ms=elapsed, buffers=buffers)),
    )


def _one_run(sample: RunSample) -> StatementMargins:
    """The first run's sample; headroom is judged once everything is known."""
    return StatementMargins(headroom=Headroom(), runs=Runs.of((sample,)))


def _foreign_write_refusal(conn: psycopg.Connection[Any], statement: Statement) -> str | None:
    """A statement that writes into a foreign table is refused before it runs: the foreign
    server may not undo what it is sent. Names resolve as the migration sees them (its own
    search_path, its own earlier CREATE FOREIGN TABLE), so the query is fully qualified."""
    if not statement.targets:
        return None
    names = [sql.Identifier(*name).as_string(conn) for name in statement.targets]
    with own_queries(conn, catalog_names=False):
        rows = conn.execute(_FOREIGN_TARGETS, (names,)).fetchall()
    foreign = [str(row[0]) for row in rows]
    if not foreign:
        return None
    return (
        f"it writes to foreign table {', '.join(foreign)}, which ROLLBACK may not undo on the "
        "foreign server; nothing was executed"
    )


_FOREIGN_TARGETS = """
SELECT pg_catalog.format('%%I.%%I', n.nspname, c.relname)
FROM pg_catalog.unnest(%s::pg_catalog.text[]) AS t(name)
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(t.name)
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
WHERE c.relkind OPERATOR(pg_catalog.=) 'f'
"""


def _refused(statement: Statement, state: trace.SessionState, reason: str) -> StatementResult:
    return statement.result(
        executed=False,
        not_executed_reason=reason,
        settings_in_effect=state.timeouts(),
    )


def _failed(
    statement: Statement, elapsed: float, state: trace.SessionState, exc: psycopg.Error
) -> StatementResult:
    return statement.result(
        executed=True,
        duration_ms=elapsed,
        error=StatementError(sqlstate=exc.sqlstate, message=error_message(exc)),
        settings_in_effect=state.timeouts(),
        margins=_one_run(RunSample(duration_ms=elapsed, sqlstate=exc.sqlstate, failed=True)),
    )


def _skipped(statements: Sequence[Statement], reason: str = FAILED) -> list[StatementResult]:
    return [s.result(executed=False, not_executed_reason=reason) for s in statements]


def explain_in_rolled_back_transaction(
    conn: psycopg.Connection[Any],
    queries: Sequence[ExplainQuery],
    timeouts: Timeouts,
    *,
    analyze: bool = False,
) -> dict[str, PlanOutcome]:
    """The plans before the migration, under the same timeouts and rolled back like the ones
    after it: EXPLAIN ANALYZE runs its statement, and an explain query may be DML."""
    if not queries:
        return {}
    try:
        conn.execute("BEGIN")
        set_timeouts(conn, timeouts, local=True)
        return explain_all(conn, queries, analyze=analyze)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"lost the connection while explaining: {exc}") from exc
    finally:
        if not conn.closed:
            conn.execute("ROLLBACK")


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
    progress: Progress = quiet,
) -> AfterChecks:
    """Apply the migration again (statements that must run outside a transaction in their
    in-transaction form), explain, re-run inside savepoints, and roll everything back."""
    checks = AfterChecks()
    try:
        conn.execute("BEGIN")
        set_timeouts(conn, timeouts, local=True)
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
        raise DatabaseError(f"lost the connection during the checks: {exc}") from exc
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
            execute_one(conn, text)
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.closed:
                raise
            return f"statement {statement.index} (line {statement.line}): {error_message(exc)}"
        except LexingChangedError as exc:
            return f"statement {statement.index} (line {statement.line}): {exc}"
    return None


def _rerun(conn: psycopg.Connection[Any], statements: Sequence[Statement]) -> list[RerunFailure]:
    failures: list[RerunFailure] = []
    for statement in statements:
        conn.execute("SAVEPOINT pgparity_rerun_statement")
        try:
            execute_one(conn, statement.sql)
        except LexingChangedError:
            conn.execute("ROLLBACK TO SAVEPOINT pgparity_rerun_statement")
            break
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) and conn.closed:
                raise
            conn.execute("ROLLBACK TO SAVEPOINT pgparity_rerun_statement")
            # A timeout on the second pass says nothing about idempotency.
            if not isinstance(exc, TIMEOUTS):
                failures.append(RerunFailure(statement, exc.sqlstate, error_message(exc)))
        else:
            conn.execute("RELEASE SAVEPOINT pgparity_rerun_statement")
    return failures


def _with_hold_times(results: list[StatementResult]) -> list[StatementResult]:
    """A lock is held from the statement that took it until the transaction ends.

    In production the transaction commits right after its last statement, so the time a lock
    is held is the duration of the statement that took it plus every statement after it.
    """
    updated: list[StatementResult] = []
    held = 0.0
    for result in reversed(results):  # a running sum from the end: linear in the statements
        held += result.duration_ms or 0.0
        locks = tuple(replace(lock, held_ms=held) for lock in result.locks)
        updated.append(replace(result, locks=locks))
    return updated[::-1]


def _abbrev(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
