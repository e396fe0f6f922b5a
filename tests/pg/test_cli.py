"""The `pgparity` command end to end: exit codes, one-line errors, no passwords, formats."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psycopg
import pytest
from psycopg import conninfo

from fix_pg import PgDatabase, postgres_processes_under, start_local_validation
from pgparity.pg.localcluster import LocalCluster, free_port

PGPARITY = [sys.executable, "-m", "pgparity"]


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PGPARITY, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _password(dsn: str) -> str:
    return str(conninfo.conninfo_to_dict(dsn)["password"])


def _assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, *needles: str
) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgparity: error:"), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""


@pytest.fixture
def migration(tmp_path: Path) -> Path:
    path = tmp_path / "m.sql"
    path.write_text("CREATE TABLE cli_table (id int);\n")
    return path


def test_validate_exit_codes_and_json_report(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 1000);")
    good = tmp_path / "good.sql"
    good.write_text("ALTER TABLE t ADD COLUMN b int;\n")
    bad = tmp_path / "bad.sql"
    bad.write_text("ALTER TABLE t ADD COLUMN b int;\nALTER TABLE nope ADD c int;\n")
    ok = run(
        "validate", "--migration", str(good), "--dsn", pg_db.dsn, "--format", "json", "--quiet"
    )
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["version"] == 1
    assert report["verdict"] == "VALIDATED"
    statement = report["statements"][0]
    for key in (
        "index",
        "line",
        "sql",
        "transactional",
        "executed",
        "duration_ms",
        "wal_bytes",
        "locks",
        "rewrites",
        "error",
    ):
        assert key in statement
    assert {"relation": "public.t", "mode": "AccessExclusiveLock"}.items() <= statement["locks"][
        0
    ].items()
    for key in ("server_version", "digest_before", "digest_after"):
        assert report["target"][key]
    assert report["settings"] == {"lock_timeout": "5s", "statement_timeout": "30s"}
    rejected = run("validate", "--migration", str(bad), "--dsn", pg_db.dsn, "--quiet")
    assert rejected.returncode == 1
    assert "REJECTED" in rejected.stdout
    assert "42P01" in rejected.stdout
    assert _password(pg_db.dsn) not in rejected.stdout + rejected.stderr


def test_markdown_and_junit_and_output_file(
    pg_db: PgDatabase, tmp_path: Path, migration: Path
) -> None:
    markdown = run(
        "validate",
        "--migration",
        str(migration),
        "--dsn",
        pg_db.dsn,
        "--format",
        "markdown",
        "--quiet",
    )
    assert markdown.returncode == 0
    assert markdown.stdout.startswith("### ✅ pgparity: VALIDATED")
    assert "| # | line | statement |" in markdown.stdout
    out = tmp_path / "report.xml"
    junit = run(
        "validate",
        "--migration",
        str(migration),
        "--dsn",
        pg_db.dsn,
        "--format",
        "junit",
        "--output",
        str(out),
        "--quiet",
    )
    assert junit.returncode == 0
    assert "report written to" in junit.stdout
    suite = ET.parse(out).getroot()
    assert suite.tag == "testsuite"
    assert len(suite.findall("testcase")) == 2  # the migration + one statement
    assert not list(tmp_path.glob(".report.xml.*"))  # no temporary left behind


def test_expect_digest_mismatch_stops_before_running(pg_db: PgDatabase, migration: Path) -> None:
    wrong = "sha256:" + "0" * 64
    result = run(
        "validate",
        "--migration",
        str(migration),
        "--dsn",
        pg_db.dsn,
        "--expect-digest",
        wrong,
        "--format",
        "json",
        "--quiet",
    )
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["findings"][0]["rule"] == "schema-drift"
    assert not any(s["executed"] for s in report["statements"])
    digest = run("digest", "--dsn", pg_db.dsn).stdout.strip()
    matching = run(
        "validate",
        "--migration",
        str(migration),
        "--dsn",
        pg_db.dsn,
        "--expect-digest",
        digest,
        "--quiet",
    )
    assert matching.returncode == 0, matching.stdout


def test_digest_and_drift(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE a (id int PRIMARY KEY)")
    baseline = tmp_path / "baseline.json"
    digest = run("digest", "--dsn", pg_db.dsn, "--save", str(baseline))
    assert digest.returncode == 0
    value = digest.stdout.strip()
    assert value.startswith("sha256:")
    assert baseline.is_file()
    same = run("drift", "--dsn", pg_db.dsn, "--expect", value)
    assert same.returncode == 0
    assert "no drift" in same.stdout
    pg_db.execute("ALTER TABLE a ADD COLUMN b int; CREATE TABLE c (x int);")
    drifted = run("drift", "--dsn", pg_db.dsn, "--baseline", str(baseline))
    assert drifted.returncode == 3
    assert "changed table public.a" in drifted.stdout
    assert "added table public.c" in drifted.stdout
    assert run("drift", "--dsn", pg_db.dsn, "--expect", value).returncode == 3


def test_digest_connection_is_read_only(pg_db: PgDatabase) -> None:
    from pgparity.pg.connection import connect

    with (
        connect(pg_db.dsn, read_only=True) as conn,
        pytest.raises(psycopg.errors.ReadOnlySqlTransaction),
    ):
        conn.execute("CREATE TABLE forbidden (a int)")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b"  \n\n", "is empty"),
        (b"SELECT '\xff\xfe';", "is not UTF-8"),
    ],
)
def test_bad_migration_files(
    pg_db: PgDatabase, tmp_path: Path, content: bytes | None, needle: str
) -> None:
    path = tmp_path / "m.sql"
    if content is not None:
        path.write_bytes(content)
    result = run("validate", "--migration", str(path), "--dsn", pg_db.dsn)
    _assert_one_line_error(result, 2, needle, str(path))


def test_bad_flags(pg_db: PgDatabase, migration: Path) -> None:
    cases = [
        (["--dsn", pg_db.dsn, "--lock-timeout", "5 parsecs"], "--lock-timeout"),
        (["--dsn", pg_db.dsn, "--statement-timeout", "soon"], "--statement-timeout"),
        (["--dsn", pg_db.dsn, "--expect-digest", "md5:abc"], "is not a schema digest"),
        (["--dsn", pg_db.dsn, "--local"], "not allowed with argument"),
        ([], "one of the arguments --dsn --local is required"),
        (["--dsn", "host=127.0.0.1 port=notaport"], "cannot parse DSN"),
        (["--dsn", "host=127.0.0.1 port"], "cannot parse DSN"),
        (["--local", "--replica-dsn", pg_db.replica_dsn], "--replica-dsn"),
    ]
    for extra, needle in cases:
        result = run("validate", "--migration", str(migration), *extra)
        assert result.returncode == 2, (extra, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert needle in result.stderr, (needle, result.stderr)
        assert "Traceback" not in result.stderr
        assert _password(pg_db.dsn) not in result.stderr


def test_unreachable_database_and_wrong_password(pg_db: PgDatabase, migration: Path) -> None:
    closed_port = free_port()
    unreachable = run(
        "validate",
        "--migration",
        str(migration),
        "--dsn",
        f"host=127.0.0.1 port={closed_port} dbname=x user=u password=hunter2",
    )
    _assert_one_line_error(unreachable, 4, "cannot connect to target", str(closed_port))
    assert "hunter2" not in unreachable.stderr
    wrong = conninfo.make_conninfo(pg_db.dsn, password="not-the-password-x9")
    result = run("validate", "--migration", str(migration), "--dsn", wrong)
    _assert_one_line_error(result, 4, "password authentication failed")
    assert "not-the-password-x9" not in result.stderr
    url = f"postgresql://pgparity:s3cr3t-url@127.0.0.1:{closed_port}/db"
    by_url = run("digest", "--dsn", url)
    _assert_one_line_error(by_url, 4)
    assert "s3cr3t-url" not in by_url.stderr


def test_replica_dsn_that_is_not_a_replica(pg_db: PgDatabase, migration: Path) -> None:
    as_primary = run(
        "validate", "--migration", str(migration), "--dsn", pg_db.dsn, "--replica-dsn", pg_db.dsn
    )
    _assert_one_line_error(as_primary, 2, "is not a replica", "not in recovery")
    with LocalCluster(durable=False, replicas=1) as other:
        foreign = run(
            "validate",
            "--migration",
            str(migration),
            "--dsn",
            pg_db.dsn,
            "--replica-dsn",
            other.replica_dsn or "",
        )
        _assert_one_line_error(foreign, 2, "is not a replica", "another cluster")
        assert _password(other.primary_dsn) not in foreign.stderr
    good = run(
        "validate",
        "--migration",
        str(migration),
        "--dsn",
        pg_db.dsn,
        "--replica-dsn",
        pg_db.replica_dsn,
        "--quiet",
    )
    assert good.returncode == 0, good.stderr
    assert "with streaming replica" in good.stdout


def test_replica_as_target_is_refused(pg_db: PgDatabase, migration: Path) -> None:
    result = run("validate", "--migration", str(migration), "--dsn", pg_db.replica_dsn)
    _assert_one_line_error(result, 2, "read-only replica")


def test_local_run_cleans_up_on_ctrl_c(tmp_path: Path, workdir: Path) -> None:
    slow = tmp_path / "slow.sql"
    slow.write_text("SELECT pg_sleep(20);\n")
    # Progress lines say when the migration's statement is running; interrupt then.
    process, seen = start_local_validation(slow, workdir)
    assert postgres_processes_under(workdir), seen
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130, seen + rest
    assert "interrupted" in rest
    assert "Traceback" not in rest
    assert postgres_processes_under(workdir) == []
    assert not list(workdir.glob("pgparity-cluster-*"))


def test_local_run_with_seed_sql(tmp_path: Path, workdir: Path) -> None:
    seed = tmp_path / "seed.sql"
    seed.write_text("CREATE TABLE s (id int);\nINSERT INTO s SELECT generate_series(1, 10);\n")
    migration = tmp_path / "m.sql"
    migration.write_text("ALTER TABLE s ALTER COLUMN id TYPE bigint;\n")
    env = {**os.environ, "PGPARITY_WORKDIR": str(workdir)}
    result = subprocess.run(
        [
            *PGPARITY,
            "validate",
            "--local",
            "--seed-sql",
            str(seed),
            "--migration",
            str(migration),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["target"]["is_clone"]
    assert report["target"]["replica"]
    assert report["statements"][0]["rewrites"] == ["public.s"]
    assert "pg_basebackup" in result.stderr  # progress was shown
    assert not list(workdir.glob("pgparity-cluster-*"))
    bad_seed = tmp_path / "bad_seed.sql"
    bad_seed.write_text("CREATE TABLE ok (a int);\nCREATE TABLE broken (;\n")
    failed = subprocess.run(
        [
            *PGPARITY,
            "validate",
            "--local",
            "--seed-sql",
            str(bad_seed),
            "--migration",
            str(migration),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    _assert_one_line_error(failed, 2, "seed SQL", "bad_seed.sql:2")
    assert not list(workdir.glob("pgparity-cluster-*"))


def test_bad_observation_flags(pg_db: PgDatabase, migration: Path, tmp_path: Path) -> None:
    broken_yaml = tmp_path / "broken.yaml"
    broken_yaml.write_text("statements: [\n")
    bad_field = tmp_path / "workload.yaml"
    bad_field.write_text("clients: 2\nstatements:\n  - sql: SELECT %(id)s\n")
    bad_explain = tmp_path / "explain.yaml"
    bad_explain.write_text("- name: q\n  uses_index: i\n")
    cases = [
        (["--traffic", str(tmp_path / "missing.yaml")], "does not exist"),
        (["--traffic", str(broken_yaml)], "is not valid YAML: line 2, column 1"),
        (["--traffic", str(bad_field)], "statements[0].params: no values for id"),
        (["--traffic", "auto", "--traffic-clients", "0"], "--traffic-clients"),
        (["--hold-lock", "orders"], "expected TABLE:SECONDS"),
        (["--explain", str(bad_explain)], "queries[0].sql: is required"),
        (["--max-replication-lag", "lots"], "--max-replication-lag"),
        (["--max-lock-wait", "0s"], "budgets must be positive"),
        (["--sample-period", "1h"], "--sample-period"),
    ]
    for extra, needle in cases:
        result = run("validate", "--migration", str(migration), "--dsn", pg_db.dsn, *extra)
        _assert_one_line_error(result, 2, needle)


def test_markdown_report_under_traffic(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL);"
        "INSERT INTO accounts SELECT g, 0 FROM generate_series(1, 5000) g;"
    )
    path = tmp_path / "m.sql"
    path.write_text("ALTER TABLE accounts ADD COLUMN note text;\nSELECT pg_sleep(0.5);\n")
    result = run(
        "validate",
        "--migration",
        str(path),
        "--dsn",
        pg_db.dsn,
        "--replica-dsn",
        pg_db.replica_dsn,
        "--traffic",
        "auto",
        "--traffic-clients",
        "2",
        "--hold-lock",
        "accounts:0.2",
        "--format",
        "markdown",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "**Under observation** (every 50 ms):" in result.stdout
    header = "| # | blocked sessions | longest wait (s) | own wait (s) | replica lag |"
    assert header in result.stdout
    assert "Traffic: 2 clients" in result.stdout
