"""Real PostgreSQL for the ``pg`` tier: one local primary + streaming replica per session.

The cluster is made by pgparity's own ``LocalCluster`` (the code ``--local`` uses), with
durability off for speed. Each test gets a fresh database, marked as a clone, so tests are
isolated without paying for a cluster each.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from pgparity.engine.evidence import EvidenceThresholds
from pgparity.engine.execute.dryrun import Timeouts
from pgparity.engine.margins import HeadroomPolicy
from pgparity.engine.observe.observation import ObservationOptions, TrafficPlan
from pgparity.engine.scale import ProductionSizes
from pgparity.engine.validate import MigrationFile, Target, ValidationOptions, validate
from pgparity.models.quantities import parse_duration
from pgparity.models.report import ValidationReport
from pgparity.models.workload import ExplainFile, Workload, WorkloadStatement
from pgparity.pg.clone import mark_clone, set_database_setting
from pgparity.pg.localcluster import LocalCluster

_counter = itertools.count(1)


@dataclass(frozen=True)
class PgDatabase:
    """A database on the session cluster, reachable on the primary and the replica."""

    name: str
    dsn: str
    replica_dsn: str
    cluster: LocalCluster

    # Rows are Any to the tests: each test knows what its own query returns.
    def connect(self, **kwargs: object) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(self.dsn, autocommit=True, **kwargs)  # type: ignore[arg-type]

    def execute(self, query: str) -> None:
        with self.connect() as conn:
            conn.execute(query.encode())

    def scalar(self, query: str) -> Any:
        with self.connect() as conn:
            row = conn.execute(query.encode()).fetchone()
            return row[0] if row else None


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(durable=False, replicas=1) as cluster:
        yield cluster


def _with_dbname(dsn: str, dbname: str) -> str:
    return conninfo.make_conninfo(dsn, dbname=dbname)


def _create_database(cluster: LocalCluster, clone: bool) -> PgDatabase:
    name = f"t{next(_counter)}"
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = PgDatabase(
        name=name,
        dsn=_with_dbname(cluster.primary_dsn, name),
        replica_dsn=_with_dbname(cluster.replica_dsn or "", name),
        cluster=cluster,
    )
    if clone:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            mark_clone(conn, f"test-{name}")
    cluster.wait_replay()  # the replica must know the database before tests connect to it
    return db


def completed_seed(
    cluster: LocalCluster, schema_and_rows: str, clone_name: str, **settings: str
) -> PgDatabase:
    """A database holding ``schema_and_rows``, marked as a clone whose seed completed (what
    ``pgparity snapshot`` requires), with further pgparity ``settings`` (``policy_sha256``, …)."""
    db = _create_database(cluster, clone=False)
    db.execute(schema_and_rows)
    with db.connect() as conn:
        mark_clone(conn, clone_name)
        set_database_setting(conn, "seed_state", "complete")
        for name, value in settings.items():
            set_database_setting(conn, name, value)
    return db


def _drop_database(cluster: LocalCluster, name: str) -> None:
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def pg_db(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    """A fresh database marked as a pgparity clone."""
    db = _create_database(pg_cluster, clone=True)
    yield db
    _drop_database(pg_cluster, db.name)


@pytest.fixture
def pg_plain_db(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    """A fresh database that is NOT marked as a clone (stands in for any other target)."""
    db = _create_database(pg_cluster, clone=False)
    yield db
    _drop_database(pg_cluster, db.name)


@pytest.fixture
def pg_target_db(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    """A second fresh unmarked database, for tests that copy from ``pg_plain_db`` into it."""
    db = _create_database(pg_cluster, clone=False)
    yield db
    _drop_database(pg_cluster, db.name)


@dataclass(frozen=True)
class Unprivileged:
    """A login role without pg_monitor that owns ``public.t`` of a test database."""

    role: str
    dsn: str
    replica_dsn: str


@pytest.fixture
def pg_unprivileged(pg_db: PgDatabase) -> Iterator[Unprivileged]:
    """``pg_db`` with ``table_t(1000)`` owned by a fresh role that has no pg_monitor."""
    role = f"observer_{pg_db.name}"
    with psycopg.connect(pg_db.cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(f"pw-{role}")
            )
        )
    pg_db.execute(table_t(1000) + f"ALTER TABLE t OWNER TO {role}")
    pg_db.cluster.wait_replay()
    yield Unprivileged(
        role=role,
        dsn=conninfo.make_conninfo(pg_db.dsn, user=role, password=f"pw-{role}"),
        replica_dsn=conninfo.make_conninfo(pg_db.replica_dsn, user=role, password=f"pw-{role}"),
    )
    pg_db.execute(f"DROP OWNED BY {role} CASCADE")
    with psycopg.connect(pg_db.cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def server_writable_dir() -> Iterator[Path]:
    """A directory the server's OS user may write to (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="pgparity-server-", dir="/tmp"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def committing_traffic(statement: str) -> ObservationOptions:
    """One client running ``statement`` 20 times a second, committing each (clones only)."""
    workload = Workload(
        statements=(WorkloadStatement(sql=statement),),
        clients=1,
        rate=20,
        commit=True,
        warmup="200ms",
    )
    return ObservationOptions(traffic=TrafficPlan(workload=workload))


def validate_sql(
    db: PgDatabase,
    text: str,
    tmp_path: object,
    *,
    lock_timeout: str = "5s",
    statement_timeout: str = "30s",
    strict: bool = False,
    expect_digest: str | None = None,
    replica: bool = True,
    check_rerun: bool = True,
    observation: ObservationOptions | None = None,
    explain: ExplainFile | None = None,
    evidence: EvidenceThresholds | None = None,
    headroom: HeadroomPolicy | None = None,
    repeat: int = 1,
    production: ProductionSizes | None = None,
) -> ValidationReport:
    """Write ``text`` to a migration file and validate it against ``db`` in-process."""
    from pathlib import Path

    path = Path(str(tmp_path)) / "migration.sql"
    path.write_text(text, encoding="utf-8")
    options = ValidationOptions(
        timeouts=Timeouts(parse_duration(lock_timeout), parse_duration(statement_timeout)),
        expect_digest=expect_digest,
        strict=strict,
        check_rerun=check_rerun,
        observation=observation or ObservationOptions(),
        explain=explain,
        evidence=evidence or EvidenceThresholds(),
        headroom=headroom or HeadroomPolicy(),
        repeat=repeat,
        production=production,
    )
    target = Target(db.dsn, db.replica_dsn if replica else None)
    return validate(MigrationFile.read(path), target, options)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory the unprivileged PostgreSQL user can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="pgparity-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def postgres_processes_under(directory: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "postgres" in line and str(directory) in line]


def start_local_validation(migration: Path, workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """``pgparity validate --local`` in ``workdir``, returned with the progress seen so far
    once the migration's first statement is running."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pgparity", "validate", "--local", "--migration", str(migration)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PGPARITY_WORKDIR": str(workdir)},
    )
    return process, "".join(wait_for_progress(process, "statement 1 (line 1)"))


# -- the command itself, as a user runs it -------------------------------------------------

PGPARITY = [sys.executable, "-m", "pgparity"]


def table_t(rows: int) -> str:
    """SQL for ``public.t (id int PRIMARY KEY, v text)`` with ``rows`` rows whose v is 'x'."""
    return (
        "CREATE TABLE t (id int PRIMARY KEY, v text);"
        f"INSERT INTO t SELECT g, 'x' FROM generate_series(1, {rows}) g;"
    )


def run_pgparity(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PGPARITY, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def start_pgparity(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PGPARITY, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_progress(process: subprocess.Popen[str], needle: str) -> list[str]:
    """Read the progress on stderr up to the line containing ``needle``; the lines read."""
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"no progress line with {needle!r}: {''.join(seen)}")
