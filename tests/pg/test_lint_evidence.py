"""Static (lint) findings judged by the trace on a real clone: each judgement, and what feeds
the verdict. Thresholds are the defaults (1 s held, 1 000 000 rows rewritten) unless a test
says otherwise (a smaller table stands in for a big one by lowering them)."""

from __future__ import annotations

import json
from pathlib import Path

from fix_pg import PgDatabase, table_t, validate_sql
from pgparity.cli.render import render_markdown
from pgparity.engine.evidence import EvidenceThresholds
from pgparity.engine.observe.holdlock import HoldLock
from pgparity.engine.observe.observation import ObservationOptions
from pgparity.models.report import (
    Judgement,
    Severity,
    StaticFinding,
    ValidationReport,
    Verdict,
)

TIMEOUTS = "SET lock_timeout = '5s';\nSET statement_timeout = '30s';\n"
BIG = EvidenceThresholds(rows=100_000)  # 150 000 rows count as big


def static(report: ValidationReport, rule: str) -> StaticFinding:
    [found] = [s for s in report.lint if s.rule == rule]
    return found


def test_a_rewrite_of_a_big_table_is_confirmed_and_rejects(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(table_t(150_000))
    report = validate_sql(
        pg_db, TIMEOUTS + "ALTER TABLE t ALTER COLUMN id TYPE bigint;", tmp_path, evidence=BIG
    )
    change = static(report, "column-type-change")
    assert change.judgement is Judgement.CONFIRMED
    assert change.evidence is not None
    assert change.evidence.rewritten
    assert change.evidence.rows == 150_000
    assert change.evidence.mode == "AccessExclusiveLock"
    assert "ACCESS EXCLUSIVE on public.t (150 k rows) held" in change.reason
    assert "rewritten" in change.reason
    [error] = [f for f in report.findings if f.rule == "column-type-change"]
    assert error.severity is Severity.ERROR
    assert error.judgement is Judgement.CONFIRMED
    assert report.verdict is Verdict.REJECTED


def test_an_index_on_an_empty_table_is_dismissed(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE empty (a int); ANALYZE empty;")
    report = validate_sql(pg_db, TIMEOUTS + "CREATE INDEX empty_a ON empty (a);", tmp_path)
    index = static(report, "create-index-non-concurrently")
    assert index.judgement is Judgement.DISMISSED
    assert index.reason.startswith("SHARE on public.empty (0 rows) held ")
    assert index.reason.endswith("no session blocked")
    assert "create-index-non-concurrently" not in [f.rule for f in report.findings]
    assert report.verdict is Verdict.VALIDATED


def test_a_binary_coercible_type_change_is_dismissed(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(
        "CREATE TABLE names (id int, name varchar(10));"
        "INSERT INTO names SELECT g, 'n' || g % 1000 FROM generate_series(1, 150000) g;"
        "ANALYZE names;"
    )
    sql = TIMEOUTS + "ALTER TABLE names ALTER COLUMN name TYPE text;"
    change = static(validate_sql(pg_db, sql, tmp_path, evidence=BIG), "column-type-change")
    assert change.judgement is Judgement.DISMISSED
    assert change.evidence is not None
    assert not change.evidence.rewritten
    assert "(150 k rows)" in change.reason
    assert "not rewritten" in change.reason


def test_a_table_the_migration_created_is_dismissed(pg_db: PgDatabase, tmp_path: Path) -> None:
    # The linter cannot see a table created by dynamic SQL; the trace can.
    sql = (
        TIMEOUTS + "DO $$ BEGIN EXECUTE 'CREATE TABLE made (a int)'; END $$;\n"
        "CREATE INDEX made_a ON made (a);\n"
    )
    index = static(validate_sql(pg_db, sql, tmp_path), "create-index-non-concurrently")
    assert index.judgement is Judgement.DISMISSED
    assert index.reason == "public.made was created by this migration"


def test_a_lock_held_past_the_threshold_is_confirmed(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(table_t(20_000))
    report = validate_sql(
        pg_db,
        TIMEOUTS + "CREATE INDEX t_v ON t (v);",
        tmp_path,
        evidence=EvidenceThresholds(hold_ms=0.001),
    )
    index = static(report, "create-index-non-concurrently")
    assert index.judgement is Judgement.CONFIRMED
    assert index.evidence is not None
    assert index.evidence.held_ms is not None
    assert index.evidence.held_ms > 0
    assert report.verdict is Verdict.REJECTED


def test_the_statements_own_time_decides_and_the_work_after_it_is_judged_by_its_own(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    # A fast index build early in a long transaction: SHARE stays held while pg_sleep runs.
    pg_db.execute("CREATE TABLE small (a int); INSERT INTO small VALUES (1); ANALYZE small;")
    sql = (
        "BEGIN;\n" + TIMEOUTS + "CREATE INDEX small_a ON small (a);\n"
        "SELECT pg_sleep(1.2);\nCOMMIT;\n"
    )
    report = validate_sql(pg_db, sql, tmp_path)
    index = static(report, "create-index-non-concurrently")
    assert index.judgement is Judgement.DISMISSED
    assert index.evidence is not None
    assert index.evidence.statement_ms is not None
    assert index.evidence.held_ms is not None
    assert index.evidence.statement_ms < 1000 <= index.evidence.held_ms
    assert "to the end of the transaction" in index.reason
    after = static(report, "work-after-dangerous-lock")
    assert after.judgement is Judgement.CONFIRMED
    assert after.evidence is not None
    assert after.evidence.statement_ms is not None
    assert after.evidence.statement_ms >= 1000
    assert after.reason.startswith("SHARE on public.small (1 row) held ")
    assert report.verdict is Verdict.REJECTED


def test_an_acknowledged_confirmed_finding_is_a_warning(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(table_t(150_000))
    sql = (
        TIMEOUTS + "-- pgparity: allow column-type-change because the window is announced\n"
        "ALTER TABLE t ALTER COLUMN id TYPE bigint;"
    )
    report = validate_sql(pg_db, sql, tmp_path, evidence=BIG)
    change = static(report, "column-type-change")
    assert change.judgement is Judgement.CONFIRMED
    assert change.acknowledged == "the window is announced"
    [warning] = [f for f in report.findings if f.rule == "column-type-change"]
    assert warning.severity is Severity.WARNING
    assert "acknowledged: the window is announced" in warning.message
    assert report.verdict is Verdict.VALIDATED


def test_compatibility_findings_are_confirmed_whatever_the_size(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute("CREATE TABLE tiny (a int, b int); INSERT INTO tiny VALUES (1, 2); ANALYZE tiny;")
    report = validate_sql(pg_db, TIMEOUTS + "ALTER TABLE tiny DROP COLUMN b;", tmp_path)
    drop = static(report, "drop-column")
    assert drop.judgement is Judgement.CONFIRMED
    assert drop.reason == "public.tiny exists (1 row)"
    [warning] = [f for f in report.findings if f.rule == "drop-column"]
    assert warning.severity is Severity.WARNING
    assert report.verdict is Verdict.VALIDATED


def test_a_timeout_production_sets_dismisses_the_missing_timeout(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(table_t(100))
    report = validate_sql(pg_db, "ALTER TABLE t ADD COLUMN note text;", tmp_path, lock_timeout="2s")
    missing = static(report, "missing-lock-timeout")
    assert missing.judgement is Judgement.DISMISSED
    assert missing.reason == "lock_timeout = 2s was in effect"


def test_statements_that_did_not_run_are_not_observed(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(table_t(10))
    sql = TIMEOUTS + "ALTER TABLE t ADD COLUMN n text NOT NULL;\nCREATE INDEX t_v ON t (v);"
    report = validate_sql(pg_db, sql, tmp_path)
    assert static(report, "add-required-column").judgement is Judgement.NOT_OBSERVED
    assert "failed (23502)" in static(report, "add-required-column").reason
    index = static(report, "create-index-non-concurrently")
    assert index.judgement is Judgement.NOT_OBSERVED
    assert index.reason.startswith("the statement did not run")


def test_type_rules_are_not_judged(pg_db: PgDatabase, tmp_path: Path) -> None:
    report = validate_sql(pg_db, "CREATE TABLE fresh (id int);", tmp_path)
    assert static(report, "prefer-bigint").judgement is Judgement.NOT_JUDGED


def test_a_missing_lock_timeout_needs_contention_to_be_judged(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(table_t(100))
    sql = "ALTER TABLE t ADD COLUMN note text;"
    idle = validate_sql(pg_db, sql, tmp_path, lock_timeout="0")
    assert static(idle, "missing-lock-timeout").judgement is Judgement.NOT_OBSERVED
    held = validate_sql(
        pg_db,
        sql,
        tmp_path,
        lock_timeout="0",
        observation=ObservationOptions(hold_locks=(HoldLock("public.t", 1.0),)),
    )
    waited = static(held, "missing-lock-timeout")
    assert waited.judgement is Judgement.CONFIRMED
    assert "it waited" in waited.reason
    assert held.verdict is Verdict.REJECTED


def test_the_report_carries_the_judgements_and_shows_confirmed_first(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(table_t(150_000) + "CREATE TABLE empty (a int); ANALYZE empty;")
    sql = (
        TIMEOUTS + "CREATE INDEX empty_a ON empty (a);\nALTER TABLE t ALTER COLUMN id TYPE bigint;"
    )
    report = validate_sql(pg_db, sql, tmp_path, evidence=BIG)
    document = json.loads(json.dumps(report.to_dict()))
    judgements = [entry["judgement"] for entry in document["lint"]]
    assert judgements[0] == "confirmed"
    assert "dismissed" in judgements
    parsed = ValidationReport.parse(document)
    assert [s.to_dict() for s in parsed.lint] == document["lint"]
    markdown = render_markdown(report)
    table = markdown[markdown.index("**Lint, judged by the trace**") :]
    assert table.index("| confirmed |") < table.index("| dismissed |")
    assert markdown.index("column-type-change") < markdown.index("table-rewrite")
