"""Statement-by-statement tracing that costs what a statement changed, not what exists.

The tracer asks the server only for locks it has not seen and looks for rewrites only among
relations held in ACCESS EXCLUSIVE mode (a new file node needs that lock). These tests pin the
results to what reading every lock and every file node found: the lock a statement newly
took, rewrites found when the lock came earlier, index-only rewrites, and the progress of a
long migration.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fix_pg import PgDatabase, validate_sql
from pgparity.engine.execute.dryrun import Timeouts
from pgparity.engine.validate import MigrationFile, Target, ValidationOptions, validate
from pgparity.models.quantities import parse_duration
from pgparity.models.report import Verdict

TABLES = """
CREATE TABLE t (id int PRIMARY KEY, v text);
CREATE INDEX t_v ON t (v);
INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 2000) g;
CREATE TABLE other (id int PRIMARY KEY);
"""


def _rewrites(report) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [sorted(s.rewrites) for s in report.statements]


class TestIncrementalTracing:
    @pytest.mark.parametrize(
        ("migration", "expected"),
        [
            (
                "ALTER TABLE t ADD COLUMN r float8 DEFAULT random();",
                [["public.t", "public.t_pkey", "public.t_v"]],
            ),
            (
                # The lock comes with statement 1, the rewrite with statement 2.
                "ALTER TABLE t ADD COLUMN a int;\n"
                "ALTER TABLE t ADD COLUMN r float8 DEFAULT random();",
                [[], ["public.t", "public.t_pkey", "public.t_v"]],
            ),
            (
                "ALTER TABLE t ADD COLUMN a int;\nSELECT 1;\nTRUNCATE t;",
                [[], [], ["public.t", "public.t_pkey", "public.t_v"]],
            ),
            ("REINDEX TABLE t;", [["public.t_pkey", "public.t_v"]]),
            ("REINDEX INDEX t_v;\nREINDEX INDEX t_v;", [["public.t_v"], ["public.t_v"]]),
            ("CLUSTER t USING t_pkey;", [["public.t", "public.t_pkey", "public.t_v"]]),
            ("ALTER TABLE other ADD COLUMN a int;\nALTER TABLE t ADD COLUMN b int;", [[], []]),
            (
                # A table the migration creates is new, not rewritten.
                "CREATE TABLE fresh (a int);\nALTER TABLE fresh ALTER COLUMN a TYPE bigint;",
                [[], []],
            ),
        ],
    )
    def test_rewrites(
        self, pg_db: PgDatabase, tmp_path: Path, migration: str, expected: list[list[str]]
    ) -> None:
        pg_db.execute(TABLES)
        report = validate_sql(pg_db, migration, tmp_path, check_rerun=False)
        assert report.verdict is Verdict.VALIDATED, report.findings
        assert _rewrites(report) == expected

    def test_a_lock_is_charged_to_the_statement_that_took_it(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_db.execute(TABLES)
        report = validate_sql(
            pg_db,
            "SELECT count(*) FROM t;\nALTER TABLE t ADD COLUMN a int;\n"
            "ALTER TABLE t ADD COLUMN b int;\nDROP TABLE other;",
            tmp_path,
            check_rerun=False,
        )
        locks = [{(lk.relation, lk.mode) for lk in s.locks} for s in report.statements]
        assert ("public.t", "AccessShareLock") in locks[0]
        assert ("public.t", "AccessExclusiveLock") in locks[1]
        assert ("public.t", "AccessExclusiveLock") not in locks[2]  # held already
        assert not any(rel == "public.other" for rel, _ in locks[3])  # dropped: gone
        assert report.statements[3].executed

    def test_a_long_migration_shows_progress_without_a_line_per_statement(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        count = 400
        migration = "".join(
            f"CREATE TABLE bulk_{i} (id int PRIMARY KEY, note text);\n" for i in range(count)
        )
        path = tmp_path / "bulk.sql"
        path.write_text(migration)
        lines: list[str] = []
        options = ValidationOptions(
            timeouts=Timeouts(parse_duration("5s"), parse_duration("30s")), check_rerun=False
        )
        report = validate(MigrationFile.read(path), Target(pg_db.dsn), options, lines.append)
        assert report.verdict is Verdict.VALIDATED
        assert all(s.executed for s in report.statements)
        shown = [line for line in lines if line.startswith("statement ")]
        assert shown[0].startswith("statement 1 (line 1), 1 of 400:")
        assert shown[-1].startswith(f"statement {count} (line {count}), {count} of {count}:")
        assert len(shown) < 60
        # Each statement's locks are its own table's: new, never the 399 others'.
        assert all(
            {lk.relation for lk in s.locks if lk.relkind == "r"} == {f"public.bulk_{s.index - 1}"}
            for s in report.statements
        )
