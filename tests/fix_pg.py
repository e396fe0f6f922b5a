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

import psycopg
import pytest
from psycopg import conninfo, sql

from pgparity.engine.clone import mark_clone
from pgparity.engine.dryrun import Timeouts
from pgparity.engine.localcluster import LocalCluster
from pgparity.engine.observation import ObservationOptions
from pgparity.engine.validate import MigrationFile, Target, ValidationOptions, validate
from pgparity.models.quantities import parse_duration
from pgparity.models.report import ValidationReport
from pgparity.models.workload import ExplainFile

_counter = itertools.count(1)


@dataclass(frozen=True)
class PgDatabase:
    """A database on the session cluster, reachable on the primary and the replica."""

    name: str
    dsn: str
    replica_dsn: str
    cluster: LocalCluster

    def connect(self, **kwargs: object) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.dsn, autocommit=True, **kwargs)  # type: ignore[arg-type]

    def execute(self, query: str) -> None:
        with self.connect() as conn:
            conn.execute(query.encode())

    def scalar(self, query: str) -> object:
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
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "statement 1 (line 1)" in line:
            break
    return process, "".join(seen)
