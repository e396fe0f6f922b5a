"""Every lint rule, with SQL that must raise it and SQL that must not (table-driven).

Tables are taken to exist, with data, unless the file created them above. Every rule of the
catalogue appears here at least once on each side; the last test checks that.
"""

from __future__ import annotations

import pytest

from pgparity.lint import LintConfig, Rule, lint_source
from pgparity.lint.catalog import CATALOG

EVERYTHING = LintConfig(enable=frozenset(r for r, e in CATALOG.items() if not e.enabled))
IN_TX = LintConfig(assume_in_transaction=True)
TIMEOUTS = "SET lock_timeout = '2s';\nSET statement_timeout = '5s';\n"
LONG = "a" * 64

# (rule, SQL that raises it)
FAILING: list[tuple[Rule, str]] = [
    (Rule.CREATE_INDEX_NON_CONCURRENTLY, "CREATE INDEX i ON orders (a)"),
    (Rule.CREATE_INDEX_NON_CONCURRENTLY, "CREATE UNIQUE INDEX i ON app.orders (a)"),
    (Rule.DROP_INDEX_NON_CONCURRENTLY, "DROP INDEX orders_a"),
    (Rule.REINDEX_NON_CONCURRENTLY, "REINDEX TABLE orders"),
    (Rule.REINDEX_NON_CONCURRENTLY, "REINDEX INDEX orders_a"),
    (Rule.DETACH_PARTITION_NON_CONCURRENTLY, "ALTER TABLE m DETACH PARTITION m_2020"),
    (Rule.ADD_UNIQUE_CONSTRAINT, "ALTER TABLE orders ADD CONSTRAINT u UNIQUE (a)"),
    (Rule.ADD_UNIQUE_CONSTRAINT, "ALTER TABLE orders ADD COLUMN code text UNIQUE"),
    (Rule.ADD_PRIMARY_KEY, "ALTER TABLE orders ADD PRIMARY KEY (id)"),
    (
        Rule.PRIMARY_KEY_USING_INDEX,
        "ALTER TABLE orders ADD CONSTRAINT pk PRIMARY KEY USING INDEX u",
    ),
    (
        Rule.ADD_EXCLUSION_CONSTRAINT,
        "ALTER TABLE r ADD CONSTRAINT x EXCLUDE USING gist (p WITH &&)",
    ),
    (Rule.CHECK_CONSTRAINT_WITHOUT_NOT_VALID, "ALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0)"),
    (Rule.CHECK_CONSTRAINT_WITHOUT_NOT_VALID, "ALTER TABLE orders ADD COLUMN b int CHECK (b > 0)"),
    (
        Rule.FOREIGN_KEY_WITHOUT_NOT_VALID,
        "ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id)",
    ),
    (Rule.FOREIGN_KEY_WITHOUT_NOT_VALID, "ALTER TABLE orders ADD COLUMN u bigint REFERENCES users"),
    (
        Rule.VALIDATE_IN_SAME_TRANSACTION,
        "BEGIN;\nALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT c;\nCOMMIT;",
    ),
    (Rule.SET_NOT_NULL, "ALTER TABLE orders ALTER COLUMN a SET NOT NULL"),
    (
        Rule.SET_NOT_NULL,  # the CHECK is there but never validated: the scan still happens
        "ALTER TABLE orders ADD CONSTRAINT nn CHECK (a IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE orders ALTER COLUMN a SET NOT NULL;",
    ),
    (Rule.COLUMN_TYPE_CHANGE, "ALTER TABLE orders ALTER COLUMN a TYPE bigint"),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN r float8 DEFAULT random()"),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN g uuid DEFAULT gen_random_uuid()"),
    (
        Rule.ADD_COLUMN_REWRITE,
        "ALTER TABLE orders ADD COLUMN d int GENERATED ALWAYS AS (a * 2) STORED",
    ),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN n bigserial"),
    (
        Rule.ADD_COLUMN_REWRITE,
        "ALTER TABLE orders ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY",
    ),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN s text DEFAULT my_function()"),
    (Rule.VACUUM_FULL_OR_CLUSTER, "VACUUM FULL orders"),
    (Rule.VACUUM_FULL_OR_CLUSTER, "CLUSTER orders USING orders_pkey"),
    (Rule.ALTER_DOMAIN_ADD_CONSTRAINT, "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0)"),
    (Rule.MISSING_LOCK_TIMEOUT, "ALTER TABLE orders ADD COLUMN b text"),
    (Rule.MISSING_LOCK_TIMEOUT, "CREATE TABLE items (o bigint REFERENCES orders)"),
    (
        Rule.MISSING_STATEMENT_TIMEOUT,
        "SET lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN b text",
    ),
    (
        Rule.WORK_AFTER_DANGEROUS_LOCK,
        "BEGIN;\nALTER TABLE orders ADD COLUMN b text;\nUPDATE orders SET b = 'x';\nCOMMIT;",
    ),
    (
        Rule.MULTIPLE_ALTER_TABLE,
        "ALTER TABLE orders ADD COLUMN b text;\nALTER TABLE orders ADD COLUMN c text;",
    ),
    (Rule.TRUNCATE_CASCADE, "TRUNCATE orders CASCADE"),
    (Rule.ADD_REQUIRED_COLUMN, "ALTER TABLE orders ADD COLUMN b text NOT NULL"),
    (Rule.DROP_COLUMN, "ALTER TABLE orders DROP COLUMN b"),
    (Rule.DROP_TABLE, "DROP TABLE orders"),
    (Rule.DROP_VIEW, "DROP VIEW order_totals"),
    (Rule.DROP_VIEW, "DROP MATERIALIZED VIEW order_totals"),
    (Rule.DROP_DATABASE, "DROP DATABASE shop"),
    (Rule.DROP_NOT_NULL, "ALTER TABLE orders ALTER COLUMN a DROP NOT NULL"),
    (Rule.RENAME_COLUMN, "ALTER TABLE orders RENAME COLUMN a TO b"),
    (Rule.RENAME_TABLE, "ALTER TABLE orders RENAME TO purchases"),
    (Rule.RENAME_OBJECT, "ALTER INDEX orders_a RENAME TO orders_b"),
    (Rule.RENAME_OBJECT, "ALTER TABLE orders RENAME CONSTRAINT a_fkey TO b_fkey"),
    (Rule.RENAME_OBJECT, "ALTER FUNCTION f(int) RENAME TO g"),
    (Rule.ENUM_VALUE_RENAME, "ALTER TYPE mood RENAME VALUE 'sad' TO 'unhappy'"),
    (
        Rule.NON_TRANSACTIONAL_IN_TRANSACTION,
        "BEGIN;\nCREATE INDEX CONCURRENTLY i ON orders (a);\nCOMMIT;",
    ),
    (Rule.NON_TRANSACTIONAL_IN_TRANSACTION, "BEGIN;\nVACUUM orders;\nCOMMIT;"),
    (Rule.TRANSACTION_NESTING, "BEGIN;\nBEGIN;\nSELECT 1;\nCOMMIT;\nCOMMIT;"),
    (Rule.TRANSACTION_NESTING, "SELECT 1;\nCOMMIT;"),
    (Rule.UNCOMMITTED_TRANSACTION, "BEGIN;\nSELECT 1;"),
    (Rule.NOT_RE_RUNNABLE, "CREATE INDEX CONCURRENTLY i ON orders (a)"),
    (Rule.NOT_RE_RUNNABLE, "ALTER TABLE orders ADD COLUMN b text"),
    (Rule.PREFER_BIGINT, "CREATE TABLE t (id integer)"),
    (Rule.PREFER_BIGINT, "ALTER TABLE orders ADD COLUMN n smallint"),
    (Rule.PREFER_IDENTITY, "CREATE TABLE t (id bigserial)"),
    (Rule.PREFER_TIMESTAMPTZ, "CREATE TABLE t (at timestamp)"),
    (
        Rule.PREFER_TIMESTAMPTZ,
        "ALTER TABLE orders ALTER COLUMN at TYPE timestamp without time zone",
    ),
    (Rule.PREFER_TEXT, "CREATE TABLE t (name varchar(40))"),
    (Rule.CHAR_COLUMN, "CREATE TABLE t (code char(3))"),
    (Rule.JSON_COLUMN, "CREATE TABLE t (doc json)"),
    (Rule.CREATE_ENUM, "CREATE TYPE mood AS ENUM ('sad', 'ok')"),
    (Rule.ENUM_VALUE_ORDER, "ALTER TYPE mood ADD VALUE 'happy'"),
    (Rule.CREATE_DOMAIN_WITH_CONSTRAINT, "CREATE DOMAIN positive AS bigint CHECK (VALUE > 0)"),
    (Rule.IDENTIFIER_TOO_LONG, f"CREATE TABLE t ({LONG} bigint)"),
    (Rule.IDENTIFIER_TOO_LONG, 'CREATE TABLE t ("' + "é" * 32 + '" bigint)'),  # 64 bytes
    (Rule.DUPLICATE_COLUMN_ASSIGNMENT, "UPDATE orders SET a = 1, a = 2"),
    (Rule.DUPLICATE_COLUMN_ASSIGNMENT, "INSERT INTO orders (a, a) VALUES (1, 2)"),
    (Rule.UNQUALIFIED_NAME, "CREATE TABLE t (a int)"),
    (Rule.UNQUALIFIED_NAME, "CREATE INDEX CONCURRENTLY i ON orders (a)"),
    (Rule.UNQUALIFIED_NAME, "ALTER TABLE orders ADD COLUMN b text"),
    (Rule.UNQUALIFIED_NAME, "DROP VIEW IF EXISTS v"),
    (Rule.UNQUALIFIED_NAME, "CREATE MATERIALIZED VIEW m AS SELECT 1"),
    (Rule.SYNTAX_ERROR, "CREATE TABL t ()"),
    (Rule.INVALID_ACKNOWLEDGEMENT, "-- pgparity: allow drop-table\nDROP TABLE orders"),
    (Rule.INVALID_ACKNOWLEDGEMENT, "-- pgparity: allow drop-tables because old\nDROP TABLE orders"),
    (Rule.INVALID_ACKNOWLEDGEMENT, "-- pgparity: ignore drop-table because old\nDROP TABLE orders"),
    (Rule.UNUSED_ACKNOWLEDGEMENT, "-- pgparity: allow drop-table because unused\nSELECT 1"),
]

# (rule, SQL that must not raise it) — mostly the safe pattern of the rule's docs page.
PASSING: list[tuple[Rule, str]] = [
    (Rule.CREATE_INDEX_NON_CONCURRENTLY, "CREATE INDEX CONCURRENTLY i ON orders (a)"),
    (Rule.CREATE_INDEX_NON_CONCURRENTLY, "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);"),
    (
        Rule.CREATE_INDEX_NON_CONCURRENTLY,  # created above under another spelling of its name
        "CREATE TABLE public.t (a int);\nCREATE INDEX i ON t (a);",
    ),
    (
        Rule.CREATE_INDEX_NON_CONCURRENTLY,
        "CREATE MATERIALIZED VIEW mv AS SELECT 1 AS a;\nCREATE UNIQUE INDEX i ON mv (a);",
    ),
    (Rule.DROP_INDEX_NON_CONCURRENTLY, "DROP INDEX CONCURRENTLY orders_a"),
    (Rule.REINDEX_NON_CONCURRENTLY, "REINDEX TABLE CONCURRENTLY orders"),
    (Rule.DETACH_PARTITION_NON_CONCURRENTLY, "ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY"),
    (
        Rule.ADD_UNIQUE_CONSTRAINT,
        "CREATE UNIQUE INDEX CONCURRENTLY u ON orders (a);\n"
        "ALTER TABLE orders ADD CONSTRAINT u UNIQUE USING INDEX u;",
    ),
    (Rule.ADD_PRIMARY_KEY, "CREATE TABLE t (id bigint);\nALTER TABLE t ADD PRIMARY KEY (id);"),
    (Rule.PRIMARY_KEY_USING_INDEX, "ALTER TABLE orders ADD CONSTRAINT u UNIQUE USING INDEX u"),
    (
        Rule.ADD_EXCLUSION_CONSTRAINT,
        "CREATE TABLE r (p int4range);\n"
        "ALTER TABLE r ADD CONSTRAINT x EXCLUDE USING gist (p WITH &&);",
    ),
    (
        Rule.CHECK_CONSTRAINT_WITHOUT_NOT_VALID,
        "ALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
    ),
    (
        Rule.FOREIGN_KEY_WITHOUT_NOT_VALID,
        "ALTER TABLE orders ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES users (id) NOT VALID",
    ),
    (
        Rule.VALIDATE_IN_SAME_TRANSACTION,
        "BEGIN;\nALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\nCOMMIT;\n"
        "BEGIN;\nALTER TABLE orders VALIDATE CONSTRAINT c;\nCOMMIT;",
    ),
    (
        Rule.VALIDATE_IN_SAME_TRANSACTION,  # autocommit: each statement commits on its own
        "ALTER TABLE orders ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT c;",
    ),
    (
        Rule.SET_NOT_NULL,
        "ALTER TABLE orders ADD CONSTRAINT nn CHECK (a IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT nn;\n"
        "ALTER TABLE orders ALTER COLUMN a SET NOT NULL;",
    ),
    (Rule.COLUMN_TYPE_CHANGE, "CREATE TABLE t (a int);\nALTER TABLE t ALTER COLUMN a TYPE bigint;"),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN at timestamptz DEFAULT now()"),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN n bigint DEFAULT 0"),
    (Rule.ADD_COLUMN_REWRITE, "ALTER TABLE orders ADD COLUMN doc jsonb DEFAULT '{}'::jsonb"),
    (Rule.VACUUM_FULL_OR_CLUSTER, "VACUUM orders"),
    (
        Rule.ALTER_DOMAIN_ADD_CONSTRAINT,
        "ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID",
    ),
    (Rule.MISSING_LOCK_TIMEOUT, TIMEOUTS + "ALTER TABLE orders ADD COLUMN b text"),
    (
        Rule.MISSING_LOCK_TIMEOUT,
        "SELECT set_config('lock_timeout', '2s', false);\nALTER TABLE orders ADD COLUMN b text;",
    ),
    (
        Rule.MISSING_LOCK_TIMEOUT,
        "BEGIN;\nSET LOCAL lock_timeout = '2s';\nALTER TABLE orders ADD COLUMN b text;\nCOMMIT;",
    ),
    (Rule.MISSING_LOCK_TIMEOUT, "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);"),
    (Rule.MISSING_STATEMENT_TIMEOUT, TIMEOUTS + "ALTER TABLE orders ADD COLUMN b text"),
    (
        Rule.WORK_AFTER_DANGEROUS_LOCK,
        "BEGIN;\nALTER TABLE orders ADD COLUMN b text;\nCOMMIT;\nUPDATE orders SET b = 'x';",
    ),
    (
        Rule.WORK_AFTER_DANGEROUS_LOCK,  # autocommit: the lock ends with its statement
        "ALTER TABLE orders ADD COLUMN b text;\nUPDATE orders SET b = 'x';",
    ),
    (Rule.MULTIPLE_ALTER_TABLE, "ALTER TABLE orders ADD COLUMN b text, ADD COLUMN c text"),
    (Rule.TRUNCATE_CASCADE, "TRUNCATE orders"),
    (Rule.ADD_REQUIRED_COLUMN, "ALTER TABLE orders ADD COLUMN b text NOT NULL DEFAULT ''"),
    (Rule.DROP_COLUMN, "CREATE TABLE t (a int, b int);\nALTER TABLE t DROP COLUMN b;"),
    (Rule.DROP_TABLE, "CREATE TABLE t (a int);\nDROP TABLE t;"),
    (Rule.DROP_VIEW, "CREATE VIEW v AS SELECT 1;\nDROP VIEW v;"),
    (Rule.DROP_DATABASE, "DROP SCHEMA old_stuff"),
    (
        Rule.DROP_NOT_NULL,
        "CREATE TABLE t (a int NOT NULL);\nALTER TABLE t ALTER COLUMN a DROP NOT NULL;",
    ),
    (Rule.RENAME_COLUMN, "CREATE TABLE t (a int);\nALTER TABLE t RENAME COLUMN a TO b;"),
    (Rule.RENAME_TABLE, "CREATE TABLE t (a int);\nALTER TABLE t RENAME TO u;\nDROP TABLE u;"),
    (
        Rule.RENAME_OBJECT,
        "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\nALTER INDEX i RENAME TO j;",
    ),
    (Rule.ENUM_VALUE_RENAME, "ALTER TYPE mood ADD VALUE 'meh' AFTER 'sad'"),
    (Rule.NON_TRANSACTIONAL_IN_TRANSACTION, "CREATE INDEX CONCURRENTLY i ON orders (a)"),
    (Rule.TRANSACTION_NESTING, "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nROLLBACK;"),
    (Rule.UNCOMMITTED_TRANSACTION, "BEGIN;\nSELECT 1;\nCOMMIT;"),
    (Rule.NOT_RE_RUNNABLE, "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON orders (a)"),
    (Rule.NOT_RE_RUNNABLE, "ALTER TABLE orders ADD COLUMN IF NOT EXISTS b text"),
    (Rule.PREFER_BIGINT, "CREATE TABLE t (id bigint, n numeric)"),
    (Rule.PREFER_IDENTITY, "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY)"),
    (Rule.PREFER_TIMESTAMPTZ, "CREATE TABLE t (at timestamptz)"),
    (Rule.PREFER_TEXT, "CREATE TABLE t (name text, code varchar)"),
    (Rule.CHAR_COLUMN, 'CREATE TABLE t (code text, flag "char")'),
    (Rule.JSON_COLUMN, "CREATE TABLE t (doc jsonb)"),
    (Rule.CREATE_ENUM, "CREATE TABLE mood (name text PRIMARY KEY)"),
    (Rule.ENUM_VALUE_ORDER, "ALTER TYPE mood ADD VALUE 'happy' BEFORE 'ok'"),
    (Rule.CREATE_DOMAIN_WITH_CONSTRAINT, "CREATE DOMAIN name AS text"),
    (Rule.IDENTIFIER_TOO_LONG, f"CREATE TABLE t ({LONG[:63]} bigint)"),
    (Rule.DUPLICATE_COLUMN_ASSIGNMENT, "UPDATE orders SET a = 1, b = 2"),
    (
        Rule.UNQUALIFIED_NAME,  # qualified, temporary, or not DDL: search_path cannot misplace it
        "CREATE TABLE app.t (a int);\nCREATE TEMP TABLE s (a int);\nDROP TABLE app.t, pg_temp.s;\n"
        "INSERT INTO orders VALUES (1);\nCREATE INDEX CONCURRENTLY i ON app.orders (a);",
    ),
    (Rule.SYNTAX_ERROR, "CREATE TABLE t ()"),
    (
        Rule.INVALID_ACKNOWLEDGEMENT,
        "-- pgparity: allow drop-table because replaced by purchases in 2024\nDROP TABLE orders",
    ),
    (Rule.UNUSED_ACKNOWLEDGEMENT, "-- pgparity: allow drop-table because gone\nDROP TABLE orders"),
]


def rules_found(sql: str, config: LintConfig = EVERYTHING) -> list[Rule]:
    return [f.rule for f in lint_source("m.sql", sql, config).findings if f.active]


@pytest.mark.parametrize(
    ("rule", "sql"), FAILING, ids=[f"{r.value}:{i}" for i, (r, _) in enumerate(FAILING)]
)
def test_rule_fires_on_the_unsafe_form(rule: Rule, sql: str) -> None:
    assert rule in rules_found(sql), sql


@pytest.mark.parametrize(
    ("rule", "sql"), PASSING, ids=[f"{r.value}:{i}" for i, (r, _) in enumerate(PASSING)]
)
def test_rule_is_silent_on_the_safe_form(rule: Rule, sql: str) -> None:
    assert rule not in rules_found(sql), sql


def test_every_rule_has_a_failing_and_a_passing_fixture() -> None:
    assert {r for r, _ in FAILING} == set(Rule)
    assert {r for r, _ in PASSING} == set(Rule)


def test_the_assumed_transaction_makes_concurrently_an_error() -> None:
    sql = "CREATE INDEX CONCURRENTLY i ON orders (a)"
    assert Rule.NON_TRANSACTIONAL_IN_TRANSACTION in rules_found(sql, IN_TX)
    assert Rule.NON_TRANSACTIONAL_IN_TRANSACTION not in rules_found(sql, LintConfig())


def test_the_assumed_transaction_holds_locks_to_the_end_of_the_file() -> None:
    sql = "ALTER TABLE orders ADD COLUMN b text;\nUPDATE orders SET b = 'x';"
    assert Rule.WORK_AFTER_DANGEROUS_LOCK in rules_found(sql, IN_TX)


class TestTimeoutsThatAreNotInEffect:
    """A timeout only counts while it is in effect: hostile variants of believing otherwise."""

    @pytest.mark.parametrize(
        "setup",
        [
            "SET LOCAL lock_timeout = '2s';",  # outside a transaction: the server only warns
            "BEGIN;\nSET LOCAL lock_timeout = '2s';\nCOMMIT;",  # ended with its transaction
            "SET lock_timeout = '2s';\nRESET lock_timeout;",
            "SET lock_timeout = '2s';\nRESET ALL;",
            "SET lock_timeout = 0;",
            "SET lock_timeout = '0';",
            "SET lock_timeout TO DEFAULT;",
            "SET foo.lock_timeout = '2s';",  # a custom setting of the same name
            "SELECT set_config('lock_timeout', '2s', true);",  # local, outside a transaction
            "-- SET lock_timeout = '2s';",  # a comment
            "SELECT 'SET lock_timeout = ''2s''';",  # a string
        ],
    )
    def test_missing_lock_timeout_still_fires(self, setup: str) -> None:
        sql = f"{setup}\nALTER TABLE orders ADD COLUMN b text;"
        assert Rule.MISSING_LOCK_TIMEOUT in rules_found(sql)

    def test_reported_once_per_file(self) -> None:
        sql = "ALTER TABLE a ADD COLUMN b text;\nALTER TABLE c ADD COLUMN d text;"
        assert rules_found(sql).count(Rule.MISSING_LOCK_TIMEOUT) == 1


def test_findings_name_the_relation_and_the_lock() -> None:
    [finding] = [
        f
        for f in lint_source("m.sql", "CREATE INDEX i ON app.orders (a)", LintConfig()).findings
        if f.rule is Rule.CREATE_INDEX_NON_CONCURRENTLY
    ]
    assert finding.relation == "app.orders"
    assert finding.lock is not None
    assert finding.lock.value == "ShareLock"
    assert (finding.line, finding.column, finding.statement) == (1, 1, 1)


def test_findings_point_at_the_column_or_constraint_inside_the_statement() -> None:
    sql = "SELECT 1;\nALTER TABLE orders\n    ADD COLUMN b int,\n    ADD COLUMN c json;"
    [json_column] = [
        f for f in lint_source("m.sql", sql, LintConfig()).findings if f.rule is Rule.JSON_COLUMN
    ]
    assert (json_column.line, json_column.column) == (4, 16)
    assert json_column.statement == 2
    assert json_column.statement_start == (2, 1)


def test_a_syntax_error_is_a_finding_with_its_position() -> None:
    report = lint_source("m.sql", "SELECT 1;\nCREATE TABL t ();", LintConfig())
    [finding] = report.findings
    assert finding.rule is Rule.SYNTAX_ERROR
    assert (finding.line, finding.column) == (2, 8)
    assert "TABL" in finding.message


def test_sql_in_comments_strings_and_function_bodies_is_not_linted() -> None:
    sql = (
        "-- DROP TABLE orders;\n/* CREATE INDEX i ON orders (a); */\n"
        "SELECT 'DROP TABLE orders';\n"
        "CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ DELETE FROM orders $$;\n"
    )
    assert rules_found(sql) == []
