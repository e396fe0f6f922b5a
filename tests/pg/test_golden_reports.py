"""Golden reports: the JSON report (version 1) stays byte-compatible, scenario by scenario.

Each scenario runs ``pgparity validate --format json`` for real — a fresh database of the session
cluster, a migration, flags, files — and compares the report with ``tests/golden/NAME.json``
byte for byte, after normalising only what varies from run to run: timings, WAL sizes and
counts become ``<int>``/``<float>`` (their type and null-ness still compared), numbers with a
unit inside findings' messages become ``N``, a statement nothing was seen blocking is ``<quiet>`` (a
fast statement may fall between two samples), the locks sampled during a rehearsal outside the
transaction are ``<sampled>``, a run's cache state (warm or cold, issue 13) is ``<cached>``, and
blocking edges are sorted.

``PGPARITY_WRITE_GOLDEN=1 pytest tests/pg/test_golden_reports.py`` writes the files anew; they
were first written by the code before the report became typed (issue 12), so a difference is a
change of the contract, not of its implementation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from fix_pg import PgDatabase

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
WRITE = os.environ.get("PGPARITY_WRITE_GOLDEN") == "1"

T_ROWS = (
    "CREATE TABLE t (id int PRIMARY KEY, v text);"
    "INSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g;"
)

READS = (
    "clients: 2\nrate: 20\nwarmup: 500ms\ncooldown: 200ms\n"
    "statements:\n  - name: read by key\n    sql: SELECT v FROM t WHERE id = %(id)s\n"
    "    params:\n      id: {intRange: [1, 1000]}\n"
)


@dataclass(frozen=True)
class Scenario:
    name: str
    migration: str
    setup: tuple[str, ...] = (T_ROWS,)
    args: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    clone: bool = True
    replica: bool = True
    unprivileged: bool = False
    exit_code: int = 0


SCENARIOS = (
    Scenario(
        "validated",
        "CREATE TABLE IF NOT EXISTS audit (id bigint PRIMARY KEY, at timestamptz);\n"
        "ALTER TABLE t ADD COLUMN note text;\n",
    ),
    Scenario(
        "outside_and_compensation",
        "CREATE INDEX CONCURRENTLY t_v ON t (v);\nCREATE UNIQUE INDEX CONCURRENTLY d_k ON d (k);\n",
        setup=(T_ROWS, "CREATE TABLE d (id int, k int); INSERT INTO d VALUES (1, 1), (2, 1);"),
        exit_code=1,
    ),
    Scenario(
        "not_a_clone",
        "ALTER TABLE t ADD COLUMN w int;\nCREATE INDEX CONCURRENTLY t_w ON t (w);\n",
        clone=False,
        replica=False,
    ),
    Scenario(
        "static_rejections",
        "SELECT 1;\nCOMMIT;\nSELECT pg_terminate_backend(1);\n"
        "SET standard_conforming_strings = off;\n",
        exit_code=1,
    ),
    Scenario("syntax_error", "CREATE TABLE x (id int;\n", exit_code=1),
    Scenario(
        "wrapped_concurrently",
        "BEGIN;\nCREATE INDEX CONCURRENTLY t_v ON t (v);\nCOMMIT;\n",
        exit_code=1,
    ),
    Scenario(
        "schema_drift",
        "ALTER TABLE t ADD COLUMN w int;\n",
        args=("--expect-digest", "sha256:" + "0" * 64),
        exit_code=3,
    ),
    Scenario(
        "seed_incomplete",
        "ALTER TABLE t ADD COLUMN w int;\n",
        setup=(
            T_ROWS,
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET pgparity.seed_state = %L', "
            "current_database(), 'incomplete'); END $$;",
        ),
        exit_code=1,
    ),
    Scenario(
        "timeouts_and_errors",
        "UPDATE t SET v = 'y' WHERE id < 10;\nSELECT pg_sleep(2);\n"
        "ALTER TABLE t ADD COLUMN z int;\nCREATE INDEX CONCURRENTLY t_z ON t (z);\n",
        args=("--statement-timeout", "300ms"),
        exit_code=1,
    ),
    Scenario(
        "lock_timeout_hold",
        "ALTER TABLE t ADD COLUMN w int;\n",
        args=("--hold-lock", "t:2", "--lock-timeout", "300ms"),
        exit_code=1,
    ),
    Scenario(
        "traffic_budgets",
        "ALTER TABLE t ADD COLUMN w int;\n",
        args=(
            "--traffic",
            "workload.yaml",
            "--hold-lock",
            "t:1.5",
            "--max-lock-wait",
            "100ms",
            "--max-blocked-sessions",
            "0",
        ),
        files={"workload.yaml": READS},
        exit_code=1,
    ),
    Scenario(
        "traffic_blocked",
        "ALTER TABLE t ADD COLUMN w int;\n",
        args=("--traffic", "reads.yaml", "--hold-lock", "t:1.5"),
        files={"reads.yaml": READS},
    ),
    Scenario(
        "traffic_errors",
        "ALTER TABLE t ADD COLUMN w int;\n",
        setup=(
            T_ROWS,
            "CREATE FUNCTION impatient(key int) RETURNS text LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM set_config('lock_timeout', '50ms', true); "
            "RETURN (SELECT v FROM t WHERE id = key); END $$;",
        ),
        args=("--traffic", "impatient.yaml", "--hold-lock", "t:1.5"),
        files={"impatient.yaml": READS.replace("v FROM t WHERE id = %(id)s", "impatient(%(id)s)")},
    ),
    Scenario(
        "opaque_functions",
        "SELECT slot();\nSELECT lexer();\nSELECT 1;\n",
        setup=(
            T_ROWS,
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = 'golden_opaque_slot';"
            "CREATE FUNCTION slot() RETURNS void LANGUAGE sql AS "
            "$$ SELECT pg_create_physical_replication_slot('golden_opaque_slot') $$;"
            "CREATE FUNCTION lexer() RETURNS void LANGUAGE sql AS "
            "$$ SELECT set_config('standard_conforming_strings', 'off', false) $$;",
        ),
        args=("--no-rerun-check",),
        exit_code=1,
    ),
    Scenario(
        "observation_gaps",
        "UPDATE t SET v = 'z' WHERE id = 1;\n",
        args=("--max-replication-lag", "64MB"),
        replica=False,
        unprivileged=True,
        exit_code=1,
    ),
    Scenario(
        "side_effects_and_plans",
        "SELECT nextval('s');\nSELECT grab();\nDROP INDEX t_v_idx;\nANALYZE t;\n",
        setup=(
            T_ROWS,
            "CREATE INDEX t_v_idx ON t (v); CREATE SEQUENCE s START 10;"
            "CREATE FUNCTION grab() RETURNS void LANGUAGE sql AS "
            "$$ SELECT pg_advisory_lock(7) $$;",
        ),
        args=("--explain", "explain.yaml"),
        files={
            "explain.yaml": "queries:\n  - name: by_v\n    sql: SELECT * FROM t WHERE v = '5'\n"
            "    usesIndex: t_v_idx\n"
        },
        exit_code=1,
    ),
    Scenario(
        "strict_rewrite",
        "ALTER TABLE t ALTER COLUMN id TYPE bigint;\n",
        args=("--strict",),
        exit_code=1,
    ),
)

# Numbers that vary from run to run: their type (and whether they are null) is compared.
VARYING = {
    "duration_ms",
    "wal_bytes",
    "held_ms",
    "total_duration_ms",
    "max_lock_hold_ms",
    "max_lock_wait_seconds",
    "own_lock_wait_seconds",
    "migration_lock_wait_seconds",
    "max_replication_lag_bytes",
    "max_replication_lag_seconds",
    "replica_catchup_seconds",
    "samples",
    "migration_window_seconds",
    "max_wait_seconds",
    "sessions",
    "max_blocked_sessions",
    "transactions",
    "transactions_ok",
    "count",
    "total_cost",
    "statement_ms",  # lint evidence (issue 18): the statement's own time under its lock
    "blocked_sessions",
    # margins (issue 13): the runs' spread, buffer counts
    "min_ms",
    "median_ms",
    "max_ms",
    "measured_ms",
    "hit",
    "read",
    "hit_ratio",
}
# Whether a run found its blocks in shared buffers (warm) or read them in (cold) varies;
# that it read blocks at all ("none" or null otherwise) does not.
CACHED = {"warm", "cold"}
# Values whose very presence varies (a percentile of no transaction is null).
ANY_VALUE = {"p50_ms", "p95_ms", "p99_ms"}
# Lint evidence's sessions blocked behind a statement: null when the observer did not sample
# the statement (a quick one usually ends between samples), 0 when it did and nobody waited —
# which of the two depends on the machine's load; a count above 0 does not.
QUIET_OR_COUNT = "blocked_sessions"
# A statement's headroom (issue 13): fractions of each budget. Those of the budgets the observer
# measures are null for a statement it did not sample (the one that is "<quiet>").
OBSERVED_FRACTIONS = {"lock_timeout", "lock_wait_budget", "replication_lag_budget"}
_UNIT = re.compile(r"\b\d+(\.\d+)?(?= ?(ms|s|kB|MB|GB|TB|B|bytes|sessions)\b|×)")
COUNTS = {"errors", "errors_during_migration"}  # traffic errors by SQLSTATE: how many varies


def normalise(value: Any, key: str = "") -> Any:
    if key in ANY_VALUE:
        return "<varies>"
    if key == QUIET_OR_COUNT and not value:
        return "<quiet>"
    if key in VARYING and isinstance(value, int | float) and not isinstance(value, bool):
        return f"<{type(value).__name__}>"
    if key == "cache" and isinstance(value, str) and value in CACHED:
        return "<cached>"
    if isinstance(value, str) and key in ("message", "reason"):
        return _UNIT.sub("N", value)
    if isinstance(value, list):
        items = [normalise(item, key) for item in value]
        return sorted(items, key=json.dumps) if key == "blocking" else items
    if isinstance(value, dict) and key == "headroom":
        return {k: _fraction(k, v) for k, v in value.items()}
    if isinstance(value, dict) and key in COUNTS:
        return {k: f"<{type(v).__name__}>" for k, v in value.items()}
    if isinstance(value, dict):
        return {k: _normalise_member(value, k) for k in value}
    return value


def _normalise_member(parent: dict[str, Any], key: str) -> Any:
    value = parent[key]
    if key == "observed" and (value is None or _quiet(value)):
        return "<quiet>"
    if key == "locks" and parent.get("phase") == "outside-transaction":
        return "<sampled>"
    return normalise(value, key)


def _fraction(budget: str, fraction: float | None) -> Any:
    if budget in OBSERVED_FRACTIONS:
        return "<varies>"
    return fraction if fraction is None else f"<{type(fraction).__name__}>"


def _quiet(observed: dict[str, Any]) -> bool:
    return not observed.get("blocking") and not observed.get("max_blocked_sessions")


def golden_text(report: dict[str, Any]) -> str:
    return json.dumps(normalise(report), indent=2, ensure_ascii=False) + "\n"


def _database(pg_db: PgDatabase, plain: PgDatabase, scenario: Scenario) -> PgDatabase:
    db = pg_db if scenario.clone else plain
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        for statement in scenario.setup:
            conn.execute(statement.encode())
        conn.execute("VACUUM ANALYZE")  # no autovacuum may change statistics during the run
    db.cluster.wait_replay()
    return db


def _unprivileged_dsn(db: PgDatabase) -> str:
    role = f"golden_{db.name}"
    with psycopg.connect(db.cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(f"pw-{role}")
            )
        )
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE t OWNER TO {}").format(sql.Identifier(role)))
    return conninfo.make_conninfo(db.dsn, user=role, password=f"pw-{role}")


def _drop_role(db: PgDatabase) -> None:
    role = sql.Identifier(f"golden_{db.name}")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(role))
    with psycopg.connect(db.cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(role))


def _run(scenario: Scenario, db: PgDatabase, workdir: Path) -> subprocess.CompletedProcess[str]:
    (workdir / "migration.sql").write_text(scenario.migration, encoding="utf-8")
    for name, text in scenario.files.items():
        (workdir / name).write_text(text, encoding="utf-8")
    dsn = _unprivileged_dsn(db) if scenario.unprivileged else db.dsn
    replica = ("--replica-dsn", db.replica_dsn) if scenario.replica else ()
    command = [sys.executable, "-m", "pgparity", "validate", "--migration", "migration.sql"]
    command += ["--dsn", dsn, *replica, *scenario.args, "--format", "json"]
    command += ["--output", "report.json", "--quiet"]
    return subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_report_matches_its_golden_file(
    scenario: Scenario, pg_db: PgDatabase, pg_plain_db: PgDatabase, tmp_path: Path
) -> None:
    db = _database(pg_db, pg_plain_db, scenario)
    try:
        result = _run(scenario, db, tmp_path)
    finally:
        if scenario.unprivileged:
            _drop_role(db)
    assert result.returncode == scenario.exit_code, result.stderr
    text = golden_text(json.loads((tmp_path / "report.json").read_text(encoding="utf-8")))
    path = GOLDEN / f"{scenario.name}.json"
    if WRITE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
