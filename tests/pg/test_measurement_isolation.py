"""pgparity's own measurements cannot be answered by the migration's objects.

The measurement queries run in the session the migration runs in. A migration (or a database
prepared beforehand) can create ``public.pg_current_wal_insert_lsn()``, an operator ``=``, a
``format()`` or ``current_setting()`` of its own, a temporary ``pg_locks``, and put them first
on the search_path. Every variant here would have changed the WAL figures, the locks, the
rewrites or the timeouts in the report on main; pgparity now resolves its own names in
pg_catalog (``search_path = pg_catalog, pg_temp`` around every measurement).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fix_pg import PgDatabase, validate_sql
from pgparity.models.report import Verdict

ROWS = (
    "CREATE TABLE t (id int PRIMARY KEY, v text);"
    "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 500) g;"
)
SHADOWS = {
    "wal function": "CREATE FUNCTION public.pg_current_wal_insert_lsn() RETURNS pg_lsn "
    "LANGUAGE sql AS $$ SELECT '0/0'::pg_lsn $$",
    "oid equality": "CREATE FUNCTION public.never(oid, oid) RETURNS bool LANGUAGE sql "
    "AS $$ SELECT false $$; CREATE OPERATOR public.= (leftarg = oid, rightarg = oid, "
    "function = public.never)",
    "integer equality": "CREATE FUNCTION public.never(int4, int4) RETURNS bool LANGUAGE sql "
    "AS $$ SELECT false $$; CREATE OPERATOR public.= (leftarg = int4, rightarg = int4, "
    "function = public.never)",
    "text equality": "CREATE FUNCTION public.never(text, text) RETURNS bool LANGUAGE sql "
    "AS $$ SELECT false $$; CREATE OPERATOR public.= (leftarg = text, rightarg = text, "
    "function = public.never)",
    "format": "CREATE FUNCTION public.format(text, name, name) RETURNS text LANGUAGE sql "
    "AS $$ SELECT 'nobody.nothing' $$",
    "current_setting": "CREATE FUNCTION public.current_setting(text) RETURNS text "
    "LANGUAGE sql AS $$ SELECT '999s' $$",
    "relation filenode": "CREATE FUNCTION public.pg_relation_filenode(regclass) RETURNS oid "
    "LANGUAGE sql AS $$ SELECT 1::oid $$",
    "temporary pg_locks": "CREATE TEMP TABLE pg_locks AS SELECT * FROM pg_catalog.pg_locks "
    "WHERE false",
    "temporary pg_class": "CREATE TEMP TABLE pg_class AS SELECT * FROM pg_catalog.pg_class "
    "WHERE false",
}
MEASURED = (
    "UPDATE t SET v = repeat('y', 500);\nALTER TABLE t ADD COLUMN r float8 DEFAULT random();\n"
)


def _assert_true_measurements(report, first: int) -> None:  # type: ignore[no-untyped-def]
    assert report.verdict is Verdict.VALIDATED, report.findings
    update, alter = report.statements[first], report.statements[first + 1]
    assert update.wal_bytes is not None
    assert update.wal_bytes > 100_000
    assert update.settings_in_effect["lock_timeout"] == "5s"
    assert ("public.t", "RowExclusiveLock") in {(lk.relation, lk.mode) for lk in update.locks}
    assert ("public.t", "AccessExclusiveLock") in {(lk.relation, lk.mode) for lk in alter.locks}
    assert {"public.t", "public.t_pkey"} <= set(alter.rewrites)
    assert report.target.digest_after == report.target.digest_before


class TestShadowedCatalog:
    @pytest.mark.parametrize("shadow", SHADOWS.values(), ids=SHADOWS.keys())
    def test_a_migration_that_shadows_the_catalog(
        self, pg_db: PgDatabase, tmp_path: Path, shadow: str
    ) -> None:
        pg_db.execute(ROWS)
        migration = f"{shadow};\nSET search_path = public, pg_catalog;\n{MEASURED}"
        report = validate_sql(pg_db, migration, tmp_path, check_rerun=False)
        _assert_true_measurements(report, len(report.statements) - 2)

    def test_a_database_prepared_with_every_shadow(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        """The shadows exist before pgparity arrives and every session starts with public
        first: the observer, the digest and the residue checks meet them too."""
        pg_db.execute(
            ROWS
            + ";".join(
                v for k, v in SHADOWS.items() if "temporary" not in k and k != "oid equality"
            )
            + f";ALTER DATABASE {pg_db.name} SET search_path = public, pg_catalog"
        )
        report = validate_sql(pg_db, MEASURED, tmp_path, check_rerun=False)
        _assert_true_measurements(report, 0)
        assert report.to_dict()["observations"]["samples"] > 0
        assert report.to_dict()["observations"]["observation_gaps"] == []


class TestHostileSessionSettings:
    @pytest.mark.parametrize(
        "setting",
        [
            "SET statement_timeout = '1ms'",
            "SET LOCAL statement_timeout = 1",
            "SELECT set_config('statement_timeout', '1', false)",
        ],
    )
    def test_a_tiny_statement_timeout_does_not_cancel_the_measurements(
        self, pg_db: PgDatabase, tmp_path: Path, setting: str
    ) -> None:
        """pgparity's own queries clear statement_timeout for themselves (and put it back);
        the migration's next statements still run under the 1 ms it asked for."""
        pg_db.execute(ROWS)
        report = validate_sql(
            pg_db,
            f"{setting};\nSELECT pg_sleep(0.05);\n",
            tmp_path,
            check_rerun=False,
        )
        sleep = report.statements[1]
        assert sleep.settings_in_effect["statement_timeout"] == "1ms"
        assert sleep.error is not None
        assert sleep.error.sqlstate == "57014"
        assert [f.rule for f in report.findings] == ["statement-timeout"]
        assert report.target.digest_after == report.target.digest_before
