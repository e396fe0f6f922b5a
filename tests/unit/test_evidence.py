"""The evidence join as a pure function: lint findings × measured statement results → judgements,
at and around every threshold, and what reaches the verdict. (Each judgement is also made on a
real clone in tests/pg/test_lint_evidence.py.)"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from pgparity.engine.evidence import EvidenceThresholds, TraceContext, judge, verdict_findings
from pgparity.engine.sql.statements import parse_migration
from pgparity.lint import LintConfig, lint_source
from pgparity.manifests.status import finding_summaries
from pgparity.models.report import (
    Finding,
    Judgement,
    LockRecord,
    MigrationInfo,
    Severity,
    StatementError,
    StatementObservation,
    StatementResult,
    StaticFinding,
    TargetInfo,
    ValidationReport,
    Verdict,
)

INDEX = "SET lock_timeout = '2s';\nSET statement_timeout = '9s';\nCREATE INDEX i ON orders (a);"


def share(held_ms: float, relation: str = "public.orders") -> LockRecord:
    return LockRecord(relation=relation, mode="ShareLock", held_ms=held_ms, relkind="r")


def result(index: int = 3, **measured: object) -> StatementResult:
    """A measured statement; unless said otherwise it ran as long as its longest lock was held
    (the last statement of its transaction)."""
    base = StatementResult(index=index, line=index, sql="…", transactional=True, executed=True)
    locks = measured.get("locks") or ()
    held = max((lock.held_ms or 0.0 for lock in locks), default=None)  # type: ignore[attr-defined]
    measured.setdefault("duration_ms", held)
    return replace(base, **measured)  # type: ignore[arg-type]


def judged(
    sql: str,
    measured: StatementResult,
    *,
    rows: int | None = 10,
    created: frozenset[str] = frozenset(),
    contended: bool = False,
    rule: str | None = None,
) -> StaticFinding:
    report = lint_source("m.sql", sql, LintConfig())
    context = TraceContext(created, {"public.orders": rows}, contended, EvidenceThresholds())
    results = [result(i) for i in range(1, measured.index)] + [measured]
    found = judge(report, parse_migration(sql).statements, results, context)
    wanted = rule or "create-index-non-concurrently"
    [one] = [f for f in found if f.rule == wanted]
    return one


class TestThresholds:
    @pytest.mark.parametrize(
        ("measured", "rows", "expected"),
        [
            (result(locks=(share(999.9),)), 10, Judgement.DISMISSED),
            (result(locks=(share(1000.0),)), 10, Judgement.CONFIRMED),
            (result(locks=(share(2.0),)), 50_000_000, Judgement.DISMISSED),  # size alone
            (
                result(locks=(share(2.0),), observed=StatementObservation(max_blocked_sessions=1)),
                0,
                Judgement.CONFIRMED,
            ),
            (
                result(
                    locks=(share(2.0),), observed=StatementObservation(max_blocked_sessions=None)
                ),
                0,
                Judgement.DISMISSED,  # unobserved is not "blocked"
            ),
            (
                result(locks=(share(2.0),), rewrites=("public.orders",)),
                1_000_000,
                Judgement.CONFIRMED,
            ),
            (
                result(locks=(share(2.0),), rewrites=("public.orders",)),
                999_999,
                Judgement.DISMISSED,
            ),
            (result(locks=(share(2.0),), rewrites=("public.orders",)), None, Judgement.DISMISSED),
            (
                result(
                    locks=(LockRecord("public.orders", "ShareUpdateExclusiveLock", held_ms=9e6),)
                ),
                10,
                Judgement.DISMISSED,  # a lock that blocks nobody, however long
            ),
            (result(locks=(share(5000.0, "public.other"),)), 10, Judgement.DISMISSED),
            (result(locks=()), 10, Judgement.DISMISSED),
        ],
    )
    def test_judgement(
        self, measured: StatementResult, rows: int | None, expected: Judgement
    ) -> None:
        assert judged(INDEX, measured, rows=rows).judgement is expected

    def test_reason_reads_like_the_issue(self) -> None:
        measured = result(
            locks=(share(41_000.0),), observed=StatementObservation(max_blocked_sessions=3)
        )
        finding = judged(INDEX, measured, rows=12_400_000)
        assert (
            finding.reason == "SHARE on public.orders (12.4 M rows) held 41.0 s; 3 sessions blocked"
        )

    def test_dismissal_reason(self) -> None:
        finding = judged(INDEX, result(locks=(share(2.0),)), rows=0)
        assert finding.reason == "SHARE on public.orders (0 rows) held 2.0 ms, no session blocked"

    def test_the_statements_own_time_decides_not_the_rest_of_the_transaction(self) -> None:
        # Held 11 s because the transaction went on for 11 s after it: other statements'
        # doing (work-after-dangerous-lock), not this one's.
        finding = judged(INDEX, result(locks=(share(11_000.0),), duration_ms=2.0), rows=0)
        assert finding.judgement is Judgement.DISMISSED
        assert finding.reason == (
            "SHARE on public.orders (0 rows) held 2.0 ms (11.0 s to the end of the "
            "transaction), no session blocked"
        )


class TestWhatTheTraceCouldNotSee:
    def test_created_by_the_migration(self) -> None:
        finding = judged(INDEX, result(locks=(share(9e6),)), created=frozenset({"public.orders"}))
        assert finding.judgement is Judgement.DISMISSED
        assert finding.reason == "public.orders was created by this migration"

    def test_not_executed(self) -> None:
        measured = result(executed=False, not_executed_reason="an earlier statement failed")
        finding = judged(INDEX, measured)
        assert finding.judgement is Judgement.NOT_OBSERVED
        assert "an earlier statement failed" in finding.reason

    @pytest.mark.parametrize(
        ("sqlstate", "expected"),
        [
            ("55P03", Judgement.CONFIRMED),
            ("57014", Judgement.CONFIRMED),
            ("23505", Judgement.NOT_OBSERVED),
        ],
    )
    def test_failed(self, sqlstate: str, expected: Judgement) -> None:
        measured = result(error=StatementError(sqlstate, "…"))
        assert judged(INDEX, measured).judgement is expected


TIMEOUTS_OFF = MappingProxyType({"lock_timeout": "0", "statement_timeout": "0"})


class TestQueueFindings:
    SQL = "ALTER TABLE orders ADD COLUMN note text;"

    @pytest.mark.parametrize("value", ["2s", "100ms", "1min"])
    def test_a_timeout_in_effect_dismisses(self, value: str) -> None:
        lock = LockRecord("public.orders", "AccessExclusiveLock", held_ms=9e6)
        measured = result(index=1, locks=(lock,), settings_in_effect={"lock_timeout": value})
        finding = judged(self.SQL, measured, rule="missing-lock-timeout", contended=True)
        assert finding.judgement is Judgement.DISMISSED
        assert finding.reason == f"lock_timeout = {value} was in effect"

    def test_a_statement_timeout_does_not_confirm_a_missing_lock_timeout(self) -> None:
        # The rewrite ran past statement_timeout with lock_timeout in effect: the lock-timeout
        # finding is dismissed, only the rewrite's own finding is confirmed.
        lock = LockRecord("public.orders", "AccessExclusiveLock", held_ms=150.0)
        measured = result(
            index=1,
            locks=(lock,),
            error=StatementError("57014", "canceling statement due to statement timeout"),
            settings_in_effect={"lock_timeout": "2s", "statement_timeout": "150ms"},
        )
        sql = "ALTER TABLE orders ALTER COLUMN a TYPE bigint;"
        for rule in ("missing-lock-timeout", "missing-statement-timeout"):
            finding = judged(sql, measured, rule=rule, contended=True)
            assert finding.judgement is Judgement.DISMISSED, rule
        assert judged(sql, measured, rule="column-type-change").judgement is Judgement.CONFIRMED

    def test_idle_clone_cannot_show_a_queue(self) -> None:
        measured = result(
            index=1, locks=(LockRecord("public.orders", "AccessExclusiveLock", held_ms=9e6),)
        )
        finding = judged(self.SQL, measured, rule="missing-lock-timeout")
        assert finding.judgement is Judgement.NOT_OBSERVED

    @pytest.mark.parametrize(
        ("observed", "expected"),
        [
            (StatementObservation(own_lock_wait_seconds=0.4), Judgement.CONFIRMED),
            (StatementObservation(max_blocked_sessions=2), Judgement.CONFIRMED),
            (StatementObservation(), Judgement.DISMISSED),
        ],
    )
    def test_under_contention(self, observed: StatementObservation, expected: Judgement) -> None:
        lock = LockRecord("public.orders", "AccessExclusiveLock", held_ms=1.0)
        measured = result(
            index=1, locks=(lock,), observed=observed, settings_in_effect=TIMEOUTS_OFF
        )
        finding = judged(self.SQL, measured, rule="missing-lock-timeout", contended=True)
        assert finding.judgement is expected


def test_compatibility_is_confirmed_whatever_the_size() -> None:
    sql = "SET lock_timeout = '2s';\nALTER TABLE orders DROP COLUMN a;"
    finding = judged(sql, result(index=2), rows=0, rule="drop-column")
    assert finding.judgement is Judgement.CONFIRMED
    assert finding.reason == "public.orders exists (0 rows)"


def test_types_are_not_judged() -> None:
    finding = judged("CREATE TABLE fresh (id int);", result(index=1), rule="prefer-bigint")
    assert finding.judgement is Judgement.NOT_JUDGED


def test_statements_are_matched_by_position_when_the_dry_run_unwraps_begin_commit() -> None:
    sql = "BEGIN;\nCREATE INDEX i ON orders (a);\nCOMMIT;"
    parsed = parse_migration(sql)
    assert parsed.unwrapped
    assert [s.index for s in parsed.statements] == [1]  # the dry-run's numbering
    report = lint_source("m.sql", sql, LintConfig())
    context = TraceContext(frozenset(), {"public.orders": 10}, False)
    found = judge(report, parsed.statements, [result(index=1, locks=(share(5000.0),))], context)
    [index] = [f for f in found if f.rule == "create-index-non-concurrently"]
    assert index.statement == 1
    assert index.judgement is Judgement.CONFIRMED


def test_quoted_names_match_the_trace() -> None:
    sql = (
        "SET lock_timeout = '2s';\nSET statement_timeout = '9s';\nCREATE INDEX i ON \"Orders\" (a);"
    )
    report = lint_source("m.sql", sql, LintConfig())
    context = TraceContext(frozenset(), {}, False)
    measured = result(locks=(share(5000.0, 'public."Orders"'),))
    found = judge(
        report, parse_migration(sql).statements, [result(1), result(2), measured], context
    )
    [index] = [f for f in found if f.rule == "create-index-non-concurrently"]
    assert index.relation == 'public."Orders"'
    assert index.judgement is Judgement.CONFIRMED


class TestWhatReachesTheVerdict:
    def static(self, rule: str, judgement: Judgement, ack: str | None = None) -> StaticFinding:
        return StaticFinding(
            rule=rule,
            severity=Severity.WARNING,
            message="m",
            judgement=judgement,
            reason="r",
            statement=1,
            line=1,
            acknowledged=ack,
        )

    @pytest.mark.parametrize(
        ("rule", "judgement", "ack", "expected"),
        [
            ("create-index-non-concurrently", Judgement.CONFIRMED, None, Severity.ERROR),
            ("multiple-alter-table", Judgement.CONFIRMED, None, Severity.ERROR),  # a warning rule
            ("create-index-non-concurrently", Judgement.CONFIRMED, "tiny", Severity.WARNING),
            ("drop-column", Judgement.CONFIRMED, None, Severity.WARNING),
            ("drop-column", Judgement.CONFIRMED, "unused", None),
            ("create-index-non-concurrently", Judgement.DISMISSED, None, None),
            ("create-index-non-concurrently", Judgement.NOT_OBSERVED, None, None),
            ("prefer-bigint", Judgement.NOT_JUDGED, None, None),
        ],
    )
    def test_severity(
        self, rule: str, judgement: Judgement, ack: str | None, expected: Severity | None
    ) -> None:
        found = verdict_findings([self.static(rule, judgement, ack)])
        assert [f.severity for f in found] == ([expected] if expected else [])
        assert all(f.judgement is Judgement.CONFIRMED for f in found)


def test_the_status_lists_confirmed_findings_first() -> None:
    report = ValidationReport(
        verdict=Verdict.REJECTED,
        migration=MigrationInfo("m.sql", "ab" * 32),
        target=TargetInfo(),
        settings={},
        statements=(),
        findings=(
            Finding("blocking-lock", Severity.WARNING, "w"),
            Finding("statement-timeout", Severity.ERROR, "e"),
            Finding(
                "create-index-non-concurrently", Severity.ERROR, "c", judgement=Judgement.CONFIRMED
            ),
        ),
    )
    assert [f.rule for f in finding_summaries(report)] == [
        "create-index-non-concurrently",
        "statement-timeout",
        "blocking-lock",
    ]


@pytest.mark.parametrize(
    ("duration", "expected"), [(2500.0, Judgement.CONFIRMED), (3.0, Judgement.DISMISSED)]
)
def test_work_after_a_dangerous_lock_is_judged_by_how_long_it_prolongs_it(
    duration: float, expected: Judgement
) -> None:
    sql = (
        "SET lock_timeout = '2s';\nSET statement_timeout = '9s';\n"
        "BEGIN;\nALTER TABLE orders ADD COLUMN b text;\nUPDATE orders SET b = 'x';\nCOMMIT;"
    )
    finding = judged(sql, result(index=5, duration_ms=duration), rule="work-after-dangerous-lock")
    assert finding.judgement is expected
    assert finding.evidence is not None
    assert finding.evidence.mode == "AccessExclusiveLock"
    assert finding.evidence.statement_ms == duration
