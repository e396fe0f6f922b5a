"""Effects ROLLBACK cannot undo are refused before they run, or put back and reported.

Refused (error, nothing runs): server programs and files, large-object export/import, other
sessions signalled, server state, replication slots, statistics resets, session advisory
locks, dblink — in plain statements, expressions, views, DO blocks and EXECUTEd strings.
Writes into foreign tables are refused when the dry-run sees their target. Put back and
reported: sequence values (on clones), advisory locks and replication slots left by functions
no static check could see into; statistics changed in place are listed.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from fix_pg import PgDatabase, committing_traffic, table_t, validate_sql
from pgparity.models.report import Severity, SideEffectKind, Verdict

ROWS = table_t(100)


def _rules(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.rule for f in report.findings]


@pytest.fixture
def server_dir(server_writable_dir: Path) -> Path:
    """A directory the server may write to, with a file it may read."""
    (server_writable_dir / "input.csv").write_text("1000,from a file\n")
    (server_writable_dir / "input.csv").chmod(0o644)
    return server_writable_dir


class TestRefusedSideEffects:
    @pytest.mark.parametrize(
        "statement",
        [
            "COPY (SELECT 1) TO PROGRAM 'touch {dir}/ran'",
            "COPY t FROM PROGRAM 'touch {dir}/ran; echo 1000,p'",
            "COPY (SELECT 1) TO '{dir}/ran'",
            "COPY t FROM '{dir}/input.csv' (FORMAT csv)",
            "SELECT lo_export(lo_from_bytea(0, 'x'), '{dir}/ran')",
            "SELECT lo_import('{dir}/input.csv')",
            "DO $$ BEGIN COPY (SELECT 1) TO PROGRAM 'touch {dir}/ran'; END $$",
            "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO ''{dir}/ran'''; END $$",
            "WITH x AS (SELECT lo_export(1, '{dir}/ran')) SELECT * FROM x",
            "CREATE VIEW v AS SELECT lo_export(1, '{dir}/ran')",
        ],
    )
    def test_server_programs_and_files(
        self, pg_db: PgDatabase, tmp_path: Path, server_dir: Path, statement: str
    ) -> None:
        pg_db.execute(ROWS)
        report = validate_sql(
            pg_db, "DELETE FROM t;\n" + statement.format(dir=server_dir) + ";\n", tmp_path
        )
        assert report.verdict is Verdict.REJECTED
        assert _rules(report) == ["side-effect"]
        assert report.findings[0].statement == 2
        assert not any(s.executed for s in report.statements)
        assert not (server_dir / "ran").exists()
        assert pg_db.scalar("SELECT count(*) FROM t") == 100

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT pg_terminate_backend({pid})",
            "SELECT pg_cancel_backend({pid})",
            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {pid}",
            "DO $$ BEGIN PERFORM pg_terminate_backend({pid}); END $$",
            "DO $$ DECLARE ok bool := pg_terminate_backend({pid}); BEGIN END $$",
            "UPDATE t SET v = pg_terminate_backend({pid})::text WHERE id = 1",
        ],
    )
    def test_other_sessions(self, pg_db: PgDatabase, tmp_path: Path, statement: str) -> None:
        pg_db.execute(ROWS)
        with pg_db.connect() as victim:
            pid = victim.info.backend_pid
            report = validate_sql(pg_db, statement.format(pid=pid) + ";", tmp_path)
            assert report.verdict is Verdict.REJECTED
            assert _rules(report) == ["side-effect"]
            assert victim.execute("SELECT 1").fetchone() == (1,)

    @pytest.mark.parametrize(
        "statement",
        [
            "SELECT pg_reload_conf()",
            "SELECT pg_rotate_logfile()",
            "SELECT pg_switch_wal()",
            "SELECT pg_create_restore_point('pgparity-test')",
            "SELECT pg_create_physical_replication_slot('pgparity_test_slot')",
            "SELECT pg_stat_reset()",
            "SELECT pg_stat_reset_shared('bgwriter')",
            "SELECT pg_advisory_lock(42)",
            "SELECT pg_try_advisory_lock(42)",
            "LOAD 'auto_explain'",
        ],
    )
    def test_server_state(self, pg_db: PgDatabase, tmp_path: Path, statement: str) -> None:
        before = pg_db.scalar("SELECT pg_current_wal_lsn()::text")
        report = validate_sql(pg_db, statement + ";", tmp_path)
        assert report.verdict is Verdict.REJECTED
        assert _rules(report) == ["side-effect"]
        assert (
            pg_db.scalar(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgparity_test_slot'"
            )
            == 0
        )
        assert before is not None

    def test_dblink_in_every_form(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        pg_db.execute(ROWS + "CREATE SCHEMA ext; CREATE EXTENSION dblink SCHEMA ext;")
        dsn = pg_db.dsn.replace("'", "''")
        for statement in (
            f"SELECT ext.dblink_exec('{dsn}', 'DELETE FROM t')",
            f"SELECT * FROM ext.dblink('{dsn}', 'DELETE FROM t RETURNING id') AS d(id int)",
            f"SELECT ext.dblink_connect('c', '{dsn}')",
            f"DO $$ BEGIN PERFORM ext.dblink_exec('{dsn.replace('$', '')}', 'DELETE FROM t'); "
            "END $$",
        ):
            report = validate_sql(pg_db, statement + ";", tmp_path)
            assert report.verdict is Verdict.REJECTED, statement
            assert _rules(report) == ["side-effect"], statement
        assert pg_db.scalar("SELECT count(*) FROM t") == 100

    def test_analyze_is_a_warning_and_its_statistics_are_listed(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_db.execute(ROWS)
        report = validate_sql(pg_db, "INSERT INTO t VALUES (1000, 'y');\nANALYZE t;", tmp_path)
        assert report.verdict is Verdict.VALIDATED
        warning = next(f for f in report.findings if f.rule == "side-effect")
        assert warning.severity is Severity.WARNING
        assert "ANALYZE" in warning.message
        listed = {e.object for e in report.side_effects if e.kind is SideEffectKind.STATISTICS}
        assert "public.t" in listed


@pytest.fixture
def foreign_table(pg_db: PgDatabase) -> str:
    """public.remote: a postgres_fdw table over public.t of the same database."""
    from psycopg import conninfo

    params = conninfo.conninfo_to_dict(pg_db.dsn)
    pg_db.execute(
        ROWS
        + "CREATE EXTENSION postgres_fdw;"
        + f"CREATE SERVER loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS "
        f"(host '{params['host']}', port '{params['port']}', dbname '{params['dbname']}');"
        + f"CREATE USER MAPPING FOR CURRENT_USER SERVER loop OPTIONS "
        f"(user '{params['user']}', password '{params['password']}');"
        + "CREATE FOREIGN TABLE remote (id int, v text) SERVER loop "
        "OPTIONS (schema_name 'public', table_name 't');"
    )
    return "public.remote"


class TestForeignTables:
    @pytest.mark.parametrize(
        "statement",
        [
            "INSERT INTO remote VALUES (1000, 'y')",
            "UPDATE remote SET v = 'y'",
            "DELETE FROM public.remote",
            "WITH d AS (DELETE FROM remote RETURNING id) SELECT count(*) FROM d",
            "DO $$ BEGIN DELETE FROM remote; END $$",
        ],
    )
    def test_writes_are_refused_before_they_run(
        self, pg_db: PgDatabase, tmp_path: Path, foreign_table: str, statement: str
    ) -> None:
        report = validate_sql(pg_db, f"SELECT 1;\n{statement};\nSELECT 2;", tmp_path)
        assert report.verdict is Verdict.REJECTED
        refused = report.statements[1]
        assert refused.executed is False
        assert "foreign table public.remote" in (refused.not_executed_reason or "")
        assert "side-effect" in _rules(report)
        assert report.statements[2].executed is False
        assert pg_db.scalar("SELECT count(*) FROM t WHERE v = 'x'") == 100

    def test_a_foreign_table_the_migration_creates_itself(
        self, pg_db: PgDatabase, tmp_path: Path, foreign_table: str
    ) -> None:
        report = validate_sql(
            pg_db,
            "CREATE FOREIGN TABLE remote2 (id int, v text) SERVER loop "
            "OPTIONS (schema_name 'public', table_name 't');\n"
            "SET search_path = public;\n"
            "DELETE FROM remote2;",
            tmp_path,
        )
        assert report.verdict is Verdict.REJECTED
        assert report.statements[2].executed is False
        assert pg_db.scalar("SELECT count(*) FROM t") == 100

    def test_a_write_through_a_trigger_stops_the_run(
        self, pg_db: PgDatabase, tmp_path: Path, foreign_table: str
    ) -> None:
        pg_db.execute(
            "CREATE TABLE local (id int);"
            "CREATE FUNCTION forward() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN INSERT INTO remote VALUES (NEW.id, 'via trigger'); RETURN NEW; END $$;"
            "CREATE TRIGGER forward AFTER INSERT ON local FOR EACH ROW EXECUTE FUNCTION forward();"
        )
        report = validate_sql(
            pg_db, "INSERT INTO local VALUES (5000);\nSELECT 1;", tmp_path, check_rerun=False
        )
        assert report.verdict is Verdict.REJECTED
        assert "side-effect" in _rules(report)
        assert report.statements[1].executed is False
        # postgres_fdw's remote transaction rolled back with the local one.
        assert pg_db.scalar("SELECT count(*) FROM t") == 100


class TestSequences:
    """nextval/setval survive ROLLBACK and the migration runs up to three times."""

    SETUP = ROWS + (
        "CREATE SEQUENCE s START 10; SELECT nextval('s');"
        "CREATE TABLE serial_rows (id serial PRIMARY KEY, v text);"
        "CREATE TABLE identity_rows (id int GENERATED ALWAYS AS IDENTITY, v text);"
        "CREATE SEQUENCE never_called;"
    )

    @pytest.mark.parametrize(
        "migration",
        [
            "SELECT nextval('s');\nSELECT nextval('s');",
            "SELECT setval('s', 5000);",
            "SELECT setval('never_called', 77);",
            "INSERT INTO serial_rows (v) SELECT 'r' FROM generate_series(1, 50);",
            "INSERT INTO identity_rows (v) VALUES ('a'), ('b');",
            "DO $$ BEGIN PERFORM nextval('s'); END $$;",
            "ALTER TABLE t ADD COLUMN n int DEFAULT nextval('s');",
        ],
    )
    def test_put_back_on_a_clone(self, pg_db: PgDatabase, tmp_path: Path, migration: str) -> None:
        pg_db.execute(self.SETUP)
        values = (
            "SELECT array[(SELECT last_value || ':' || is_called FROM s), "
            "(SELECT last_value || ':' || is_called FROM serial_rows_id_seq), "
            "(SELECT last_value || ':' || is_called FROM identity_rows_id_seq), "
            "(SELECT last_value || ':' || is_called FROM never_called)]::text"
        )
        before = pg_db.scalar(values)
        report = validate_sql(pg_db, migration, tmp_path)
        assert report.verdict is Verdict.VALIDATED, report.findings
        assert pg_db.scalar(values) == before
        moved = [e for e in report.side_effects if e.kind is SideEffectKind.SEQUENCE]
        assert moved
        assert all(e.restored for e in moved)
        assert "side-effect-left" not in _rules(report)

    def test_reported_on_a_target_that_is_not_a_clone(
        self, pg_plain_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute(self.SETUP)
        report = validate_sql(pg_plain_db, "SELECT nextval('s');", tmp_path)
        assert report.verdict is Verdict.VALIDATED
        moved = [e for e in report.side_effects if e.kind is SideEffectKind.SEQUENCE]
        assert [(e.object, e.restored) for e in moved] == [("public.s", False)]
        warning = next(f for f in report.findings if f.rule == "side-effect-left")
        assert "public.s" in warning.message
        assert pg_plain_db.scalar("SELECT last_value FROM s") > 10

    def test_not_put_back_under_traffic_that_commits(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        """Committed traffic wrote rows that use the sequence's values: rewinding it would
        hand them out again."""
        pg_db.execute(self.SETUP)
        report = validate_sql(
            pg_db,
            "SELECT pg_sleep(0.2);",
            tmp_path,
            observation=committing_traffic("INSERT INTO serial_rows (v) VALUES ('traffic')"),
        )
        moved = [e for e in report.side_effects if e.kind is SideEffectKind.SEQUENCE]
        assert moved
        assert not any(e.restored for e in moved)
        rows = pg_db.scalar("SELECT count(*) FROM serial_rows")
        assert pg_db.scalar("SELECT last_value FROM serial_rows_id_seq") == rows


class TestResidueOfOpaqueFunctions:
    """Functions that already exist in the database are not looked into; what they leave is
    found after the run, put back where pgparity may, and reported."""

    def test_a_session_advisory_lock_is_released_and_reported(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_db.execute(
            "CREATE FUNCTION grab() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_lock(7) $$"
        )
        report = validate_sql(pg_db, "SELECT grab();", tmp_path)
        left = [e for e in report.side_effects if e.kind is SideEffectKind.ADVISORY_LOCK]
        assert len(left) == 1
        assert left[0].restored
        assert "side-effect-left" in _rules(report)
        with pg_db.connect() as other:
            assert other.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (True,)

    def test_a_replication_slot_is_dropped_on_a_clone_and_reported(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_db.execute(
            "CREATE FUNCTION slot() RETURNS void LANGUAGE sql AS "
            "$$ SELECT pg_create_physical_replication_slot('pgparity_opaque_slot') $$"
        )
        report = validate_sql(pg_db, "SELECT slot();", tmp_path, check_rerun=False)
        slots = [e for e in report.side_effects if e.kind is SideEffectKind.REPLICATION_SLOT]
        assert [(e.object, e.restored) for e in slots] == [("pgparity_opaque_slot", True)]
        finding = next(f for f in report.findings if f.rule == "side-effect-left")
        assert "pgparity_opaque_slot" in finding.message
        assert (
            pg_db.scalar(
                "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pgparity_opaque_slot'"
            )
            == 0
        )

    def test_a_replication_slot_left_on_a_target_that_is_not_a_clone_rejects(
        self, pg_plain_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute(
            "CREATE FUNCTION slot() RETURNS void LANGUAGE sql AS "
            "$$ SELECT pg_create_physical_replication_slot('pgparity_plain_slot') $$"
        )
        try:
            report = validate_sql(pg_plain_db, "SELECT slot();", tmp_path, check_rerun=False)
            assert report.verdict is Verdict.REJECTED
            finding = next(f for f in report.findings if f.rule == "side-effect-left")
            assert finding.severity is Severity.ERROR
        finally:
            with psycopg.connect(pg_plain_db.dsn, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                    "WHERE slot_name = 'pgparity_plain_slot'"
                )

    def test_statistics_changed_in_place_are_listed(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_db.execute(ROWS)
        report = validate_sql(pg_db, "CREATE INDEX t_v ON t (v);", tmp_path)
        assert report.verdict is Verdict.VALIDATED
        stats = [e for e in report.side_effects if e.kind is SideEffectKind.STATISTICS]
        assert "public.t" in {e.object for e in stats}
        assert report.to_dict()["side_effects"]
