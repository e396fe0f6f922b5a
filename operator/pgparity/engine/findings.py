"""Turn what the dry-run measured into findings: pure functions over results.

Errors (timeouts, migration errors, drift, escaping transaction control, invalid indexes, a
schema that did not come back) reject a migration. Observations that are costly but sometimes
intended — a lock that blocks the application, a table rewrite, a statement that cannot be
re-run — are warnings, which ``--strict`` turns into errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import psycopg
from psycopg import errors as pg_errors

from pgparity.engine.execute.dryrun import Refusal, RerunFailure
from pgparity.engine.execute.outside import InvalidIndex
from pgparity.engine.observe.observation import Budgets
from pgparity.engine.sql.effects import Hazard
from pgparity.engine.sql.statements import ParsedMigration
from pgparity.models.quantities import format_bytes, format_ms
from pgparity.models.report import (
    Finding,
    NotExecuted,
    ObservationGap,
    PlanComparison,
    Quantity,
    Rule,
    Severity,
    SideEffect,
    SideEffectKind,
    StatementObservation,
    StatementResult,
    TrafficReport,
)
from pgparity.schema.digest import ObjectChange

# What each lock mode that blocks the application stops (PostgreSQL docs, "Table-Level Locks").
BLOCKING_MODES = {
    "AccessExclusiveLock": "blocks every read and write",
    "ExclusiveLock": "blocks writes and SELECT … FOR UPDATE/SHARE",
    "ShareRowExclusiveLock": "blocks writes",
    "ShareLock": "blocks writes",
}
_TABLE_KINDS = {"r", "p", "m", "f"}
MODE_STRENGTH = [
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
]

# psycopg's error class → (rule, what it means for the migration in production).
_ERROR_RULES: Mapping[type[psycopg.Error], tuple[Rule, str]] = {
    pg_errors.LockNotAvailable: (Rule.LOCK_TIMEOUT, "could not get its lock within lock_timeout"),
    pg_errors.QueryCanceled: (
        Rule.STATEMENT_TIMEOUT,
        "ran past statement_timeout and was cancelled",
    ),
    pg_errors.DeadlockDetected: (Rule.DEADLOCK, "deadlocked"),
    pg_errors.InvalidTransactionTermination: (
        Rule.TRANSACTION_CONTROL,
        "tried to end the transaction",
    ),
    pg_errors.ActiveSqlTransaction: (
        Rule.TRANSACTION_CONTROL,
        "cannot run inside a transaction block",
    ),
}
_FAILED = (Rule.MIGRATION_ERROR, "failed")


def error_rule(sqlstate: str | None) -> tuple[Rule, str]:
    """The rule a statement's error breaks (by the report's SQLSTATE), and what it means."""
    try:
        error_class = pg_errors.lookup(sqlstate or "")
    except KeyError:  # not a SQLSTATE PostgreSQL defines: a client-side failure
        return _FAILED
    return _ERROR_RULES.get(error_class, _FAILED)


def _error(rule: Rule, message: str, result: StatementResult | None = None) -> Finding:
    return Finding(
        rule=rule,
        severity=Severity.ERROR,
        message=message,
        statement=result.index if result else None,
        line=result.line if result else None,
    )


def _warning(rule: Rule, message: str, result: StatementResult) -> Finding:
    return statement_finding(rule, Severity.WARNING, message, result)


def statement_finding(
    rule: Rule, severity: Severity, message: str, result: StatementResult
) -> Finding:
    """A finding about one statement."""
    return Finding(
        rule=rule, severity=severity, message=message, statement=result.index, line=result.line
    )


def static_findings(parsed: ParsedMigration) -> list[Finding]:
    """Findings that need no database: syntax, transaction control, misplaced CONCURRENTLY."""
    if parsed.syntax_error:
        problem = parsed.syntax_error
        return [
            Finding(
                rule=Rule.SYNTAX_ERROR,
                severity=Severity.ERROR,
                line=problem.line,
                message=f"line {problem.line}, column {problem.column}: {problem.message}",
            )
        ]
    findings = [
        Finding(
            rule=Rule.TRANSACTION_CONTROL,
            severity=Severity.ERROR,
            statement=s.index,
            line=s.line,
            message=f"statement {s.index} (line {s.line}): {s.reason}; nothing was executed",
        )
        for s in parsed.transaction_control
    ]
    findings += effect_findings(parsed)
    if parsed.unwrapped:
        findings += [
            Finding(
                rule=Rule.NON_TRANSACTIONAL_IN_TRANSACTION,
                severity=Severity.ERROR,
                statement=s.index,
                line=s.line,
                message=f"statement {s.index} (line {s.line}): {s.reason}, but the file "
                "wraps everything in BEGIN … COMMIT, so it fails in production",
            )
            for s in parsed.outside
        ]
    return findings


def effect_findings(parsed: ParsedMigration) -> list[Finding]:
    """Statements with effects the dry-run cannot contain: refused ones are errors (nothing
    runs), the others (ANALYZE, CHECKPOINT) warnings."""
    found = []
    for statement in parsed.statements:
        for effect in statement.effects:
            where = f"statement {statement.index} (line {statement.line})"
            rule = Rule.LEXER_SETTING if effect.hazard is Hazard.LEXING else Rule.SIDE_EFFECT
            if effect.refused:
                message = f"{where}: {effect.message}; nothing was executed"
            else:
                message = f"{where}: {effect.message}"
            found.append(
                Finding(
                    rule=rule,
                    severity=Severity.ERROR if effect.refused else Severity.WARNING,
                    statement=statement.index,
                    line=statement.line,
                    message=message,
                )
            )
    return found


def stop_findings(refusals: Sequence[Refusal], lexing_changes: Sequence[Refusal]) -> list[Finding]:
    """The statements the dry-run stopped at while it ran."""
    return [
        Finding(
            rule=rule,
            severity=Severity.ERROR,
            statement=r.statement.index,
            line=r.statement.line,
            message=f"statement {r.statement.index} (line {r.statement.line}): {r.reason}",
        )
        for rule, stops in (
            (Rule.SIDE_EFFECT, refusals),
            (Rule.LEXER_SETTING_CHANGED, lexing_changes),
        )
        for r in stops
    ]


def side_effect_findings(effects: Sequence[SideEffect]) -> list[Finding]:
    """What the run changed that ROLLBACK did not undo and pgparity did not put back.

    Sequences not restored and advisory locks left are warnings; a replication slot created
    or dropped is an error (it holds WAL back, or is gone) unless pgparity dropped it again on
    a clone. Statistics are listed in the report only: every CREATE INDEX updates them in
    place.
    """
    found = []
    sequences = [e.object for e in effects if e.kind is SideEffectKind.SEQUENCE and not e.restored]
    if sequences:
        found.append(
            Finding(
                rule=Rule.SIDE_EFFECT_LEFT,
                severity=Severity.WARNING,
                message=f"the run advanced sequences ROLLBACK does not reset: "
                f"{', '.join(sequences)} (put back only on clones)",
            )
        )
    locks = [e.object for e in effects if e.kind is SideEffectKind.ADVISORY_LOCK]
    if locks:
        found.append(
            Finding(
                rule=Rule.SIDE_EFFECT_LEFT,
                severity=Severity.WARNING,
                message=f"the migration left session-level advisory locks after ROLLBACK "
                f"({', '.join(locks)}); pgparity released them",
            )
        )
    slots = [e for e in effects if e.kind is SideEffectKind.REPLICATION_SLOT]
    found += [
        Finding(
            rule=Rule.SIDE_EFFECT_LEFT,
            severity=Severity.WARNING if e.restored else Severity.ERROR,
            message=f"the run {'created' if e.after else 'dropped'} replication slot "
            f"{e.object}, which ROLLBACK does not undo"
            + ("; pgparity dropped it again" if e.restored else ""),
        )
        for e in slots
    ]
    return found


def error_findings(results: Iterable[StatementResult]) -> list[Finding]:
    findings = []
    for result in results:
        if result.error is None:
            continue
        rule, meaning = error_rule(result.error.sqlstate)
        findings.append(
            _error(
                rule,
                f"statement {result.index} (line {result.line}) {meaning}: "
                f"{result.error.sqlstate or 'client'} "
                f"{result.error.message}",
                result,
            )
        )
    return findings


def blocking_lock_findings(results: Iterable[StatementResult], created: set[str]) -> list[Finding]:
    """A warning where a statement first holds a pre-existing table in a blocking mode.

    Locks last until the transaction ends, so only an escalation matters: a SHARE lock taken
    after the same transaction already holds ACCESS EXCLUSIVE changes nothing for the
    application. Index and sequence locks follow their table's and are not reported twice.
    """
    findings = []
    held: dict[str, str] = {}
    for result in results:
        for lock in sorted(result.locks, key=lambda item: -_strength(item.mode)):
            if (
                lock.locktype != "relation"
                or lock.relkind not in _TABLE_KINDS
                or lock.relation in created
            ):
                continue
            previous = held.get(lock.relation)
            if previous is not None and _strength(previous) >= _strength(lock.mode):
                continue
            held[lock.relation] = lock.mode
            if lock.mode in BLOCKING_MODES:
                hold = f", held {format_ms(lock.held_ms)}" if lock.held_ms is not None else ""
                findings.append(
                    _warning(
                        Rule.BLOCKING_LOCK,
                        f"statement {result.index} (line {result.line}) takes {lock.mode} on "
                        f"{lock.relation}{hold}: {BLOCKING_MODES[lock.mode]}",
                        result,
                    )
                )
    return findings


def rewrite_findings(results: Iterable[StatementResult], created: set[str]) -> list[Finding]:
    findings = []
    for result in results:
        rewritten = [r for r in result.rewrites if r not in created]
        if rewritten and result.transactional:
            findings.append(
                _warning(
                    Rule.TABLE_REWRITE,
                    f"statement {result.index} (line {result.line}) rewrote {', '.join(rewritten)}",
                    result,
                )
            )
    return findings


def rerun_findings(
    failures: Sequence[RerunFailure], results: Sequence[StatementResult]
) -> list[Finding]:
    by_index = {r.index: r for r in results}
    return [
        _warning(
            Rule.NOT_IDEMPOTENT,
            f"statement {f.statement.index} (line {f.statement.line}) fails when the "
            f"migration is re-run after a partial failure: {f.sqlstate} {f.message}",
            by_index[f.statement.index],
        )
        for f in failures
        if f.statement.index in by_index
    ]


def not_executed_findings(results: Iterable[StatementResult]) -> list[Finding]:
    return [
        _warning(
            Rule.NOT_EXECUTED,
            f"statement {r.index} (line {r.line}) was not rehearsed: {r.not_executed_reason}",
            r,
        )
        for r in results
        if not r.transactional
        and not r.executed
        and r.not_executed_reason != NotExecuted.TRANSACTIONAL_PART_FAILED
    ]


def invalid_index_findings(invalid: Sequence[InvalidIndex]) -> list[Finding]:
    return [
        Finding(
            rule=Rule.INVALID_INDEX,
            severity=Severity.ERROR,
            statement=i.statement.index,
            line=i.statement.line,
            message=f"statement {i.statement.index} (line {i.statement.line}) left index "
            f"{i.index} invalid (indisvalid = false); in production it would "
            "stay behind, unused by queries but maintained on every write",
        )
        for i in invalid
    ]


def digest_findings(rule: Rule, when: str, changes: Sequence[ObjectChange]) -> list[Finding]:
    if not changes:
        return []
    listed = "; ".join(c.describe() for c in changes[:10])
    more = f" and {len(changes) - 10} more" if len(changes) > 10 else ""
    return [
        Finding(
            rule=rule, severity=Severity.ERROR, message=f"the schema differs {when}: {listed}{more}"
        )
    ]


def _strength(mode: str) -> int:
    return MODE_STRENGTH.index(mode) if mode in MODE_STRENGTH else -1


def budget_findings(results: Iterable[StatementResult], budgets: Budgets) -> list[Finding]:
    """An error for every statement that cost the application more than a budget allows."""
    found = []
    for result in results:
        seen = result.observed
        if seen is None:
            continue
        where = f"statement {result.index} (line {result.line})"
        limit = budgets.max_lock_wait_seconds
        if limit is not None and _over(seen.max_lock_wait_seconds, limit):
            found.append(
                _error(
                    Rule.LOCK_WAIT_BUDGET,
                    f"{where} made sessions wait {seen.max_lock_wait_seconds:.2f} s for its locks "
                    f"(budget {limit:g} s)",
                    result,
                )
            )
        blocked = budgets.max_blocked_sessions
        if blocked is not None and _over(seen.max_blocked_sessions, blocked):
            found.append(
                _error(
                    Rule.BLOCKED_SESSIONS_BUDGET,
                    f"{where} blocked {seen.max_blocked_sessions} sessions at once "
                    f"(budget {blocked})",
                    result,
                )
            )
        found += _lag_findings(result, seen, budgets, where)
    return found


def _over(value: float | None, limit: float) -> bool:
    """Over budget; an unobserved value (None) is judged by ``observation_gap_findings``."""
    return value is not None and value > limit


def observation_gap_findings(gaps: Sequence[ObservationGap], budgets: Budgets) -> list[Finding]:
    """What the observer could not observe: a warning, an error where a budget depends on
    it. "No replica" matters only to a replication-lag budget."""
    found = []
    for gap in gaps:
        budget = _budget_for(gap.quantity, budgets)
        if gap.no_replica and budget is None:
            continue
        severity = Severity.ERROR if budget is not None else Severity.WARNING
        judged = f"; the budget {budget} cannot be judged" if budget is not None else ""
        found.append(
            Finding(
                rule=Rule.OBSERVATION_INCOMPLETE,
                severity=severity,
                message=f"{gap.quantity.label} was not observed: {gap.reason}{judged}",
            )
        )
    return found


def _budget_for(quantity: Quantity, budgets: Budgets) -> str | None:
    limits = {
        Quantity.BLOCKED_SESSIONS: (budgets.max_blocked_sessions, "--max-blocked-sessions"),
        Quantity.LOCK_WAIT: (budgets.max_lock_wait_seconds, "--max-lock-wait"),
        Quantity.REPLICATION_LAG_BYTES: (budgets.max_lag_bytes, "--max-replication-lag"),
        Quantity.REPLICATION_LAG_SECONDS: (budgets.max_lag_seconds, "--max-replication-lag"),
    }
    limit, flag = limits[quantity]
    return None if limit is None else flag


def _lag_findings(
    result: StatementResult, seen: StatementObservation, budgets: Budgets, where: str
) -> list[Finding]:
    found = []
    lag_bytes = seen.max_replication_lag_bytes
    if (
        budgets.max_lag_bytes is not None
        and lag_bytes is not None
        and lag_bytes > budgets.max_lag_bytes
    ):
        found.append(
            _error(
                Rule.REPLICATION_LAG_BUDGET,
                f"{where} put the replica {format_bytes(lag_bytes)} behind "
                f"(budget {format_bytes(budgets.max_lag_bytes)})",
                result,
            )
        )
    if budgets.max_lag_seconds is not None and _over(
        seen.max_replication_lag_seconds, budgets.max_lag_seconds
    ):
        found.append(
            _error(
                Rule.REPLICATION_LAG_BUDGET,
                f"{where} put the replica {seen.max_replication_lag_seconds:.2f} s behind "
                f"(budget {budgets.max_lag_seconds:g} s)",
                result,
            )
        )
    return found


def blocked_sessions_findings(
    results: Iterable[StatementResult], budgets: Budgets
) -> list[Finding]:
    """A warning where sessions queued behind the migration (unless a budget already said)."""
    found = []
    for result in results:
        seen = result.observed
        if seen is None or not seen.max_blocked_sessions:
            continue
        over_budget = (
            budgets.max_blocked_sessions is not None
            and _over(seen.max_blocked_sessions, budgets.max_blocked_sessions)
        ) or (
            budgets.max_lock_wait_seconds is not None
            and _over(seen.max_lock_wait_seconds, budgets.max_lock_wait_seconds)
        )
        if not over_budget:
            longest = (
                "for an unknown time"
                if seen.max_lock_wait_seconds is None
                else f"the longest for {seen.max_lock_wait_seconds:.2f} s"
            )
            found.append(
                _warning(
                    Rule.SESSIONS_BLOCKED,
                    f"statement {result.index} (line {result.line}) blocked up to "
                    f"{seen.max_blocked_sessions} sessions, {longest}",
                    result,
                )
            )
    return found


def traffic_findings(traffic: TrafficReport | None) -> list[Finding]:
    """A warning when the application's own statements failed during the migration."""
    if traffic is None or not traffic.errors_during_migration:
        return []
    errors = ", ".join(
        f"{count}× {_traffic_error(code)} ({code})"
        for code, count in traffic.errors_during_migration.items()
    )
    return [
        Finding(
            rule=Rule.TRAFFIC_ERRORS,
            severity=Severity.WARNING,
            message=f"the application's traffic failed during the migration: {errors}",
        )
    ]


def _traffic_error(code: str) -> str:
    """A rule's name for the SQLSTATE a rule stands for (``lock-timeout``), else the code."""
    rule, _ = error_rule(code)
    return code if rule is Rule.MIGRATION_ERROR else rule.value


def plan_findings(plans: Sequence[PlanComparison]) -> list[Finding]:
    found = []
    for plan in plans:
        found += [
            Finding(
                rule=Rule.PLAN_EXPECTATION,
                severity=Severity.ERROR,
                message=f"query {plan.name!r}: {violation}",
            )
            for violation in plan.violations
        ]
        if plan.changes:
            found.append(
                Finding(
                    rule=Rule.PLAN_CHANGED,
                    severity=Severity.WARNING,
                    message=f"query {plan.name!r}: " + "; ".join(plan.changes),
                )
            )
    return found
