"""Schema objects reach the clone exactly as they are on the source, and nothing else runs.

Names and comments carry newlines, quotes, ``$$``, backslashes, lines that look like psql
meta-commands (``\\connect``), semicolons and comment markers. Seeding once edited pg_dump's text
by lines, and a crafted pair of index comments ran SQL on the target. Each variant is seeded on
its own and the catalogs of both sides compared: names, definitions and every comment must be
equal, and the target must hold no object the source does not.

These tests drive the CLI only, so they run against any pgparity version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg import sql

from fix_pg import PgDatabase

PGPARITY = [sys.executable, "-m", "pgparity"]

HOSTILE = {
    "newline": "new\nline",
    "single-quote": "it's",
    "double-quote": 'say "hi"',
    "dollar-quotes": "$$ body $$ $x$",
    "backslash": "back\\slash",
    "backslash-first": "\\connect postgres",
    "meta-command-line": "a\n\\connect postgres\nb",
    "closes-a-literal": "x\n\\",
    "semicolons": "a; DROP TABLE victim; --",
    "comment-markers": "/* c */ -- d",
    "control-characters": "tab\there\rcr",
    "unicode": "ünï ✓ 名前",
    "e-string": "E'\\x41'",
}

# Every catalog fact that must be equal on both sides (user schemas only).
_CATALOG = {
    "relations": """
        SELECT n.nspname, c.relname, c.relkind::text, obj_description(c.oid, 'pg_class')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
        ORDER BY 1, 2""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               col_description(c.oid, a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
          AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY 1, 2""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid),
               obj_description(oid, 'pg_constraint'), convalidated
        FROM pg_constraint WHERE connamespace NOT IN ('pg_catalog'::regnamespace)
        ORDER BY 1, 2""",
    "indexes": """
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid),
               obj_description(indexrelid, 'pg_class')
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'pg_toast'::regnamespace)
        ORDER BY 1""",
    "triggers": """
        SELECT tgname, pg_get_triggerdef(oid), obj_description(oid, 'pg_trigger')
        FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1""",
    "views": """
        SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c
        WHERE c.relkind IN ('v', 'm')
          AND c.relnamespace NOT IN ('pg_catalog'::regnamespace,
                                     'information_schema'::regnamespace)
        ORDER BY 1""",
    "schemas": """
        SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace
        WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1""",
    "functions": """
        SELECT p.proname, pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc')
        FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace ORDER BY 1""",
}


def _hostile_schema(text: str) -> sql.Composed:
    """Tables, columns, keys, indexes, a view, a trigger: named after and commented with
    ``text``."""
    i = sql.Identifier
    table, parent = i("public", f"t {text}"), i("public", f"p {text}")
    statements = [
        sql.SQL("CREATE SCHEMA {}").format(i(f"s {text}")),
        sql.SQL("COMMENT ON SCHEMA {} IS {}").format(i(f"s {text}"), sql.Literal(text)),
        sql.SQL("CREATE TABLE {} ({} int PRIMARY KEY, {} text, other int)").format(
            parent, i(f"id {text}"), i(f"c {text}")
        ),
        sql.SQL("CREATE TABLE {} ({} int PRIMARY KEY, ref int, note text)").format(
            table, i(f"k {text}")
        ),
        sql.SQL("INSERT INTO {} SELECT g, 'v' || g, g FROM generate_series(1, 50) g").format(
            parent
        ),
        sql.SQL("INSERT INTO {} SELECT g, 1 + g % 50, 'n' FROM generate_series(1, 80) g").format(
            table
        ),
        sql.SQL("CREATE INDEX {} ON {} ({})").format(i(f"i {text}"), parent, i(f"c {text}")),
        sql.SQL("CREATE INDEX {} ON {} (note)").format(i(f"j {text}"), table),
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE (other)").format(parent, i(f"u {text}")),
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (ref) REFERENCES {}").format(
            table, i(f"f {text}"), parent
        ),
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (ref > 0) NOT VALID").format(
            table, i(f"ck {text}")
        ),
        sql.SQL("CREATE VIEW {} AS SELECT {} AS label, count(*) FROM {}").format(
            i("public", f"v {text}"), sql.Literal(text), table
        ),
        sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS {}").format(
            i("public", f"fn {text}"), sql.Literal(_function_body(text))
        ),
        sql.SQL("CREATE TRIGGER {} BEFORE INSERT ON {} FOR EACH ROW EXECUTE FUNCTION {}()").format(
            i(f"tr {text}"), table, i("public", f"fn {text}")
        ),
    ]
    for kind, name in (
        ("TABLE", table),
        ("INDEX", i("public", f"i {text}")),
        ("INDEX", i("public", f"j {text}")),
        ("VIEW", i("public", f"v {text}")),
        ("FUNCTION", sql.SQL("{}()").format(i("public", f"fn {text}"))),
    ):
        statements.append(
            sql.SQL("COMMENT ON {} {} IS {}").format(sql.SQL(kind), name, sql.Literal(text))
        )
    statements += [
        sql.SQL("COMMENT ON COLUMN {}.{} IS {}").format(parent, i(f"c {text}"), sql.Literal(text)),
        sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
            i(f"u {text}"), parent, sql.Literal(text)
        ),
        sql.SQL("COMMENT ON CONSTRAINT {} ON {} IS {}").format(
            i(f"f {text}"), table, sql.Literal(text)
        ),
        sql.SQL("COMMENT ON TRIGGER {} ON {} IS {}").format(
            i(f"tr {text}"), table, sql.Literal(text)
        ),
    ]
    return sql.SQL(";\n").join(statements)


def _function_body(text: str) -> str:
    notice = sql.SQL("RAISE NOTICE '%', {}").format(sql.Literal(text)).as_string(None)
    return f"BEGIN IF false THEN {notice}; END IF; RETURN NEW; END"


def catalog_of(db: PgDatabase) -> dict[str, list[tuple[object, ...]]]:
    with db.connect() as conn:
        return {name: conn.execute(query.encode()).fetchall() for name, query in _CATALOG.items()}


def keep_everything(db: PgDatabase, path: Path) -> Path:
    """A policy keeping every column (JSON is YAML, and quotes any name exactly)."""
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname), a.attname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
    tables: dict[str, dict[str, dict[str, str]]] = {}
    for table, column in rows:
        tables.setdefault(str(table), {"columns": {}})["columns"][str(column)] = "keep"
    path.write_text(json.dumps({"version": 1, "tables": tables}))
    return path


def seed(source: PgDatabase, target: PgDatabase, policy: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGPARITY_")}
    return subprocess.run(
        [*PGPARITY, "seed", "--source-dsn", source.dsn, "--target-dsn", target.dsn,
         "--policy", str(policy), "--no-parity", "--format", "json", "--quiet"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


class TestSchemaObjectsRoundTripExactly:
    """Hostile names and comments arrive exactly, and run nothing on the pg_target_db."""

    @pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
    def test_names_and_comments_round_trip(
        self, pg_plain_db: PgDatabase, pg_target_db: PgDatabase, tmp_path: Path, text: str
    ) -> None:
        with pg_plain_db.connect() as conn:
            conn.execute(_hostile_schema(text))
        result = seed(pg_plain_db, pg_target_db, keep_everything(pg_plain_db, tmp_path / "p.yaml"))
        assert result.returncode == 0, result.stderr
        assert catalog_of(pg_target_db) == catalog_of(pg_plain_db)
        report = json.loads(result.stdout)
        assert report["source_digest"] == report["target_digest"]
        built = {(b["kind"], b["name"]) for b in report["index_builds"]}
        assert {("index", f"i {text}"), ("unique constraint", f"u {text}")} <= built
        assert ("foreign key", f"f {text}") in built
        counts = "SELECT (SELECT count(*) FROM {}), (SELECT count(*) FROM {})"
        query = sql.SQL(counts).format(
            sql.Identifier("public", f"t {text}"), sql.Identifier("public", f"p {text}")
        )
        with pg_target_db.connect() as conn:
            assert conn.execute(query).fetchone() == (80, 50)

    def test_a_comment_crafted_to_close_a_literal_runs_nothing(
        self, pg_plain_db: PgDatabase, pg_target_db: PgDatabase, tmp_path: Path
    ) -> None:
        # Dropping the line that starts with a backslash left the first comment's literal open,
        # and the second comment's text then ran as SQL.
        pg_plain_db.execute("""
            CREATE TABLE t (a int, b int);
            CREATE INDEX ia ON t (a);
            CREATE INDEX ib ON t (b);
            COMMENT ON INDEX ia IS E'x\\n\\\\';
            COMMENT ON INDEX ib IS '; CREATE TABLE public.pwned (); --';
        """)
        result = seed(pg_plain_db, pg_target_db, keep_everything(pg_plain_db, tmp_path / "p.yaml"))
        assert result.returncode == 0, result.stderr
        assert pg_target_db.scalar("SELECT to_regclass('public.pwned')") is None
        assert catalog_of(pg_target_db) == catalog_of(pg_plain_db)
        assert pg_target_db.scalar("SELECT obj_description('ia'::regclass)") == "x\n\\"
