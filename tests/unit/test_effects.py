"""The static classifiers: effects ROLLBACK cannot undo, lexer settings, explain and traffic
queries — each tried with the hostile variants a careful attacker or an unlucky user writes."""

from __future__ import annotations

import pytest

from pgparity.engine.findings import effect_findings, static_findings
from pgparity.engine.observe.plans import explain_query_problem
from pgparity.engine.observe.traffic import _statement_problem, _with_server_placeholders
from pgparity.engine.sql.effects import BUILTIN_FUNCTIONS, EXTENSION_FUNCTIONS, Hazard
from pgparity.engine.sql.statements import parse_migration
from pgparity.models.report import Severity


def _hazards(text: str) -> list[tuple[Hazard, bool]]:
    statement = parse_migration(text).statements[0]
    return [(e.hazard, e.refused) for e in statement.effects]


class TestSideEffectClassification:
    @pytest.mark.parametrize(
        ("text", "hazard"),
        [
            ("COPY t TO PROGRAM 'touch /tmp/x'", Hazard.SERVER_PROGRAM),
            ("COPY t FROM PROGRAM 'cat /etc/passwd'", Hazard.SERVER_PROGRAM),
            ("COPY (SELECT 1) TO '/tmp/out.csv'", Hazard.SERVER_FILE),
            ("COPY t FROM '/etc/passwd'", Hazard.SERVER_FILE),
            ("SELECT lo_export(1, '/tmp/x')", Hazard.SERVER_FILE),
            ("SELECT lo_import('/etc/passwd')", Hazard.SERVER_FILE),
            ("SELECT pg_catalog.lo_export(1, '/tmp/x')", Hazard.SERVER_FILE),
            ("SELECT pg_read_file('postgresql.conf')", Hazard.SERVER_FILE),
            ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", Hazard.OTHER_SESSIONS),
            ("SELECT PG_CANCEL_BACKEND(42)", Hazard.OTHER_SESSIONS),
            ("SELECT pg_reload_conf()", Hazard.SERVER_STATE),
            ("SELECT pg_rotate_logfile()", Hazard.SERVER_STATE),
            ("SELECT pg_switch_wal()", Hazard.SERVER_STATE),
            ("SELECT pg_create_restore_point('x')", Hazard.SERVER_STATE),
            ("LOAD 'auto_explain'", Hazard.SERVER_STATE),
            ("SELECT pg_create_physical_replication_slot('s')", Hazard.REPLICATION),
            (
                "SELECT * FROM pg_create_logical_replication_slot('s', 'pgoutput')",
                Hazard.REPLICATION,
            ),
            ("SELECT pg_drop_replication_slot('s')", Hazard.REPLICATION),
            ("SELECT pg_logical_emit_message(false, 'p', 'x')", Hazard.REPLICATION),
            ("SELECT pg_stat_reset()", Hazard.STATISTICS),
            ("SELECT pg_stat_reset_shared('bgwriter')", Hazard.STATISTICS),
            ("SELECT ext.pg_stat_statements_reset()", Hazard.STATISTICS),
            ("SELECT pg_advisory_lock(1)", Hazard.SESSION_LOCK),
            ("SELECT pg_try_advisory_lock_shared(1, 2)", Hazard.SESSION_LOCK),
            ("SELECT dblink_exec('dbname=x', 'DELETE FROM t')", Hazard.REMOTE),
            ("SELECT * FROM public.dblink('dbname=x', 'SELECT 1') AS t(a int)", Hazard.REMOTE),
            ("SELECT dblink_connect('c', 'dbname=x')", Hazard.REMOTE),
            ("SELECT admin.pg_file_write('x', 'y', false)", Hazard.SERVER_FILE),
            ("SELECT pg_file_unlink('x')", Hazard.SERVER_FILE),
            ("SELECT pg_truncate_visibility_map('t')", Hazard.SERVER_STATE),
        ],
    )
    def test_refused_everywhere_in_a_statement(self, text: str, hazard: Hazard) -> None:
        assert (hazard, True) in _hazards(text)

    @pytest.mark.parametrize(
        "text",
        [
            "INSERT INTO log SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
            "UPDATE t SET a = (SELECT pg_reload_conf()::int)",
            "WITH x AS (SELECT lo_export(1, '/tmp/x')) SELECT 1",
            "CREATE VIEW v AS SELECT pg_terminate_backend(1)",
            "ALTER TABLE t ADD COLUMN c bool DEFAULT (pg_advisory_lock(1) IS NULL)",
            "CALL do_things(pg_switch_wal())",
            "DO $$ BEGIN PERFORM pg_terminate_backend(1); END $$",
            "DO $$ DECLARE x bool := pg_reload_conf(); BEGIN END $$",
            "DO $$ BEGIN IF pg_try_advisory_lock(1) THEN NULL; END IF; END $$",
            "DO $$ DECLARE r record; BEGIN FOR r IN SELECT lo_export(1, '/x') LOOP END LOOP; "
            "END $$",
            "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ''id'''; END $$",
            "DO $$ BEGIN EXECUTE 'DO $i$ BEGIN PERFORM pg_reload_conf(); END $i$'; END $$",
            "DO LANGUAGE plpgsql $$ BEGIN COPY t TO '/tmp/t'; END $$",
        ],
    )
    def test_found_inside_expressions_and_do_blocks(self, text: str) -> None:
        assert any(refused for _, refused in _hazards(text)), text

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT public.pg_terminate_backend(1)",  # somebody's own function, not the builtin
            "SELECT nextval('s')",  # sequences are put back after the run, not refused
            "SELECT pg_advisory_xact_lock(1)",  # ends with the transaction
            "COPY t TO STDOUT",
            "SELECT pg_notify('c', 'x')",  # delivered at commit, which never comes
            "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SELECT pg_reload_conf()'",
            "DO $$ BEGIN EXECUTE format('SELECT %s', 1); END $$",
            "DO LANGUAGE plperl 'system(\"id\")'",  # not PL/pgSQL: not looked into
        ],
    )
    def test_not_refused(self, text: str) -> None:
        assert not any(refused for _, refused in _hazards(text)), text

    def test_analyze_and_checkpoint_are_warnings(self) -> None:
        assert _hazards("ANALYZE t") == [(Hazard.STATISTICS, False)]
        assert _hazards("CHECKPOINT") == [(Hazard.SERVER_STATE, False)]
        findings = effect_findings(parse_migration("CREATE TABLE a (x int);\nANALYZE a;"))
        assert [(f.rule, f.severity, f.statement) for f in findings] == [
            ("side-effect", Severity.WARNING, 2)
        ]

    def test_every_table_entry_says_why(self) -> None:
        for name, (_, reason) in {**BUILTIN_FUNCTIONS, **EXTENSION_FUNCTIONS}.items():
            assert len(reason) > 15, name

    def test_a_refused_effect_rejects_before_execution_naming_statement_and_line(self) -> None:
        parsed = parse_migration("CREATE TABLE a (x int);\n\nSELECT pg_reload_conf();\n")
        errors = [f for f in static_findings(parsed) if f.severity is Severity.ERROR]
        assert [(f.rule, f.statement, f.line) for f in errors] == [("side-effect", 2, 3)]
        assert "pg_reload_conf()" in errors[0].message
        assert "nothing was executed" in errors[0].message


class TestLexerSettingClassification:
    @pytest.mark.parametrize(
        "text",
        [
            "SET standard_conforming_strings = off",
            "SET standard_conforming_strings TO 'off'",
            "SET SESSION standard_conforming_strings = off",
            "SET LOCAL standard_conforming_strings = off",
            "SET client_encoding = 'SJIS'",
            "SET client_encoding TO 'BIG5'",
            "SET NAMES 'GBK'",
            "SELECT set_config('standard_conforming_strings', 'off', false)",
            "SELECT pg_catalog.set_config('client_encoding', 'SJIS', true)",
            "SELECT set_config('standard_conforming_strings'::text, 'off', false)",
            "SELECT set_config('STANDARD_CONFORMING_STRINGS', 'off', false)",
            "DO $$ BEGIN SET standard_conforming_strings = off; END $$",
            "DO $$ BEGIN PERFORM set_config('client_encoding', 'SJIS', false); END $$",
            "DO $$ BEGIN EXECUTE 'SET standard_conforming_strings = off'; END $$",
        ],
    )
    def test_refused(self, text: str) -> None:
        assert (Hazard.LEXING, True) in _hazards(text), text

    @pytest.mark.parametrize(
        "text",
        [
            # The session pins both in its start-up packet, so a RESET comes back to the pin.
            "RESET standard_conforming_strings",
            "RESET ALL",
            "SET standard_conforming_strings TO DEFAULT",
            "SET search_path = public",
            # Scoped to the function, or to new sessions, never to the dry-run's session.
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql "
            "SET standard_conforming_strings = off AS 'SELECT 1'",
            "ALTER DATABASE app SET standard_conforming_strings = off",
            "ALTER ROLE app SET client_encoding = 'SJIS'",
            # A name set_config gets at run time is for the run-time check to catch.
            "SELECT set_config(name, 'off', false) FROM settings",
        ],
    )
    def test_not_refused_statically(self, text: str) -> None:
        assert (Hazard.LEXING, True) not in _hazards(text), text

    def test_the_issues_example_is_rejected_naming_the_set(self) -> None:
        parsed = parse_migration(
            "DELETE FROM t;\nSET standard_conforming_strings = off;\n"
            "SELECT 'a\\', 'b; COMMIT; SELECT 1 --';\n"
        )
        # pglast reads the third line as one statement (standard_conforming_strings = on) …
        assert len(parsed.statements) == 3
        errors = [f for f in static_findings(parsed) if f.severity is Severity.ERROR]
        # … and the SET that would make the server read three is refused.
        assert [(f.rule, f.line) for f in errors] == [("lexer-setting", 2)]


class TestExplainQueries:
    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("SELECT 1; DELETE FROM t", "exactly one statement, not 2"),
            ("SELECT 1; COMMIT", "exactly one statement, not 2"),
            ("COMMIT", "not Transaction"),
            ("SELECT 1;;SELECT 2", "exactly one statement"),
            ("", "exactly one statement, not 0"),
            ("-- only a comment", "exactly one statement, not 0"),
            ("CREATE TABLE x AS SELECT 1", "not CreateTableAs"),
            ("SELECT 1 INTO x", "SELECT … INTO creates a table"),
            ("EXPLAIN SELECT 1", "not Explain"),
            ("EXECUTE plan(1)", "not Execute"),
            ("DECLARE c CURSOR FOR SELECT 1", "not DeclareCursor"),
            ("REFRESH MATERIALIZED VIEW mv", "not RefreshMatView"),
            ("SET standard_conforming_strings = off", "not VariableSet"),
            ("SELECT pg_terminate_backend(1)", "terminates another session"),
            ("SELECT * FROM dblink('x', 'DELETE FROM t') AS t(a int)", "dblink"),
            ("SELECT set_config('standard_conforming_strings', 'off', false)", "reads SQL"),
            ("SELEC 1", "does not parse"),
        ],
    )
    def test_refused(self, text: str, needle: str) -> None:
        problem = explain_query_problem(text)
        assert problem is not None, text
        assert needle in problem

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT * FROM orders WHERE id = 1",
            "SELECT 1;",
            "VALUES (1), (2)",
            "DELETE FROM t WHERE id > 10",
            "INSERT INTO t VALUES (1) RETURNING *",
            "UPDATE t SET a = a + 1",
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
            "SELECT nextval('s')",
        ],
    )
    def test_accepted(self, text: str) -> None:
        assert explain_query_problem(text) is None


class TestTrafficStatements:
    def test_placeholders_become_server_parameters(self) -> None:
        converted = _with_server_placeholders(
            "SELECT * FROM t WHERE a = %(a)s AND b = %(b)s AND c = %(a)s AND d LIKE 'x%%'"
        )
        assert converted == "SELECT * FROM t WHERE a = $1 AND b = $2 AND c = $1 AND d LIKE 'x%'"

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("SELECT 1; DELETE FROM t", "exactly one statement, not 2"),
            ("COMMIT", "transaction control"),
            ("BEGIN; UPDATE t SET a = 1; COMMIT", "exactly one statement"),
            ("CREATE INDEX CONCURRENTLY i ON t (a)", "cannot run in a transaction"),
            ("VACUUM t", "cannot run in a transaction"),
            ("SELECT pg_terminate_backend($1)", "terminates another session"),
            ("SET standard_conforming_strings = off", "reads SQL"),
            ("DO $$ BEGIN COMMIT; END $$", "COMMIT or ROLLBACK"),
        ],
    )
    def test_refused(self, text: str, needle: str) -> None:
        problem = _statement_problem(text)
        assert problem is not None, text
        assert needle in problem

    def test_samples_must_be_queries(self) -> None:
        assert _statement_problem("SELECT id FROM t LIMIT 10", query=True) is None
        assert _statement_problem("VALUES (1)", query=True) is None
        assert "SELECT or VALUES" in str(
            _statement_problem("DELETE FROM t RETURNING id", query=True)
        )
        assert "exactly one" in str(_statement_problem("SELECT 1; SELECT 2", query=True))
