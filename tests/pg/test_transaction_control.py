"""Transaction control in a migration must never let anything escape the dry-run."""

from __future__ import annotations

from fix_pg import PgDatabase, validate_sql
from pgparity.models.report import Verdict

BEFORE = "CREATE TABLE kept (id int);"


def _digest(pg_db: PgDatabase, tmp_path) -> str:  # type: ignore[no-untyped-def]
    report = validate_sql(pg_db, "SELECT 1;", tmp_path)
    assert report.target.digest_before is not None
    return report.target.digest_before


def test_commit_in_the_middle_leaves_nothing_behind(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(BEFORE)
    digest = _digest(pg_db, tmp_path)
    report = validate_sql(
        pg_db,
        "CREATE TABLE escaped (a int);\nCOMMIT;\nCREATE TABLE after_commit (a int);",
        tmp_path,
    )
    assert report.verdict is Verdict.REJECTED
    assert [f.rule for f in report.findings] == ["transaction-control"]
    assert report.findings[0].statement == 2
    assert report.findings[0].line == 2
    assert not any(s.executed for s in report.statements)
    assert pg_db.scalar("SELECT to_regclass('escaped')") is None
    assert _digest(pg_db, tmp_path) == digest


def test_every_kind_of_transaction_control_is_refused(pg_db: PgDatabase, tmp_path) -> None:
    for statement in (
        "BEGIN",
        "START TRANSACTION",
        "COMMIT",
        "END",
        "ROLLBACK",
        "SAVEPOINT s",
        "RELEASE SAVEPOINT s",
        "ROLLBACK TO SAVEPOINT s",
        "PREPARE TRANSACTION 'x'",
        "COMMIT PREPARED 'x'",
    ):
        report = validate_sql(pg_db, f"CREATE TABLE a (x int);\n{statement};", tmp_path)
        assert report.verdict is Verdict.REJECTED, statement
        assert "transaction-control" in [f.rule for f in report.findings], statement


def test_a_file_wrapped_in_begin_commit_is_unwrapped(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(BEFORE)
    report = validate_sql(
        pg_db,
        "BEGIN;\nALTER TABLE kept ADD COLUMN b int;\nCREATE TABLE inside (a int);\nCOMMIT;\n",
        tmp_path,
    )
    assert report.verdict is Verdict.VALIDATED
    assert [s.line for s in report.statements] == [2, 3]
    assert all(s.executed for s in report.statements)
    assert pg_db.scalar("SELECT to_regclass('inside')") is None


def test_concurrently_inside_a_wrapped_file_is_an_error(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(BEFORE)
    report = validate_sql(
        pg_db, "BEGIN;\nCREATE INDEX CONCURRENTLY kept_id ON kept (id);\nCOMMIT;", tmp_path
    )
    assert report.verdict is Verdict.REJECTED
    assert [f.rule for f in report.findings] == ["non-transactional-in-transaction"]
    assert pg_db.scalar("SELECT to_regclass('kept_id')") is None


def test_commit_inside_a_do_block_is_refused_before_execution(pg_db: PgDatabase, tmp_path) -> None:
    report = validate_sql(
        pg_db, "DO $$ BEGIN CREATE TABLE from_do (a int); COMMIT; END $$;", tmp_path
    )
    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].rule == "transaction-control"
    assert "DO block" in report.findings[0].message
    assert pg_db.scalar("SELECT to_regclass('from_do')") is None


def test_commit_inside_a_called_procedure_cannot_escape(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(
        "CREATE PROCEDURE sneaky() LANGUAGE plpgsql AS "
        "$$ BEGIN CREATE TABLE from_procedure (a int); COMMIT; END $$;"
    )
    digest = _digest(pg_db, tmp_path)
    report = validate_sql(pg_db, "CALL sneaky();", tmp_path)
    assert report.verdict is Verdict.REJECTED
    assert report.statements[0].error is not None
    assert report.statements[0].error.sqlstate == "2D000"
    assert report.findings[0].rule == "transaction-control"
    assert pg_db.scalar("SELECT to_regclass('from_procedure')") is None
    assert _digest(pg_db, tmp_path) == digest


def test_syntax_error_names_line_and_column_and_runs_nothing(pg_db: PgDatabase, tmp_path) -> None:
    report = validate_sql(pg_db, "CREATE TABLE ok (a int);\n\n  ALTR TABLE ok ADD b int;", tmp_path)
    assert report.verdict is Verdict.REJECTED
    assert report.findings[0].rule == "syntax-error"
    assert report.findings[0].message.startswith("line 3, column 3:")
    assert report.target.digest_before is None  # never connected
    assert pg_db.scalar("SELECT to_regclass('ok')") is None
