"""``seed`` and ``restore`` never write into their source: the identity proof, failing closed.

One cluster (primary + streaming replica) listens on 127.0.0.1 and 127.0.0.2 (Linux routes all of
127/8 to lo) and on its Unix socket, so the same database can be reached by several addresses —
the way the old address comparison was fooled. Every refusal must leave the source's tables and
rows as they were and write no pgparity setting to it; the legitimate cases (another database of
the same cluster, a standby source seeding another database) must still seed.

These tests drive the CLI only, so they run against any pgparity version.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from pgparity.pg.localcluster import LocalCluster

PGPARITY = [sys.executable, "-m", "pgparity"]
READER, READER_PASSWORD = "reader", "reader-secret-pw"
POLICY = {
    "version": 1,
    "tables": {
        "public.accounts": {"columns": {"id": "keep", "owner": "keep"}},
        "public.events": {"columns": {"id": "keep", "account_id": "keep", "what": "keep"}},
    },
}
SOURCE_SQL = """
CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL);
CREATE TABLE events (id int PRIMARY KEY, account_id int REFERENCES accounts, what text);
INSERT INTO accounts SELECT g, 'owner ' || g FROM generate_series(1, 500) g;
INSERT INTO events SELECT g, 1 + g % 500, 'event ' || g FROM generate_series(1, 2000) g;
"""
_names = itertools.count(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    settings = {"listen_addresses": "127.0.0.1,127.0.0.2"}
    with LocalCluster(durable=False, replicas=1, settings=settings) as local:
        assert local.primary is not None
        hba = local.primary.datadir / "pg_hba.conf"
        with hba.open("a", encoding="utf-8") as handle:
            handle.write("host all all 127.0.0.2/32 scram-sha-256\n")
        with psycopg.connect(local.primary_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(READER), sql.Literal(READER_PASSWORD)
                )
            )
        yield local


@dataclass(frozen=True)
class Source:
    """A database with rows on the test cluster, and the ways to reach it."""

    cluster: LocalCluster
    name: str

    def dsn(self, via: str = "127.0.0.1", *, reader: bool = False, replica: bool = False) -> str:
        node = self.cluster.standbys[0] if replica else self.cluster.primary
        assert node is not None
        host = str(node.socket_dir) if via == "socket" else via
        base = self.cluster.replica_dsn if replica else self.cluster.primary_dsn
        assert base is not None
        extra = {"user": READER, "password": READER_PASSWORD} if reader else {}
        return conninfo.make_conninfo(base, host=host, dbname=self.name, **extra)

    def state(self) -> tuple[dict[str, Any], list[str]]:
        """Each table's row count and content hash, and pgparity's settings on the database."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            tables = conn.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' "
                "AND relnamespace = 'public'::regnamespace ORDER BY relname"
            ).fetchall()
            counts = {
                str(name): conn.execute(
                    sql.SQL("SELECT count(*), sum(hashtext(t::text)) FROM {} t").format(
                        sql.Identifier(name)
                    )
                ).fetchone()
                for (name,) in tables
            }
            settings = conn.execute(
                "SELECT c FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, "
                "unnest(s.setconfig) c WHERE d.datname = current_database() ORDER BY c"
            ).fetchall()
        return counts, [str(row[0]) for row in settings]


def _create(cluster: LocalCluster, *, rows: bool = True, marked: bool = False) -> Source:
    name = f"ident{next(_names)}"
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    source = Source(cluster, name)
    with psycopg.connect(source.dsn(), autocommit=True) as conn:
        if rows:
            conn.execute(SOURCE_SQL)
            conn.execute(
                sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                    sql.Identifier(READER)
                )
            )
        # Managed services often do this: the old check then fell back to comparing addresses.
        conn.execute("REVOKE EXECUTE ON FUNCTION pg_catalog.pg_control_system() FROM PUBLIC")
        if marked:  # a source that is itself a clone: the marker rule cannot save it
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET pgparity.clone = 'upstream'").format(
                    sql.Identifier(name)
                )
            )
    cluster.wait_replay()
    return source


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(json.dumps(POLICY))  # JSON is YAML
    return path


def pgparity(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGPARITY_")}
    return subprocess.run(
        [*PGPARITY, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def seed(source_dsn: str, target_dsn: str, policy: Path) -> subprocess.CompletedProcess[str]:
    return pgparity(
        "seed", "--source-dsn", source_dsn, "--target-dsn", target_dsn, "--policy", str(policy),
        "--replace", "--no-parity", "--quiet",
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("pgparity: error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for secret in (READER_PASSWORD,):
        assert secret not in result.stderr


# (source reached as, target reached as, what the refusal says)
SAME_DATABASE: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "reader-on-127.0.0.2-target-on-127.0.0.1": (
        {"via": "127.0.0.2", "reader": True},
        {"via": "127.0.0.1"},
        "the target is the source database itself",
    ),
    "reader-on-socket-target-on-127.0.0.1": (
        {"via": "socket", "reader": True},
        {"via": "127.0.0.1"},
        "the target is the source database itself",
    ),
    "reader-on-localhost-target-on-socket": (
        {"via": "localhost", "reader": True},
        {"via": "socket"},
        "the target is the source database itself",
    ),
    "reader-on-127.0.0.1-target-on-localhost": (
        {"via": "127.0.0.1", "reader": True},
        {"via": "localhost"},
        "the target is the source database itself",
    ),
    "superuser-on-127.0.0.1-target-on-127.0.0.2": (
        {"via": "127.0.0.1"},
        {"via": "127.0.0.2"},
        "the target is the source database itself",
    ),
    "the-same-dsn": ({}, {}, "the target is the source database itself"),
    "standby-source-of-the-target": (
        {"replica": True},
        {"via": "127.0.0.1"},
        "the source is a standby of the target's cluster",
    ),
    "standby-source-without-pg_control_system": (
        {"replica": True, "reader": True},
        {"via": "socket"},
        f'GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO "{READER}"',
    ),
    "the-target-is-the-standby": (
        {"via": "127.0.0.1"},
        {"replica": True},
        "is a standby (in recovery)",
    ),
}


class TestSeedNeverWritesItsSource:
    """Whichever way the same database is reached, seeding it into itself is refused."""

    @pytest.mark.parametrize("marked", [False, True], ids=["production", "source-is-a-clone"])
    @pytest.mark.parametrize("case", list(SAME_DATABASE), ids=list(SAME_DATABASE))
    def test_refused_before_anything_is_written(
        self, cluster: LocalCluster, policy: Path, case: str, marked: bool
    ) -> None:
        source = _create(cluster, marked=marked)
        source_via, target_via, fragment = SAME_DATABASE[case]
        before = source.state()
        result = seed(source.dsn(**source_via), source.dsn(**target_via), policy)
        assert_refused(result, fragment)
        assert source.state() == before

    def test_a_target_dsn_naming_two_hosts_is_refused(
        self, cluster: LocalCluster, policy: Path
    ) -> None:
        source, target = _create(cluster), _create(cluster, rows=False)
        assert cluster.primary is not None
        two_hosts = conninfo.make_conninfo(target.dsn(), host="127.0.0.1,127.0.0.2")
        before = source.state(), target.state()
        assert_refused(seed(source.dsn(), two_hosts, policy), "names several hosts")
        assert (source.state(), target.state()) == before

    def test_another_database_of_the_same_cluster_is_seeded(
        self, cluster: LocalCluster, policy: Path
    ) -> None:
        source, target = _create(cluster), _create(cluster, rows=False)
        before = source.state()
        result = seed(source.dsn("127.0.0.2", reader=True), target.dsn("socket"), policy)
        assert result.returncode == 0, result.stderr
        assert source.state() == before
        counts, _ = target.state()
        assert counts == before[0]

    def test_a_standby_source_seeds_another_database_of_its_primary(
        self, cluster: LocalCluster, policy: Path
    ) -> None:
        source, target = _create(cluster), _create(cluster, rows=False)
        before = source.state()
        result = seed(source.dsn(replica=True, reader=True), target.dsn(), policy)
        assert result.returncode == 0, result.stderr
        assert source.state() == before
        assert target.state()[0] == before[0]


class TestReplaceNeverClearsWhatPgparityDidNotMark:
    """``--replace`` (seed and restore) clears only pgparity clones, and never a standby."""

    def test_seed_replace_refuses_an_unmarked_database(
        self, cluster: LocalCluster, policy: Path
    ) -> None:
        source, other = _create(cluster), _create(cluster)
        before = other.state()
        result = seed(source.dsn(), other.dsn(), policy)
        assert_refused(result, "is not a pgparity clone")
        assert other.state() == before

    @pytest.fixture
    def archive(self, cluster: LocalCluster, policy: Path, tmp_path: Path) -> Path:
        source, target = _create(cluster), _create(cluster, rows=False)
        assert seed(source.dsn(), target.dsn(), policy).returncode == 0
        made = pgparity("snapshot", "--dsn", target.dsn(), "--output", str(tmp_path / "a"))
        assert made.returncode == 0, made.stderr
        return tmp_path / "a"

    @pytest.mark.parametrize(
        ("target_via", "fragment"),
        [
            ({}, "is not a pgparity clone"),
            ({"replica": True}, "is a standby (in recovery)"),
            ({"via": "127.0.0.1,127.0.0.2"}, "names several hosts"),
        ],
        ids=["unmarked", "standby", "two-hosts"],
    )
    def test_restore_replace_refuses(
        self, cluster: LocalCluster, archive: Path, target_via: dict[str, Any], fragment: str
    ) -> None:
        production = _create(cluster)
        before = production.state()
        result = pgparity(
            "restore", "--archive", str(archive), "--target-dsn",
            production.dsn(**target_via), "--replace",
        )  # fmt: skip
        assert_refused(result, fragment)
        assert production.state() == before


class TestReplaceValidatesEverythingFirst:
    """``seed --replace`` checks every argument, and dumps the schema, before it clears the
    target: a bad policy, key, DSN or job count, or a source it cannot dump, leaves the target's
    previous seed in place."""

    @pytest.fixture
    def seeded(self, cluster: LocalCluster, policy: Path) -> tuple[Source, Source]:
        source, target = _create(cluster), _create(cluster, rows=False)
        assert seed(source.dsn(), target.dsn(), policy).returncode == 0
        return source, target

    @pytest.mark.parametrize(
        ("change", "flags", "code", "fragment"),
        [
            ({"owner": {"transform": "partial", "first": 100}}, [], 2,
             "parameter 'first' of partial must be between 0 and 32"),
            ({"owner": "scramble"}, [], 2, "unknown transform 'scramble'"),
            ({"owner": "hash"}, [], 2, "masking key"),
            ({"owner": "hash"}, ["--key-file", "SHORT"], 2, "too short"),
            ({}, ["--jobs", "0"], 2, "--jobs: 0 is not between 1 and 64"),
            ({}, ["--target-dsn", "host=127.0.0.1 port=notaport dbname=x"], 2, "DSN"),
        ],
        ids=["partial-100", "unknown-transform", "no-key", "short-key", "jobs-0", "bad-dsn"],
    )  # fmt: skip
    def test_bad_arguments_leave_the_target_alone(
        self,
        seeded: tuple[Source, Source],
        tmp_path: Path,
        change: dict[str, Any],
        flags: list[str],
        code: int,
        fragment: str,
    ) -> None:
        source, target = seeded
        doc = json.loads(json.dumps(POLICY))
        doc["tables"]["public.accounts"]["columns"] |= change
        path = tmp_path / "bad.yaml"
        path.write_text(json.dumps(doc))
        (tmp_path / "SHORT").write_text("short")
        flags = [str(tmp_path / f) if f == "SHORT" else f for f in flags]
        target_dsn = target.dsn()
        if "--target-dsn" in flags:
            target_dsn = flags[flags.index("--target-dsn") + 1]
            flags = flags[: flags.index("--target-dsn")]
        before = target.state()
        result = pgparity(
            "seed", "--source-dsn", source.dsn(), "--target-dsn", target_dsn,
            "--policy", str(path), "--replace", "--quiet", *flags,
        )  # fmt: skip
        assert result.returncode == code, result.stderr
        assert fragment in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert target.state() == before

    def test_a_source_it_cannot_dump_leaves_the_target_alone(
        self, seeded: tuple[Source, Source], tmp_path: Path
    ) -> None:
        source, target = seeded
        with psycopg.connect(source.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE hidden (id int)")  # the reader may not read it
        source.cluster.wait_replay()
        doc = json.loads(json.dumps(POLICY))
        doc["tables"]["public.hidden"] = {"columns": {"id": "keep"}}
        path = tmp_path / "policy.yaml"
        path.write_text(json.dumps(doc))
        before = target.state()
        result = seed(source.dsn(reader=True), target.dsn(), path)
        assert result.returncode == 4, result.stderr
        assert "permission denied" in result.stderr
        assert target.state() == before
