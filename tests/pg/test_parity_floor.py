"""The parity floor against two real clusters that differ one dimension at a time.

Production and staging are two separate local clusters (each a primary and a streaming
replica, made the same way). Each test makes a fresh database on both — the staging one marked
as a pgparity clone — changes one thing, and runs ``pgparity parity`` as a user does.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import conninfo, sql

from fix_pg import run_pgparity
from pgparity.pg.clone import mark_clone
from pgparity.pg.localcluster import LocalCluster

_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def production_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(durable=False, replicas=1, clone_name="not-a-clone") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def staging_cluster() -> Iterator[LocalCluster]:
    with LocalCluster(durable=False, replicas=1) as cluster:
        yield cluster


@dataclass(frozen=True)
class Side:
    cluster: LocalCluster
    name: str
    dsn: str

    def execute(self, *queries: str | sql.Composed) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for query in queries:
                conn.execute(query.encode() if isinstance(query, str) else query)

    def on_server(self, *queries: str | sql.Composed) -> None:
        with psycopg.connect(self.cluster.primary_dsn, autocommit=True) as conn:
            for query in queries:
                conn.execute(query.encode() if isinstance(query, str) else query)


@dataclass(frozen=True)
class Pair:
    production: Side
    staging: Side

    def floor(self, *args: str) -> tuple[int, dict[str, Any]]:
        result = run_pgparity(
            "parity",
            "--production-dsn",
            self.production.dsn,
            "--staging-dsn",
            self.staging.dsn,
            "--floor-only",
            "--format",
            "json",
            *args,
        )
        assert result.returncode in (0, 1), result.stderr
        return result.returncode, json.loads(result.stdout)

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_pgparity(
            "parity",
            "--production-dsn",
            self.production.dsn,
            "--staging-dsn",
            self.staging.dsn,
            *args,
        )


def _side(cluster: LocalCluster, *, clone: bool, create: str = "") -> Side:
    name = f"f{next(_numbers)}"
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} " + create).format(sql.Identifier(name)))
    side = Side(cluster, name, conninfo.make_conninfo(cluster.primary_dsn, dbname=name))
    if clone:
        with psycopg.connect(side.dsn, autocommit=True) as conn:
            mark_clone(conn, f"test-{name}")
    return side


def _drop(side: Side) -> None:
    side.on_server(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(side.name)))


@pytest.fixture
def pair(production_cluster: LocalCluster, staging_cluster: LocalCluster) -> Iterator[Pair]:
    made = Pair(_side(production_cluster, clone=False), _side(staging_cluster, clone=True))
    yield made
    _drop(made.production)
    _drop(made.staging)


def broken(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["dimension"], c["name"]): c for c in doc["floor"]["checks"] if c["status"] == "fail"}


def check(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in doc["floor"]["checks"] if c["name"] == name)


@pytest.fixture
def roles(pair: Pair) -> Iterator[str]:
    """A login role ``app`` on both servers, dropped afterwards."""
    role = f"app_{pair.production.name}"
    for side in (pair.production, pair.staging):
        side.on_server(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    yield role
    for side in (pair.production, pair.staging):
        side.on_server(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


class TestOneDimensionAtATime:
    def test_an_identical_pair_passes(self, pair: Pair) -> None:
        code, doc = pair.floor("--all")
        assert code == 0, broken(doc)
        assert doc["ok"]
        assert doc["floor"]["first_broken"] is None
        dimensions = {c["dimension"] for c in doc["floor"]["checks"]}
        assert dimensions == {"server", "configuration", "extensions", "topology", "schema"}
        assert check(doc, "work_mem")["status"] == "pass"
        assert check(doc, "shared_buffers")["status"] == "info"  # scaled: reported only

    def test_a_database_level_work_mem(self, pair: Pair) -> None:
        pair.staging.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                sql.Identifier(pair.staging.name)
            )
        )
        code, doc = pair.floor()
        assert code == 1
        assert list(broken(doc)) == [("configuration", "work_mem")]
        found = check(doc, "work_mem")
        assert found["staging"] == "64MB"
        assert found["staging_source"] == "database"
        assert found["production"] == "4096 (kB)"
        assert doc["floor"]["first_broken"] == "configuration"

    def test_equal_values_in_other_spellings_pass(self, pair: Pair) -> None:
        pair.production.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '4MB'").format(
                sql.Identifier(pair.production.name)
            ),
            sql.SQL("ALTER DATABASE {} SET lock_timeout = '1min'").format(
                sql.Identifier(pair.production.name)
            ),
        )
        pair.staging.execute(
            sql.SQL("ALTER DATABASE {} SET lock_timeout = '60000'").format(
                sql.Identifier(pair.staging.name)
            )
        )
        code, doc = pair.floor()
        assert code == 0, broken(doc)

    def test_a_role_level_lock_timeout(self, pair: Pair, roles: str) -> None:
        pair.staging.on_server(
            sql.SQL("ALTER ROLE {} SET lock_timeout = '3s'").format(sql.Identifier(roles))
        )
        code, doc = pair.floor("--role", roles)
        assert code == 1
        assert list(broken(doc)) == [("configuration", "lock_timeout")]
        found = check(doc, "lock_timeout")
        assert (found["production"], found["staging"]) == ("0 (ms)", "3s")
        assert found["staging_source"] == "role"
        # Without --role the role level is not the one compared: the floor holds.
        assert pair.floor()[0] == 0

    def test_a_database_and_role_setting_beats_a_role_setting(self, pair: Pair, roles: str) -> None:
        for side in (pair.production, pair.staging):
            side.on_server(
                sql.SQL("ALTER ROLE {} SET statement_timeout = '30s'").format(sql.Identifier(roles))
            )
        pair.staging.on_server(
            sql.SQL("ALTER ROLE {} IN DATABASE {} SET statement_timeout = '5s'").format(
                sql.Identifier(roles), sql.Identifier(pair.staging.name)
            )
        )
        code, doc = pair.floor("--role", roles)
        found = check(doc, "statement_timeout")
        assert code == 1
        assert found["staging"] == "5s"
        assert found["staging_source"] == "database-role"

    def test_a_role_missing_on_the_clone(self, pair: Pair) -> None:
        role = f"only_prod_{pair.production.name}"
        pair.production.on_server(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        try:
            code, doc = pair.floor("--role", role)
        finally:
            pair.production.on_server(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        assert code == 1
        assert ("configuration", f"role {role}") in broken(doc)

    def test_an_extension_at_another_version(self, pair: Pair) -> None:
        pair.production.execute("CREATE EXTENSION hstore")
        pair.staging.execute("CREATE EXTENSION hstore VERSION '1.4'")
        code, doc = pair.floor()
        assert code == 1
        failing = broken(doc)
        found = failing[("extensions", "extension hstore")]
        assert (found["production"], found["staging"]) == ("1.8", "1.4")
        assert doc["floor"]["first_broken"] == "extensions"
        # Another version has other objects: the digest may differ too, nothing else does.
        assert {k[0] for k in failing} <= {"extensions", "schema"}

    def test_missing_and_extra_extensions(self, pair: Pair) -> None:
        pair.production.execute("CREATE EXTENSION citext")
        pair.staging.execute("CREATE EXTENSION pg_trgm")
        _code, doc = pair.floor()
        failing = broken(doc)
        assert failing[("extensions", "extension citext")]["note"] == "missing on the clone"
        assert failing[("extensions", "extension pg_trgm")]["note"] == "extra on the clone"

    def test_an_extension_the_migration_creates(self, pair: Pair, tmp_path: Path) -> None:
        migration = tmp_path / "m.sql"
        migration.write_text("CREATE EXTENSION ltree;\nCREATE EXTENSION cube VERSION '9.9';\n")
        code, doc = pair.floor("--migration", str(migration), "--all")
        assert check(doc, "creates extension ltree")["status"] == "pass"
        impossible = check(doc, "creates extension cube")
        assert impossible["status"] == "fail"
        assert "not available" in impossible["note"]
        assert code == 1

    def test_an_icu_database_against_a_libc_one(
        self, production_cluster: LocalCluster, staging_cluster: LocalCluster
    ) -> None:
        icu = "LOCALE_PROVIDER icu ICU_LOCALE 'und' TEMPLATE template0"
        made = Pair(
            _side(production_cluster, clone=False), _side(staging_cluster, clone=True, create=icu)
        )
        try:
            code, doc = made.floor()
        finally:
            _drop(made.production)
            _drop(made.staging)
        failing = broken(doc)
        assert code == 1
        found = failing[("server", "locale provider")]
        assert (found["production"], found["staging"]) == ("libc", "icu")
        assert ("server", "icu locale") in failing
        assert {k[0] for k in failing} == {"server"}

    def test_a_column_collation_of_another_provider(self, pair: Pair) -> None:
        pair.production.execute('CREATE TABLE t (name text COLLATE "und-x-icu")')
        pair.staging.execute('CREATE TABLE t (name text COLLATE "und-x-icu")')
        code, doc = pair.floor("--all")
        assert code == 0, broken(doc)
        used = check(doc, 'collation pg_catalog."und-x-icu"')
        assert used["production"].startswith("icu ")
        assert used["status"] == "pass"

    def test_a_synchronous_standby(self, pair: Pair) -> None:
        primary = pair.production
        primary.on_server(
            "ALTER SYSTEM SET synchronous_standby_names = 'pgparity_replica_1'",
            "SELECT pg_reload_conf()",
        )
        try:
            _wait_for_sync_state(primary.cluster, "sync")
            code, doc = pair.floor()
        finally:
            primary.on_server(
                "ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()"
            )
            _wait_for_sync_state(primary.cluster, "async")
        found = broken(doc)[("topology", "replication")]
        assert (found["production"], found["staging"]) == ("synchronous", "asynchronous")
        assert code == 1

    def test_no_replica_on_the_clone(self, production_cluster: LocalCluster) -> None:
        with LocalCluster(durable=False, replicas=0) as lonely:
            made = Pair(_side(production_cluster, clone=False), _side(lonely, clone=True))
            try:
                code, doc = made.floor()
            finally:
                _drop(made.production)
        failing = broken(doc)
        found = failing[("topology", "streaming replicas")]
        assert (found["production"], found["staging"]) == ("1", "0")
        assert doc["floor"]["first_broken"] == "topology"
        assert code == 1

    def test_a_schema_difference(self, pair: Pair) -> None:
        pair.production.execute("CREATE TABLE t (id int)")
        code, doc = pair.floor()
        assert list(broken(doc)) == [("schema", "schema digest")]
        assert code == 1


def _wait_for_sync_state(cluster: LocalCluster, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'"
            ).fetchone()
            if row and row[0] == state:
                return
            time.sleep(0.1)
    raise AssertionError(f"replica never became {state}")


class TestSettingsFile:
    def test_a_file_changes_classes_and_adds_settings(self, pair: Pair, tmp_path: Path) -> None:
        pair.staging.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                sql.Identifier(pair.staging.name)
            ),
            sql.SQL("ALTER DATABASE {} SET application_name = 'x'").format(
                sql.Identifier(pair.staging.name)
            ),
        )
        listed = tmp_path / "settings.yaml"
        listed.write_text("settings:\n  work_mem: scaled\n  application_name: must-equal\n")
        code, doc = pair.floor("--settings", str(listed))
        assert list(broken(doc)) == [("configuration", "application_name")]
        assert check(doc, "work_mem")["status"] == "info"
        assert code == 1

    def test_replace_defaults_compares_only_the_file(self, pair: Pair, tmp_path: Path) -> None:
        pair.staging.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                sql.Identifier(pair.staging.name)
            )
        )
        listed = tmp_path / "settings.yaml"
        listed.write_text("replaceDefaults: true\nsettings:\n  random_page_cost: must-equal\n")
        code, doc = pair.floor("--settings", str(listed), "--all")
        names = {c["name"] for c in doc["floor"]["checks"] if c["dimension"] == "configuration"}
        assert names == {"random_page_cost"}
        assert code == 0

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("settings: [work_mem]\n", "settings must map"),
            ("settings:\n  work_mem: equal\n", "is not one of"),
            ("setings:\n  work_mem: scaled\n", "unknown key"),
            ("settings:\n  pgparity.clone: ignored\n", "pgparity's own marker"),
            ("settings:\n  'work mem; DROP': scaled\n", "not a setting name"),
            ("replaceDefaults: yes please\n", "replaceDefaults"),
        ],
    )
    def test_a_bad_file_is_bad_input(
        self, pair: Pair, tmp_path: Path, text: str, needle: str
    ) -> None:
        listed = tmp_path / "settings.yaml"
        listed.write_text(text)
        result = pair.run("--settings", str(listed))
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.startswith("pgparity: error:")
        assert needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


class TestOutput:
    def test_text_lists_breaks_and_all_lists_passes(self, pair: Pair) -> None:
        pair.staging.execute(
            sql.SQL("ALTER DATABASE {} SET random_page_cost = 1.1").format(
                sql.Identifier(pair.staging.name)
            )
        )
        result = pair.run("--floor-only")
        assert result.returncode == 1
        assert "✗ configuration" in result.stdout
        assert "random_page_cost" in result.stdout
        assert "✓" not in result.stdout
        assert "parity floor: BROKEN (configuration)" in result.stdout
        everything = pair.run("--floor-only", "--all")
        assert "✓ server" in everything.stdout
        assert "✓ topology" in everything.stdout

    def test_data_parity_still_runs_by_default(self, pair: Pair) -> None:
        pair.production.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)")
        pair.staging.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
        result = pair.run("--format", "json")
        doc = json.loads(result.stdout)
        assert result.returncode == 1
        assert doc["floor"]["ok"]
        assert not doc["data"]["ok"]
        rows = next(c for c in doc["checks"] if c["kind"] == "rows")
        assert (rows["source"], rows["target"]) == (2, 1)

    def test_an_unreachable_production_is_exit_4_without_the_password(self, pair: Pair) -> None:
        dead = conninfo.make_conninfo(pair.production.dsn, port="1", password="hunter2-secret")
        result = run_pgparity("parity", "--production-dsn", dead, "--staging-dsn", pair.staging.dsn)
        assert result.returncode == 4
        assert "hunter2-secret" not in result.stderr + result.stdout
        assert result.stderr.startswith("pgparity: error: cannot connect to production")


class TestEmit:
    def test_parameters_are_productions_effective_values(self, pair: Pair, roles: str) -> None:
        pair.production.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                sql.Identifier(pair.production.name)
            )
        )
        pair.production.on_server(
            sql.SQL("ALTER ROLE {} SET lock_timeout = '2s'").format(sql.Identifier(roles))
        )
        result = pair.run("--emit", "parameters", "--role", roles)
        assert result.returncode == 0, result.stderr
        parameters = yaml.safe_load(result.stdout)["parameters"]
        assert parameters["work_mem"] == "64MB"
        assert parameters["lock_timeout"] == "2s"
        assert parameters["max_wal_size"] == "1024MB"  # initdb's postgresql.conf line
        assert "random_page_cost" not in parameters  # PostgreSQL's default: the clone has it
        assert "shared_buffers" not in parameters  # scaled: sized for the clone's machine

    def test_sql_apply_brings_the_clone_to_parity(self, pair: Pair, roles: str) -> None:
        production, staging = pair.production, pair.staging
        production.execute(
            sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                sql.Identifier(production.name)
            ),
            sql.SQL("ALTER DATABASE {} SET search_path = '$user', public, 'odd schema'").format(
                sql.Identifier(production.name)
            ),
        )
        production.on_server(
            sql.SQL("ALTER ROLE {} SET lock_timeout = '2s'").format(sql.Identifier(roles))
        )
        staging.execute(
            sql.SQL("ALTER DATABASE {} SET random_page_cost = 1.1").format(
                sql.Identifier(staging.name)
            )
        )
        assert pair.floor("--role", roles)[0] == 1
        printed = pair.run("--emit", "sql", "--role", roles)
        assert printed.returncode == 0
        # The clone's server value is hidden behind its database setting (pg_settings shows the
        # reading session's value), so production's value is set rather than the level reset.
        assert f'ALTER DATABASE "{staging.name}" SET "random_page_cost" = \'4\';' in printed.stdout
        elements = "'$user', 'public', 'odd schema'"
        assert f'ALTER DATABASE "{staging.name}" SET "search_path" = {elements};' in printed.stdout
        assert f'ALTER ROLE "{roles}" SET "lock_timeout" = \'2s\';' in printed.stdout
        applied = pair.run("--emit", "sql", "--apply", "--role", roles)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "parity floor: ok" in applied.stdout
        code, doc = pair.floor("--role", roles)
        assert code == 0, broken(doc)
        assert pair.run("--emit", "sql", "--role", roles).stdout.startswith("-- the clone's")

    def test_server_settings_become_database_settings_or_comments(self, pair: Pair) -> None:
        staging = pair.staging
        staging.on_server("ALTER SYSTEM SET seq_page_cost = 2", "SELECT pg_reload_conf()")
        try:
            _wait_for_setting(staging.dsn, "seq_page_cost", "2")
            printed = pair.run("--emit", "sql")
        finally:
            staging.on_server("ALTER SYSTEM RESET seq_page_cost", "SELECT pg_reload_conf()")
            _wait_for_setting(staging.dsn, "seq_page_cost", "1")
        assert f'ALTER DATABASE "{staging.name}" SET "seq_page_cost" = \'1\';' in printed.stdout

    def test_apply_refuses_a_database_not_marked_as_a_clone(
        self, production_cluster: LocalCluster, staging_cluster: LocalCluster
    ) -> None:
        made = Pair(_side(production_cluster, clone=False), _side(staging_cluster, clone=False))
        try:
            made.production.execute(
                sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                    sql.Identifier(made.production.name)
                )
            )
            result = made.run("--emit", "sql", "--apply")
            assert result.returncode == 2
            assert "not marked as a pgparity clone" in result.stderr
            assert made.floor()[0] == 1  # nothing was changed
        finally:
            _drop(made.production)
            _drop(made.staging)

    def test_apply_needs_emit_sql(self, pair: Pair) -> None:
        result = pair.run("--apply")
        assert result.returncode == 2
        assert "--apply goes with --emit sql" in result.stderr


def _wait_for_setting(dsn: str, name: str, value: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        if row and row[0] == value:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name} never became {value}")


HOSTILE = {
    "search-path-elements": (
        "search_path",
        sql.SQL("{}, public, {}").format(
            sql.Literal('"; DROP TABLE sentinel; --'), sql.Literal("a,b")
        ),
    ),
    "custom-setting-newline-quote": (
        "app.note",
        sql.Literal("x\n'; DROP TABLE sentinel; --\\"),
    ),
    "custom-setting-dollar-quote": ("app.note", sql.Literal("$$; DROP TABLE sentinel; $$")),
    "custom-setting-very-long": ("app.note", sql.Literal("y" * 5000)),
    "timezone": ("timezone", sql.Literal("America/Argentina/Buenos_Aires")),
}


class TestHostileProductionValues:
    """Values read from production go back into SQL only as psycopg.sql literals and
    identifiers: applied to a clone they set exactly production's value and run nothing
    else, and printed they are one line, cut short."""

    @pytest.mark.parametrize("variant", list(HOSTILE))
    def test_database_values(self, pair: Pair, tmp_path: Path, variant: str) -> None:
        name, value = HOSTILE[variant]
        pair.production.execute(
            sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                sql.Identifier(pair.production.name), sql.Identifier(*name.split(".")), value
            )
        )
        pair.staging.execute("CREATE TABLE sentinel (id int)")
        pair.production.execute("CREATE TABLE sentinel (id int)")
        listed = tmp_path / "settings.yaml"
        listed.write_text('settings:\n  "app.*": must-equal\n')
        before = pair.run("--floor-only", "--settings", str(listed))
        assert before.returncode == 1
        assert all(len(line) < 400 for line in before.stdout.splitlines())
        applied = pair.run("--emit", "sql", "--apply", "--settings", str(listed))
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert _level_entries(pair.staging) == _level_entries(pair.production)
        assert pair.floor("--settings", str(listed))[0] == 0
        with psycopg.connect(pair.staging.dsn) as conn:
            conn.execute("SELECT count(*) FROM public.sentinel")

    @pytest.mark.parametrize("role", ['a"b', "x'; DROP ROLE postgres; --", "Mixed Case", "ünï"])
    def test_role_names(self, pair: Pair, role: str) -> None:
        for side in (pair.production, pair.staging):
            side.on_server(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        try:
            pair.production.on_server(
                sql.SQL("ALTER ROLE {} SET work_mem = '32MB'").format(sql.Identifier(role))
            )
            assert pair.floor("--role", role)[0] == 1
            applied = pair.run("--emit", "sql", "--apply", "--role", role)
            assert applied.returncode == 0, applied.stdout + applied.stderr
            code, doc = pair.floor("--role", role)
            assert code == 0, broken(doc)
        finally:
            for side in (pair.production, pair.staging):
                side.on_server(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

    def test_a_database_name_on_the_clone(
        self, production_cluster: LocalCluster, staging_cluster: LocalCluster
    ) -> None:
        made = Pair(_side(production_cluster, clone=False), _side(staging_cluster, clone=True))
        odd = f'{made.staging.name}"; DROP DATABASE x; --'
        made.staging.on_server(
            sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                sql.Identifier(made.staging.name), sql.Identifier(odd)
            )
        )
        staging = Side(staging_cluster, odd, conninfo.make_conninfo(made.staging.dsn, dbname=odd))
        made = Pair(made.production, staging)
        try:
            made.production.execute(
                sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                    sql.Identifier(made.production.name)
                )
            )
            applied = made.run("--emit", "sql", "--apply")
            assert applied.returncode == 0, applied.stdout + applied.stderr
            assert made.floor()[0] == 0
        finally:
            _drop(made.production)
            _drop(staging)


def _level_entries(side: Side) -> list[str]:
    with psycopg.connect(side.dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT unnest(setconfig) FROM pg_db_role_setting s JOIN pg_database d "
            "ON d.oid = s.setdatabase WHERE d.datname = current_database() AND s.setrole = 0"
        ).fetchall()
    return sorted(str(r[0]) for r in rows if not str(r[0]).startswith("pgparity."))


@pytest.fixture
def reader(pair: Pair) -> Iterator[str]:
    """A production login role that is not a superuser: ``pg_read_all_settings`` and
    ``pg_read_all_stats`` only (and PUBLIC's CONNECT). Its DSN is returned."""
    role = f"reader_{pair.production.name}"
    password = f"pw-{role}"
    pair.production.on_server(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        ),
        sql.SQL("GRANT pg_read_all_settings, pg_read_all_stats TO {}").format(sql.Identifier(role)),
    )
    yield conninfo.make_conninfo(pair.production.dsn, user=role, password=password)
    pair.production.on_server(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


class TestMinimalGrants:
    """The documented grants for production: a role with pg_read_all_settings and
    pg_read_all_stats sees everything the floor compares, exactly as a superuser does."""

    def _floor_as(self, pair: Pair, dsn: str, *args: str) -> tuple[int, dict[str, Any]]:
        return Pair(Side(pair.production.cluster, pair.production.name, dsn), pair.staging).floor(
            *args
        )

    def test_the_floor_reads_the_same_as_a_superuser(
        self, pair: Pair, reader: str, roles: str
    ) -> None:
        pair.production.execute(
            'CREATE TABLE t (name text COLLATE "und-x-icu")',
            "CREATE EXTENSION hstore",
            sql.SQL("ALTER DATABASE {} SET work_mem = '64MB'").format(
                sql.Identifier(pair.production.name)
            ),
        )
        pair.production.on_server(
            sql.SQL("ALTER ROLE {} SET lock_timeout = '2s'").format(sql.Identifier(roles))
        )
        code, doc = self._floor_as(pair, reader, "--all", "--role", roles)
        _, expected = pair.floor("--all", "--role", roles)
        assert doc["floor"]["checks"] == expected["floor"]["checks"]
        assert code == 1  # the clone differs: the reader sees every difference
        assert {c["name"] for c in broken(doc).values()} >= {
            "work_mem",
            "lock_timeout",
            "extension hstore",
            "schema digest",
        }
        assert check(doc, "replication")["status"] == "pass"
        assert check(doc, "shared_buffers")["production"] is not None

    def test_without_pg_read_all_stats_replication_is_unknown_not_none(
        self, pair: Pair, reader: str
    ) -> None:
        role = str(conninfo.conninfo_to_dict(reader)["user"])
        pair.production.on_server(
            sql.SQL("REVOKE pg_read_all_stats FROM {}").format(sql.Identifier(role))
        )
        code, doc = self._floor_as(pair, reader)
        found = broken(doc)[("topology", "replication")]
        assert "grant pg_read_all_stats" in found["production"]
        assert code == 1


def test_validate_records_the_parity_state_it_was_given(pg_db: Any, tmp_path: Path) -> None:
    """The operator's validation Jobs pass their clone's ParityVerified; the report keeps it."""
    migration = tmp_path / "m.sql"
    migration.write_text("CREATE TABLE recorded (id int);\n")
    common = ("validate", "--migration", str(migration), "--dsn", pg_db.dsn, "--quiet")
    result = run_pgparity(*common, "--format", "json", "--parity-state", "Broken")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["parity"] == "Broken"
    bad = run_pgparity(*common, "--parity-state", "Fine")
    assert bad.returncode == 2
    assert "--parity-state" in bad.stderr
