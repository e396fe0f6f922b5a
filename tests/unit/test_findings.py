"""Findings derived from measured results (pure functions)."""

from __future__ import annotations

from pgparity.engine import findings as rules
from pgparity.engine.sql.statements import parse_migration
from pgparity.models.report import (
    Finding,
    LockRecord,
    Rule,
    Severity,
    StatementError,
    StatementResult,
    Verdict,
    apply_strictness,
    decide_verdict,
)


def _result(
    index: int,
    locks: tuple[LockRecord, ...] = (),
    rewrites: tuple[str, ...] = (),
    error: StatementError | None = None,
) -> StatementResult:
    return StatementResult(
        index=index,
        line=index * 2,
        sql="…",
        transactional=True,
        executed=True,
        duration_ms=10.0,
        locks=locks,
        rewrites=rewrites,
        error=error,
    )


def _lock(relation: str, mode: str, relkind: str = "r", held: float = 100.0) -> LockRecord:
    return LockRecord(relation=relation, mode=mode, relkind=relkind, held_ms=held)


def test_sqlstates_map_to_rules() -> None:
    cases = {
        "55P03": "lock-timeout",
        "57014": "statement-timeout",
        "40P01": "deadlock",
        "2D000": "transaction-control",
        "42P01": "migration-error",
        None: "migration-error",
    }
    for sqlstate, rule in cases.items():
        found = rules.error_findings([_result(3, error=StatementError(sqlstate, "boom"))])
        assert [(f.rule, f.severity, f.statement, f.line) for f in found] == [
            (rule, Severity.ERROR, 3, 6)
        ]


def test_blocking_locks_are_reported_once_per_escalation() -> None:
    results = [
        _result(1, locks=(_lock("public.users", "AccessExclusiveLock"),)),
        _result(
            2,
            locks=(
                _lock("public.users", "ShareLock"),
                _lock("public.users_pkey", "AccessExclusiveLock", relkind="i"),
            ),
        ),
        _result(3, locks=(_lock("public.orders", "RowExclusiveLock"),)),
        _result(4, locks=(_lock("public.orders", "ShareRowExclusiveLock"),)),
        _result(5, locks=(_lock("public.new_table", "AccessExclusiveLock"),)),
    ]
    found = rules.blocking_lock_findings(results, created={"public.new_table"})
    assert [(f.statement, f.severity) for f in found] == [
        (1, Severity.WARNING),
        (4, Severity.WARNING),
    ]
    assert "AccessExclusiveLock on public.users, held 100 ms" in found[0].message
    assert "blocks writes" in found[1].message


def test_rewrites_of_new_tables_are_not_findings() -> None:
    results = [
        _result(1, rewrites=("public.users", "public.users_pkey")),
        _result(2, rewrites=("public.fresh",)),
    ]
    found = rules.rewrite_findings(results, created={"public.fresh"})
    assert [f.statement for f in found] == [1]
    assert "public.users, public.users_pkey" in found[0].message


def test_static_findings() -> None:
    assert rules.static_findings(parse_migration("SELECT 1; SELEC 2"))[0].rule == "syntax-error"
    control = rules.static_findings(parse_migration("SELECT 1; COMMIT; SELECT 2"))
    assert [(f.rule, f.statement, f.line) for f in control] == [("transaction-control", 2, 1)]
    wrapped = rules.static_findings(
        parse_migration("BEGIN;\nCREATE INDEX CONCURRENTLY i ON t (a);\nCOMMIT;")
    )
    assert [(f.rule, f.line) for f in wrapped] == [("non-transactional-in-transaction", 2)]
    assert rules.static_findings(parse_migration("CREATE INDEX CONCURRENTLY i ON t (a)")) == []


def test_strict_turns_warnings_into_errors_and_rejects() -> None:
    warning = Finding(rule=Rule.TABLE_REWRITE, severity=Severity.WARNING, message="x")
    assert decide_verdict([warning]) is Verdict.VALIDATED
    strict = apply_strictness([warning], strict=True)
    assert strict[0].severity is Severity.ERROR
    assert decide_verdict(strict) is Verdict.REJECTED
