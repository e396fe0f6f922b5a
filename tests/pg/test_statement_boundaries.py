"""User SQL reaches the server one statement per round trip, read the way pglast read it.

Three causes, a class each: the protocol (the server itself refuses a second statement), explain
queries (exactly one explainable statement, rolled back before and after), and the settings
that decide how the server lexes SQL (pinned, refused, checked after every statement).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import psycopg
import pytest

from fix_pg import PgDatabase, committing_traffic, run_pgparity, table_t, validate_sql
from pgparity.engine.observe.observation import ObservationOptions, TrafficPlan
from pgparity.errors import UsageError
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.report import Verdict
from pgparity.models.workload import ExplainFile, ParamSpec, Workload, WorkloadStatement
from pgparity.pg.connection import connect
from pgparity.pg.sqlexec import LexingChangedError, execute_one, fetch_rows

ROWS = table_t(100)
MULTI = [
    "SELECT 1; DELETE FROM t",
    "SELECT 1;DELETE FROM t;",
    "SELECT 1; COMMIT",
    "/* one */ SELECT 1; /* two */ DELETE FROM t",
    "SELECT 'a;b'; DELETE FROM t",
    "SELECT $$;$$; DELETE FROM t",
    "DELETE FROM t; SELECT 1",
]


def _count(db: PgDatabase) -> object:
    return db.scalar("SELECT count(*) FROM t")


def _rules(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.rule for f in report.findings]


class TestOneStatementPerRoundTrip:
    """``execute_one`` uses the extended protocol: the server refuses a second statement."""

    @pytest.mark.parametrize("text", MULTI)
    def test_the_server_refuses_a_second_statement(self, pg_db: PgDatabase, text: str) -> None:
        pg_db.execute(ROWS)
        with (
            connect(pg_db.dsn, user_sql=True) as conn,
            pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"),
        ):
            execute_one(conn, text)
        assert _count(pg_db) == 100

    def test_even_where_the_session_reads_backslashes_differently(self, pg_db: PgDatabase) -> None:
        """A session that was never pinned (standard_conforming_strings off) splits the
        issue's string into three statements; the protocol still refuses them."""
        pg_db.execute(ROWS)
        with psycopg.connect(pg_db.dsn, autocommit=True) as conn:
            conn.execute("SET standard_conforming_strings = off")
            conn.execute("BEGIN")
            conn.execute("DELETE FROM t")
            with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
                conn.cursor().execute(b"SELECT 'a\\', 'b; COMMIT; SELECT 1 --'", binary=True)
            conn.execute("ROLLBACK")
        assert _count(pg_db) == 100

    @pytest.mark.parametrize("text", MULTI)
    def test_user_queries_that_return_rows_too(self, pg_db: PgDatabase, text: str) -> None:
        pg_db.execute(ROWS)
        with connect(pg_db.dsn, user_sql=True) as conn, pytest.raises(psycopg.Error):
            fetch_rows(conn, text)
        assert _count(pg_db) == 100

    def test_a_sample_query_cannot_write(self, pg_db: PgDatabase) -> None:
        pg_db.execute(ROWS)
        with connect(pg_db.dsn, user_sql=True) as conn:
            assert fetch_rows(conn, "SELECT id FROM t WHERE id <= 2 ORDER BY id") == [(1,), (2,)]
            with pytest.raises(psycopg.Error):
                fetch_rows(conn, "DELETE FROM t RETURNING id")
        assert _count(pg_db) == 100

    @pytest.mark.parametrize("text", MULTI)
    @pytest.mark.parametrize("where", ["statement", "sample"])
    def test_traffic_of_two_statements_is_bad_input(
        self, pg_db: PgDatabase, tmp_path: Path, text: str, where: str
    ) -> None:
        pg_db.execute(ROWS)
        if where == "statement":
            statement = WorkloadStatement(sql=text, name="two")
            needle = "traffic statement 'two'"
        else:
            statement = WorkloadStatement(
                sql="SELECT * FROM t WHERE id = %(id)s",
                name="read",
                params={"id": ParamSpec(sample=text)},
            )
            needle = "traffic statement 'read': sample for id"
        workload = Workload(statements=(statement,), clients=1)
        with pytest.raises(UsageError, match=needle):
            validate_sql(
                pg_db,
                "ALTER TABLE t ADD COLUMN w int;",
                tmp_path,
                observation=ObservationOptions(traffic=TrafficPlan(workload=workload)),
            )
        assert _count(pg_db) == 100

    def test_traffic_that_commits_is_refused_on_anything_but_a_clone(
        self, pg_plain_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute(ROWS)
        with pytest.raises(UsageError, match="commit: true"):
            validate_sql(
                pg_plain_db,
                "ALTER TABLE t ADD COLUMN w int;",
                tmp_path,
                observation=committing_traffic("UPDATE t SET v = 'traffic' WHERE id = 1"),
            )
        assert pg_plain_db.scalar("SELECT count(*) FROM t WHERE v = 'traffic'") == 0

    def test_traffic_that_commits_runs_on_a_clone(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        pg_db.execute(ROWS)
        report = validate_sql(
            pg_db,
            "SELECT pg_sleep(0.2);",
            tmp_path,
            observation=committing_traffic("UPDATE t SET v = 'traffic' WHERE id = 1"),
        )
        assert report.verdict is Verdict.VALIDATED, report.findings
        assert pg_db.scalar("SELECT count(*) FROM t WHERE v = 'traffic'") == 1


def _cli(
    db: PgDatabase, tmp_path: Path, explain: str, migration: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "explain.yaml").write_text(explain)
    (tmp_path / "m.sql").write_text(migration)
    return run_pgparity(
        "validate",
        "--migration",
        str(tmp_path / "m.sql"),
        "--dsn",
        db.dsn,
        "--explain",
        str(tmp_path / "explain.yaml"),
        "--format",
        "json",
        "--quiet",
    )


class TestExplainQueries:
    """Each explain query is exactly one explainable statement; before and after the
    migration it runs in a transaction that is rolled back, so EXPLAIN ANALYZE of DML
    leaves the rows alone."""

    @pytest.mark.parametrize(
        "query",
        [
            *MULTI,
            "COMMIT",
            "SELECT 1 INTO escaped",
            "CREATE TABLE escaped AS SELECT 1",
            "SELECT pg_terminate_backend(pg_backend_pid())",
            "SELECT set_config('standard_conforming_strings', 'off', false)",
        ],
    )
    def test_bad_queries_are_bad_input_before_anything_runs(
        self, pg_db: PgDatabase, tmp_path: Path, query: str
    ) -> None:
        pg_db.execute(ROWS)
        result = _cli(
            pg_db,
            tmp_path,
            f"- name: hostile\n  sql: {json.dumps(query)}\n",
            "CREATE TABLE escaped_migration (a int);\n",
        )
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "explain query 'hostile'" in lines[0]
        assert result.stdout == ""
        assert _count(pg_db) == 100
        assert pg_db.scalar("SELECT to_regclass('escaped')") is None
        assert pg_db.scalar("SELECT to_regclass('escaped_migration')") is None

    @pytest.mark.parametrize(
        "query",
        [
            "DELETE FROM t WHERE id > 10",
            "UPDATE t SET v = 'changed'",
            "INSERT INTO t SELECT g, 'new' FROM generate_series(101, 200) g",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
            "MERGE INTO t USING (SELECT 1 AS id) s ON t.id = s.id WHEN MATCHED THEN DELETE",
        ],
    )
    def test_analyze_of_dml_leaves_the_rows_alone(
        self, pg_db: PgDatabase, tmp_path: Path, query: str
    ) -> None:
        pg_db.execute(ROWS)
        result = _cli(
            pg_db,
            tmp_path,
            f"analyze: true\nqueries:\n  - name: dml\n    sql: {json.dumps(query)}\n",
            "ALTER TABLE t ADD COLUMN w int;\n",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        plan = report["observations"]["plans"][0]
        assert "error" not in plan["before"]
        assert "error" not in plan["after"]
        assert _count(pg_db) == 100
        assert pg_db.scalar("SELECT count(*) FROM t WHERE v <> 'x'") == 0

    def test_one_query_does_not_see_what_another_did(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        """Each query is rolled back on its own: the second sees all the rows."""
        pg_db.execute(ROWS)
        explain = ExplainFile(
            queries=(
                ExplainQuery(name="purge", sql="DELETE FROM t"),
                ExplainQuery(name="count", sql="SELECT * FROM t", max_total_cost=1e9),
            ),
            analyze=True,
        )
        report = validate_sql(pg_db, "ALTER TABLE t ADD COLUMN w int;", tmp_path, explain=explain)
        assert report.verdict is Verdict.VALIDATED, report.findings
        assert _count(pg_db) == 100

    def test_explain_of_dml_on_a_target_that_is_not_a_clone(
        self, pg_plain_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute(ROWS)
        explain = ExplainFile(
            queries=(ExplainQuery(name="purge", sql="DELETE FROM t"),), analyze=True
        )
        validate_sql(pg_plain_db, "ALTER TABLE t ADD COLUMN w int;", tmp_path, explain=explain)
        assert pg_plain_db.scalar("SELECT count(*) FROM t") == 100


class TestLexerSettings:
    """pglast reads SQL with standard_conforming_strings = on and UTF-8; the dry-run's session
    pins both, refuses statements that change them, and stops if one changes anyway."""

    ISSUE_STRING = "SELECT 'a\\', 'b; COMMIT; SELECT 1 --';\n"

    @pytest.mark.parametrize(
        "change",
        [
            "SET standard_conforming_strings = off;",
            "SET LOCAL standard_conforming_strings = off;",
            "SET SESSION standard_conforming_strings TO off;",
            "SELECT set_config('standard_conforming_strings', 'off', false);",
            "SELECT set_config('standard_conforming_strings', 'off', true);",
            "DO $$ BEGIN SET standard_conforming_strings = off; END $$;",
            "DO $$ BEGIN PERFORM set_config('standard_conforming_strings', 'off', false); END $$;",
            "DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$;",
            "SET client_encoding = 'SJIS';",
            "SET NAMES 'BIG5';",
            "SELECT set_config('client_encoding', 'GBK', false);",
        ],
    )
    def test_a_statement_changing_them_is_refused_before_anything_runs(
        self, pg_db: PgDatabase, tmp_path: Path, change: str
    ) -> None:
        pg_db.execute(ROWS)
        report = validate_sql(pg_db, f"DELETE FROM t;\n{change}\n{self.ISSUE_STRING}", tmp_path)
        assert report.verdict is Verdict.REJECTED
        assert "lexer-setting" in _rules(report)
        assert not any(s.executed for s in report.statements)
        assert _count(pg_db) == 100

    @pytest.mark.parametrize(
        "change",
        [
            # Names built at run time: no static check sees them.
            "SELECT f();",
            "DO $$ BEGIN PERFORM set_config('standard_' || 'conforming_strings', 'off', false);"
            " END $$;",
            "DO $$ BEGIN EXECUTE format('SET %s = off', 'standard_conforming_strings'); END $$;",
            "SELECT set_config(name, 'off', false) FROM settings;",
            "SELECT g();",
        ],
    )
    def test_a_change_at_run_time_stops_the_run(
        self, pg_db: PgDatabase, tmp_path: Path, change: str
    ) -> None:
        pg_db.execute(
            ROWS + "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS "
            "$$ SELECT set_config('standard_' || 'conforming_strings', 'off', false) $$;"
            "CREATE FUNCTION g() RETURNS text LANGUAGE sql AS "
            "$$ SELECT set_config('client_' || 'encoding', 'SJIS', false) $$;"
            "CREATE TABLE settings (name text); "
            "INSERT INTO settings VALUES ('standard_conforming_strings');"
        )
        report = validate_sql(
            pg_db, f"DELETE FROM t;\n{change}\n{self.ISSUE_STRING}", tmp_path, check_rerun=False
        )
        assert report.verdict is Verdict.REJECTED
        assert "lexer-setting-changed" in _rules(report)
        assert report.statements[2].executed is False
        assert _count(pg_db) == 100

    def test_a_database_configured_with_backslash_escapes_is_read_as_pglast_reads(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        """The default comes from ALTER DATABASE; the pin in the start-up packet wins, so the
        issue's string is the one statement pglast saw, and RESET comes back to the pin."""
        pg_db.execute(ROWS + f"ALTER DATABASE {pg_db.name} SET standard_conforming_strings = off")
        report = validate_sql(
            pg_db,
            f"DELETE FROM t;\nRESET standard_conforming_strings;\nRESET ALL;\n{self.ISSUE_STRING}",
            tmp_path,
        )
        assert report.verdict is Verdict.VALIDATED, report.findings
        assert [s.executed for s in report.statements] == [True, True, True, True]
        assert _count(pg_db) == 100

    def test_a_switch_to_a_backslash_trail_byte_encoding_stops_before_the_next_statement(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        """In SJIS, 0x5C can be the second byte of a character: the bytes of 'ソ\\' read
        differently. The run stops right after the statement that switched."""
        pg_db.execute(ROWS)
        report = validate_sql(
            pg_db,
            "DELETE FROM t;\nSELECT g();\nSELECT E'ソ\\'; DELETE FROM t; --';\n".replace(
                "SELECT g();", "SELECT set_config('client_' || 'encoding', 'SJIS', false);"
            ),
            tmp_path,
            check_rerun=False,
        )
        assert report.verdict is Verdict.REJECTED
        assert "lexer-setting-changed" in _rules(report)
        assert report.statements[2].executed is False
        assert _count(pg_db) == 100

    def test_execute_one_reports_the_change(self, pg_db: PgDatabase) -> None:
        with connect(pg_db.dsn, user_sql=True) as conn:
            conn.execute("BEGIN")
            with pytest.raises(LexingChangedError, match="standard_conforming_strings"):
                execute_one(conn, "SELECT set_config('standard_conforming_strings', 'off', true)")
            conn.execute("ROLLBACK")
            execute_one(conn, "SELECT 1")  # back to the pin: nothing to report
