"""Issue 9, part A: every example of the issue, exactly as reported, against a real target.

Each test here failed on main at 5849443 (the issue's commit) and passes now; the test classes
per cause (test_statement_boundaries, test_side_effects, test_measurement_isolation,
test_interruption, test_observation_gaps) try many more variants of the same causes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from fix_pg import (
    PgDatabase,
    Unprivileged,
    run_pgparity,
    start_pgparity,
    table_t,
    validate_sql,
    wait_for_progress,
)
from pgparity.models.report import Verdict

ROWS = table_t(100)


def _validate(
    db: PgDatabase, tmp_path: Path, migration: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "m.sql"
    path.write_text(migration)
    return run_pgparity(
        "validate", "--migration", str(path), "--dsn", db.dsn, "--quiet", "--format", "json", *extra
    )


def _explain_file(tmp_path: Path, body: str) -> str:
    path = tmp_path / "explain.yaml"
    path.write_text(body)
    return str(path)


def test_explain_query_with_a_second_statement_deletes_nothing(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(ROWS)
    explain = _explain_file(tmp_path, "- name: sneaky\n  sql: SELECT 1; DELETE FROM t\n")
    result = _validate(pg_db, tmp_path, "ALTER TABLE t ADD COLUMN w int;\n", "--explain", explain)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "sneaky" in result.stderr
    assert pg_db.scalar("SELECT count(*) FROM t") == 100


def test_explain_analyze_of_dml_commits_nothing(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(ROWS)
    explain = _explain_file(
        tmp_path, "analyze: true\nqueries:\n  - name: purge\n    sql: DELETE FROM t WHERE id > 10\n"
    )
    result = _validate(pg_db, tmp_path, "ALTER TABLE t ADD COLUMN w int;\n", "--explain", explain)
    assert result.returncode == 0, result.stdout + result.stderr
    assert pg_db.scalar("SELECT count(*) FROM t") == 100


def test_explain_query_with_commit_cannot_commit_the_migration(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(ROWS)
    explain = _explain_file(tmp_path, "- name: committer\n  sql: SELECT 1; COMMIT\n")
    result = _validate(
        pg_db, tmp_path, "CREATE TABLE escaped (a int);\nDELETE FROM t;\n", "--explain", explain
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert pg_db.scalar("SELECT to_regclass('escaped')") is None
    assert pg_db.scalar("SELECT count(*) FROM t") == 100


def test_standard_conforming_strings_off_cannot_split_a_statement(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(ROWS)
    report = validate_sql(
        pg_db,
        "DELETE FROM t;\n"
        "SET standard_conforming_strings = off;\n"
        "SELECT 'a\\', 'b; COMMIT; SELECT 1 --';\n",
        tmp_path,
    )
    assert report.verdict is Verdict.REJECTED
    assert pg_db.scalar("SELECT count(*) FROM t") == 100


def test_sequences_advanced_by_the_dry_run_are_put_back_on_a_clone(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(ROWS + "CREATE SEQUENCE s; SELECT nextval('s');")
    validate_sql(pg_db, "SELECT nextval('s');\nSELECT nextval('s');\n", tmp_path)
    assert pg_db.scalar("SELECT last_value FROM s") == 1


def test_copy_to_program_never_runs(
    pg_db: PgDatabase, tmp_path: Path, server_writable_dir: Path
) -> None:
    marker = server_writable_dir / "ran"
    report = validate_sql(pg_db, f"COPY (SELECT 1) TO PROGRAM 'touch {marker}';\n", tmp_path)
    assert report.verdict is Verdict.REJECTED
    assert not marker.exists()


def test_lo_export_never_writes_a_server_file(
    pg_db: PgDatabase, tmp_path: Path, server_writable_dir: Path
) -> None:
    target = server_writable_dir / "exported"
    report = validate_sql(
        pg_db,
        f"SELECT lo_from_bytea(4242, 'secret');\nSELECT lo_export(4242, '{target}');\n",
        tmp_path,
    )
    assert report.verdict is Verdict.REJECTED
    assert not target.exists()


def test_terminating_other_sessions_is_refused(pg_db: PgDatabase, tmp_path: Path) -> None:
    with pg_db.connect() as victim:
        pid = victim.info.backend_pid
        report = validate_sql(pg_db, f"SELECT pg_terminate_backend({pid});\n", tmp_path)
        assert report.verdict is Verdict.REJECTED
        assert victim.execute("SELECT 1").fetchone() == (1,)


def test_dblink_writes_are_refused(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(ROWS + "CREATE EXTENSION dblink;")
    report = validate_sql(
        pg_db,
        f"SELECT dblink_exec({pg_db.dsn!r}, 'DELETE FROM t');\n".replace('"', "'"),
        tmp_path,
    )
    assert report.verdict is Verdict.REJECTED
    assert pg_db.scalar("SELECT count(*) FROM t") == 100


def test_shadowed_wal_function_cannot_spoof_the_wal_figures(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(ROWS)
    report = validate_sql(
        pg_db,
        "CREATE FUNCTION public.pg_current_wal_insert_lsn() RETURNS pg_lsn LANGUAGE sql "
        "AS $$ SELECT '0/0'::pg_lsn $$;\n"
        "SET search_path = public, pg_catalog;\n"
        "UPDATE t SET v = repeat('y', 500);\n",
        tmp_path,
    )
    update = report.statements[2]
    assert update.executed
    assert update.error is None
    assert update.wal_bytes is not None
    assert update.wal_bytes > 40_000


def test_sigterm_on_a_real_target_cancels_rolls_back_and_exits_130(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    pg_db.execute(ROWS)
    path = tmp_path / "slow.sql"
    path.write_text("ALTER TABLE t ADD COLUMN w int;\nSELECT pg_sleep(30);\n")
    process = start_pgparity("validate", "--migration", str(path), "--dsn", pg_db.dsn)
    wait_for_progress(process, "statement 2 (line 2)")
    # Interrupt while the server runs the sleep (not while the client is between statements).
    deadline = time.monotonic() + 30
    while not pg_db.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgparity%' "
        "AND state = 'active' AND query LIKE 'SELECT pg_sleep(30)%'"
    ):
        assert time.monotonic() < deadline, "the migration's sleep never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 130, rest
    assert "interrupted; cleaned up" in rest
    deadline = time.monotonic() + 2
    while pg_db.scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE a.application_name LIKE 'pgparity%' AND l.relation = 't'::regclass"
    ):
        assert time.monotonic() < deadline, "the target still holds pgparity's lock"
        time.sleep(0.05)


def test_an_unprivileged_observer_does_not_report_zero_lag(
    tmp_path: Path, pg_unprivileged: Unprivileged
) -> None:
    path = tmp_path / "m.sql"
    path.write_text("UPDATE t SET v = repeat('z', 1000);\nSELECT pg_sleep(0.3);\n")
    result = run_pgparity(
        "validate",
        "--migration",
        str(path),
        "--dsn",
        pg_unprivileged.dsn,
        "--format",
        "json",
        "--quiet",
    )
    report = json.loads(result.stdout)
    assert report["observations"]["max_replication_lag_bytes"] is None
    assert "observation-incomplete" in [f["rule"] for f in report["findings"]]
