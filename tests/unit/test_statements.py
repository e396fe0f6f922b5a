"""Splitting and classifying migrations with PostgreSQL's parser (pglast)."""

from __future__ import annotations

import pytest

from pgparity.engine.sql.statements import OutsideAction, StatementKind, parse_migration


def test_statements_keep_text_line_and_column() -> None:
    text = (
        "-- header comment\n"
        "CREATE TABLE a (id int);\n"
        "\n"
        "  /* inline */ ALTER TABLE a ADD COLUMN b text DEFAULT 'x;y';\n"
        "INSERT INTO a VALUES (1, 'é'); SELECT 1"
    )
    parsed = parse_migration(text)
    assert [(s.index, s.line, s.column) for s in parsed.statements] == [
        (1, 2, 1),
        (2, 4, 16),
        (3, 5, 1),
        (4, 5, 32),
    ]
    assert parsed.statements[1].sql == "ALTER TABLE a ADD COLUMN b text DEFAULT 'x;y'"
    assert parsed.statements[2].sql == "INSERT INTO a VALUES (1, 'é')"
    assert parsed.statements[3].sql == "SELECT 1"
    assert all(s.kind is StatementKind.TRANSACTIONAL for s in parsed.statements)


def test_syntax_error_reports_line_and_column() -> None:
    parsed = parse_migration("SELECT 1;\n\nCREATE TABEL x (a int);")
    assert parsed.statements == ()
    assert parsed.syntax_error is not None
    assert (parsed.syntax_error.line, parsed.syntax_error.column) == (3, 8)
    assert "TABEL" in parsed.syntax_error.message


def test_dollar_quoted_bodies_are_one_statement() -> None:
    text = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\nSELECT f();"
    parsed = parse_migration(text)
    assert len(parsed.statements) == 2
    assert parsed.statements[0].node == "CreateFunctionStmt"


@pytest.mark.parametrize(
    ("sql", "action"),
    [
        ("CREATE INDEX CONCURRENTLY i ON t (a)", OutsideAction.INDEX_BUILD),
        ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON s.t (a)", OutsideAction.INDEX_BUILD),
        ("DROP INDEX CONCURRENTLY i", OutsideAction.INDEX_DROP),
        ("REINDEX INDEX CONCURRENTLY i", OutsideAction.REINDEX),
        ("REINDEX (CONCURRENTLY) TABLE t", OutsideAction.REINDEX),
        ("REINDEX DATABASE app", OutsideAction.REINDEX),
        ("REINDEX SCHEMA s", OutsideAction.REINDEX),
        ("ALTER TABLE p DETACH PARTITION c CONCURRENTLY", OutsideAction.DETACH_PARTITION),
        ("VACUUM t", OutsideAction.VACUUM),
        ("VACUUM (ANALYZE, VERBOSE) t", OutsideAction.VACUUM),
        ("CREATE DATABASE d", OutsideAction.CLUSTER_LEVEL),
        ("DROP DATABASE d", OutsideAction.CLUSTER_LEVEL),
        ("ALTER SYSTEM SET work_mem = '64MB'", OutsideAction.CLUSTER_LEVEL),
        ("CREATE TABLESPACE ts LOCATION '/x'", OutsideAction.CLUSTER_LEVEL),
        ("CLUSTER", OutsideAction.CLUSTER_LEVEL),
        ("DISCARD ALL", OutsideAction.CLUSTER_LEVEL),
    ],
)
def test_statements_that_must_run_outside_a_transaction(sql: str, action: OutsideAction) -> None:
    (statement,) = parse_migration(sql).statements
    assert statement.kind is StatementKind.NON_TRANSACTIONAL
    assert statement.action is action
    assert statement.reason


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX i ON t (a)",
        "DROP INDEX i",
        "REINDEX INDEX i",
        "REINDEX (CONCURRENTLY false) INDEX i",
        "ALTER TABLE p DETACH PARTITION c",
        "ANALYZE t",
        "CLUSTER t USING i",
        "ALTER TYPE mood ADD VALUE 'great'",
        "DISCARD TEMP",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CALL do_something()",
        "SET lock_timeout = '1s'",
    ],
)
def test_statements_that_run_inside_the_transaction(sql: str) -> None:
    (statement,) = parse_migration(sql).statements
    assert statement.kind is StatementKind.TRANSACTIONAL, sql


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "START TRANSACTION",
        "COMMIT",
        "END",
        "ROLLBACK",
        "ABORT",
        "SAVEPOINT a",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO SAVEPOINT a",
        "PREPARE TRANSACTION 'x'",
        "COMMIT PREPARED 'x'",
        "ROLLBACK PREPARED 'x'",
        "DO $$ BEGIN COMMIT; END $$",
        "DO LANGUAGE plpgsql $b$ BEGIN IF true THEN ROLLBACK; END IF; END $b$",
    ],
)
def test_transaction_control(sql: str) -> None:
    parsed = parse_migration(f"CREATE TABLE x (a int);\n{sql};\nCREATE TABLE y (a int);")
    kinds = [s.kind for s in parsed.statements]
    assert kinds == [
        StatementKind.TRANSACTIONAL,
        StatementKind.TRANSACTION_CONTROL,
        StatementKind.TRANSACTIONAL,
    ]
    assert not parsed.unwrapped


def test_one_begin_commit_around_the_file_is_unwrapped() -> None:
    parsed = parse_migration("BEGIN;\nCREATE TABLE a (id int);\nALTER TABLE a ADD b int;\nCOMMIT;")
    assert parsed.unwrapped
    assert [s.line for s in parsed.statements] == [2, 3]
    assert [s.index for s in parsed.statements] == [1, 2]
    assert parsed.transaction_control == ()
    ended = parse_migration("START TRANSACTION; CREATE TABLE a (id int); END;")
    assert ended.unwrapped


def test_wrapping_with_more_transaction_control_inside_is_not_unwrapped() -> None:
    parsed = parse_migration("BEGIN; CREATE TABLE a (id int); COMMIT; BEGIN; SELECT 1; COMMIT;")
    assert not parsed.unwrapped
    assert len(parsed.transaction_control) == 4


def test_rollback_at_the_end_is_not_an_unwrappable_wrapper() -> None:
    parsed = parse_migration("BEGIN; CREATE TABLE a (id int); ROLLBACK;")
    assert not parsed.unwrapped
    assert len(parsed.transaction_control) == 2


def test_relations_named_by_a_statement() -> None:
    parsed = parse_migration(
        "CREATE INDEX CONCURRENTLY i ON app.users (a);\n"
        "DROP INDEX CONCURRENTLY app.i, j;\nVACUUM a, s.b;"
    )
    assert [s.relations for s in parsed.statements] == [
        ("app.users",),
        ("app.i", "j"),
        ("a", "s.b"),
    ]
