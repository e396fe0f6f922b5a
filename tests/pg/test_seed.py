"""Anonymized seeding between two real local clusters: no PII reaches the target."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from fix_pg import PgDatabase, _create_database, _drop_database, validate_sql
from pgparity.pg.clone import database_settings, mark_clone
from pgparity.pg.localcluster import LocalCluster

PGPARITY = [sys.executable, "-m", "pgparity"]
KEY = "a-masking-key-for-tests-only-0123456789"
CANARIES = (
    "canary.alice@leak.example",
    "Zebulon Canaryfield",
    "+1 (555) 013-3713",
    "078-05-1120",
    "lives at 42 Canary Wharf",
)

SOURCE = f"""
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name text NOT NULL,
    phone text,
    ssn text,
    notes text,
    born date,
    salary numeric(10, 2),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    user_email text REFERENCES users (email),
    amount numeric(12, 2) NOT NULL
);
CREATE TABLE audit_log (id serial PRIMARY KEY, payload text);
INSERT INTO users (email, full_name, phone, ssn, notes, born, salary)
SELECT 'person' || g || '@corp.example', 'Person ' || g,
       CASE WHEN g % 4 = 0 THEN NULL ELSE '+1 555 ' || lpad(g::text, 7, '0') END,
       lpad(g::text, 9, '0'), CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END,
       date '1960-01-01' + g % 20000, 1000 + g % 9000
FROM generate_series(1, 20000) g;
INSERT INTO users (email, full_name, phone, ssn, notes)
VALUES ('{CANARIES[0]}', '{CANARIES[1]}', '{CANARIES[2]}', '{CANARIES[3]}', '{CANARIES[4]}');
INSERT INTO orders (user_id, user_email, amount)
SELECT 1 + g % 20001, CASE WHEN g % 5 = 0 THEN NULL
                           ELSE (SELECT email FROM users WHERE id = 1 + g % 20001) END, g % 700
FROM generate_series(1, 30000) g;
INSERT INTO audit_log (payload) SELECT 'secret ' || g FROM generate_series(1, 100) g;
CREATE INDEX orders_user_idx ON orders (user_id);
CREATE VIEW spend AS SELECT user_id, sum(amount) AS total FROM orders GROUP BY user_id;
ANALYZE;
"""

POLICY = """
version: 1
tables:
  public.users:
    columns:
      id: keep
      email: {transform: email, unique: true}
      full_name: name
      phone: phone
      ssn: null
      notes: fill
      born: {transform: date_shift, days: 30}
      salary: {transform: noise, percent: 5}
      created_at: keep
  public.orders:
    columns:
      id: keep
      user_id: keep
      user_email: {transform: email, unique: true}
      amount: keep
  public.audit_log:
    rows: none
"""


@pytest.fixture(scope="module")
def target_cluster() -> Iterator[LocalCluster]:
    # A replica, as a clone has one: `pgparity parity` checks the topology floor too.
    with LocalCluster(durable=False, replicas=1) as cluster:
        yield cluster


@pytest.fixture
def target(target_cluster: LocalCluster) -> Iterator[PgDatabase]:
    db = _create_database(target_cluster, clone=False)
    yield db
    _drop_database(target_cluster, db.name)


@pytest.fixture
def source(pg_plain_db: PgDatabase) -> PgDatabase:
    pg_plain_db.execute(SOURCE)
    return pg_plain_db


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def pgparity(*args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PGPARITY_MASKING_KEY"}
    if key is not None:
        env["PGPARITY_MASKING_KEY"] = key
    return subprocess.run(
        [*PGPARITY, *args], capture_output=True, text=True, env=env, timeout=600, check=False
    )


def seed(
    source: PgDatabase, target: PgDatabase, policy: Path, *extra: str, key: str | None = KEY
) -> subprocess.CompletedProcess[str]:
    return pgparity(
        "seed",
        "--source-dsn",
        source.dsn,
        "--target-dsn",
        target.dsn,
        "--policy",
        str(policy),
        "--quiet",
        *extra,
        key=key,
    )


def rows(db: PgDatabase, query: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(query.encode()).fetchall()


def dump_text(db: PgDatabase) -> str:
    bindir = db.cluster.bindir
    assert bindir is not None
    return subprocess.run(
        [str(bindir / "pg_dump"), "-d", db.dsn], capture_output=True, text=True, check=True
    ).stdout


def test_canary_pii_appears_nowhere_in_the_target(
    source: PgDatabase, target: PgDatabase, policy: Path
) -> None:
    result = seed(source, target, policy)
    assert result.returncode == 0, result.stdout + result.stderr
    source_dump, target_dump = dump_text(source), dump_text(target)
    for canary in CANARIES:
        assert canary in source_dump  # the check would notice it
        assert canary not in target_dump, canary
    for fragment in ("corp.example", "Person 1", "555 0000", "note 1", "secret 1"):
        assert fragment not in target_dump, fragment
    assert KEY not in target_dump + result.stdout + result.stderr
    assert rows(target, "SELECT count(*) FROM audit_log") == [(0,)]  # rows: none


def test_joins_uniqueness_and_nulls_survive(
    source: PgDatabase, target: PgDatabase, policy: Path
) -> None:
    assert seed(source, target, policy).returncode == 0
    join = "SELECT count(*) FROM orders o JOIN users u ON u.email = o.user_email"
    assert rows(target, join) == rows(source, join)
    assert rows(target, join)[0][0] > 20000
    unique = "SELECT count(DISTINCT email), count(*) FROM users"
    assert rows(target, unique) == rows(source, unique)
    nulls = (
        "SELECT count(*) FILTER (WHERE phone IS NULL), count(*) FILTER (WHERE notes IS NULL),"
        " count(*) FILTER (WHERE born IS NULL), count(*) FILTER (WHERE ssn IS NULL)"
        " FROM users"
    )
    src, dst = rows(source, nulls)[0], rows(target, nulls)[0]
    assert dst[:3] == src[:3]
    assert dst[3] == 20001  # ssn: null
    widths = "SELECT sum(length(notes)) FROM users"
    assert rows(target, widths) == rows(source, widths)  # fill keeps lengths
    for view in ("SELECT count(*) FROM spend",):
        assert rows(target, view) == rows(source, view)
    settings = database_settings(psycopg.connect(target.dsn, autocommit=True))
    assert settings["seed_state"] == "complete"
    assert settings["clone"]


def test_same_key_same_output_different_key_different_output(
    source: PgDatabase, target: PgDatabase, target_cluster: LocalCluster, policy: Path
) -> None:
    assert seed(source, target, policy).returncode == 0
    second = _create_database(target_cluster, clone=False)
    third = _create_database(target_cluster, clone=False)
    try:
        assert seed(source, second, policy).returncode == 0
        assert seed(source, third, policy, key=KEY + "-other").returncode == 0
        query = "SELECT id, email, full_name, phone FROM users ORDER BY id LIMIT 50"
        assert rows(target, query) == rows(second, query)
        assert rows(target, query) != rows(third, query)
        # Across tables: the same original email masks to the same value in orders.
        cross = (
            "SELECT count(*) FROM orders o JOIN users u ON u.id = o.user_id "
            "WHERE o.user_email IS NOT NULL AND o.user_email <> u.email"
        )
        assert rows(target, cross) == [(0,)]
    finally:
        _drop_database(target_cluster, second.name)
        _drop_database(target_cluster, third.name)


def test_unclassified_column_and_unsafe_transforms_are_refused(
    source: PgDatabase, target: PgDatabase, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.yaml"
    missing.write_text(POLICY.replace("      notes: fill\n", ""))
    result = seed(source, target, missing)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "public.users.notes: unclassified column" in result.stderr
    collision = tmp_path / "collision.yaml"
    collision.write_text(
        POLICY.replace(
            "email: {transform: email, unique: true}\n      full", "email: name\n      full"
        )
    )
    refused = seed(source, target, collision)
    assert refused.returncode == 2
    assert "public.users.email: transform name can make different values equal" in refused.stderr
    assert rows(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_policy_check_lists_every_problem(source: PgDatabase, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        POLICY.replace("      notes: fill\n", "")
        .replace("      created_at: keep\n", "      created_at: keep\n      nickname: keep\n")
        .replace("phone: phone", "phone: scramble")
        .replace("full_name: name", "full_name: null")
        .replace(
            "user_email: {transform: email, unique: true}",
            "user_email: {transform: hash, length: 40}",
        )
        + "  public.ghosts:\n    columns:\n      id: keep\n"
    )
    result = pgparity("policy", "check", "--dsn", source.dsn, "--policy", str(bad))
    assert result.returncode == 1
    out = result.stdout
    assert "public.ghosts: unknown table" in out
    assert "public.users.nickname: unknown column" in out
    assert "public.users.notes: unclassified column" in out
    assert "public.users.phone: unknown transform 'scramble'" in out
    assert "public.users.full_name: transform null on a NOT NULL column" in out
    assert "foreign key orders_user_email_fkey references public.users.email" in out
    assert "6 problems" in out


def test_policy_init_writes_a_policy_that_passes_check(source: PgDatabase, tmp_path: Path) -> None:
    path = tmp_path / "init.yaml"
    written = pgparity("policy", "init", "--dsn", source.dsn, "--policy", str(path))
    assert written.returncode == 0, written.stderr
    text = path.read_text()
    assert "email: {transform: email, unique: true}  # REVIEW" in text
    assert "ssn: null  # REVIEW" in text
    assert "amount: keep" in text
    checked = pgparity("policy", "check", "--dsn", source.dsn, "--policy", str(path))
    assert checked.returncode == 0, checked.stdout
    again = pgparity("policy", "init", "--dsn", source.dsn, "--policy", str(path))
    assert again.returncode == 2
    assert "--force" in again.stderr


def test_nothing_is_written_to_the_source(
    source: PgDatabase, target: PgDatabase, policy: Path
) -> None:
    counters = (
        "SELECT sum(n_tup_ins), sum(n_tup_upd), sum(n_tup_del) FROM pg_stat_all_tables "
        "WHERE relid <> 'pg_catalog.pg_statistic'::regclass"
    )
    # pg_statistic is left out: autovacuum's ANALYZE writes it whenever it gets round to the
    # tables the fixture filled, which on a loaded machine can be during the seed.
    relations = "SELECT count(*) FROM pg_class"
    # Backends flush their statistics as they exit, after the client has seen the connection
    # close: the fixture's own sessions may still be adding to the counters. Start from rest.
    before = _settled(source, counters), rows(source, relations)
    assert seed(source, target, policy).returncode == 0
    after = rows(source, counters), rows(source, relations)
    assert after == before


def _settled(db: PgDatabase, query: str) -> list[tuple[Any, ...]]:
    """``query``'s rows once two reads 0.5 s apart agree (at most 20 s)."""
    deadline = time.monotonic() + 20
    last = rows(db, query)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = rows(db, query)
        if now == last:
            return now
        last = now
    raise AssertionError(f"{query} never settled: {last}")


def test_target_must_be_empty_unless_replace(
    source: PgDatabase, target: PgDatabase, policy: Path
) -> None:
    target.execute("CREATE TABLE leftover (a int)")
    refused = seed(source, target, policy)
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
    not_a_clone = seed(source, target, policy, "--replace")
    assert not_a_clone.returncode == 2
    assert "is not a pgparity clone" in not_a_clone.stderr
    assert rows(target, "SELECT to_regclass('leftover')::text") == [("leftover",)]
    with target.connect() as conn:
        mark_clone(conn, "by-hand")
    replaced = seed(source, target, policy, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert rows(target, "SELECT to_regclass('leftover')") == [(None,)]
    missing_key = seed(source, target, policy, "--replace", key=None)
    assert missing_key.returncode == 2
    assert "PGPARITY_MASKING_KEY" in missing_key.stderr


def test_a_failed_seed_stays_incomplete_and_validate_refuses_it(
    source: PgDatabase, target: PgDatabase, tmp_path: Path
) -> None:
    # The masked phone cannot satisfy this CHECK, so copying users fails half-way.
    source.execute(
        "ALTER TABLE users ADD CONSTRAINT phone_format CHECK (phone IS NULL OR phone LIKE '+1 %')"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    failed = seed(source, target, path)
    assert failed.returncode == 4, failed.stderr
    assert "copying public.users" in failed.stderr
    assert "phone_format" in failed.stderr
    with psycopg.connect(target.dsn, autocommit=True) as conn:
        assert database_settings(conn)["seed_state"] == "incomplete"
    report = validate_sql(target, "SELECT 1;", tmp_path, replica=False)
    assert [f.rule for f in report.findings] == ["seed-incomplete"]


def test_parity_report_after_seeding(source: PgDatabase, target: PgDatabase, policy: Path) -> None:
    result = seed(source, target, policy, "--format", "json")
    assert result.returncode == 0, result.stdout
    report = json.loads(result.stdout)
    parity = report["parity"]
    assert parity["ok"], [c for c in parity["checks"] if not c["ok"]]
    kinds = {c["kind"] for c in parity["checks"]}
    assert {"rows", "table-size", "index-size", "null_frac", "n_distinct"} <= kinds
    assert any(c["note"] == "changed by the mask" for c in parity["checks"])
    assert {b["kind"] for b in report["index_builds"]} >= {"primary key", "index", "foreign key"}
    queries = policy.parent / "queries.yaml"
    queries.write_text("- name: orders of a user\n  sql: SELECT * FROM orders WHERE user_id = 42\n")
    same = pgparity(
        "parity",
        "--production-dsn",
        source.dsn,
        "--staging-dsn",
        target.dsn,
        "--policy",
        str(policy),
        "--queries",
        str(queries),
        "--all",
    )
    assert same.returncode == 0, same.stdout
    assert "orders of a user" in same.stdout
    assert "same shape" in same.stdout
    target.execute("DROP INDEX orders_user_idx")
    other_plan = pgparity(
        "parity",
        "--production-dsn",
        source.dsn,
        "--staging-dsn",
        target.dsn,
        "--policy",
        str(policy),
        "--queries",
        str(queries),
    )
    assert other_plan.returncode == 1
    assert "no longer uses index orders_user_idx" in other_plan.stdout
    target.execute("DELETE FROM orders WHERE id % 2 = 0")
    drifted = pgparity(
        "parity",
        "--production-dsn",
        source.dsn,
        "--staging-dsn",
        target.dsn,
        "--policy",
        str(policy),
    )
    assert drifted.returncode == 1
    assert "public.orders" in drifted.stdout
    assert "OUT OF TOLERANCE" in drifted.stdout


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pgparity-archive-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_snapshot_and_restore_round_trip(
    source: PgDatabase,
    target: PgDatabase,
    target_cluster: LocalCluster,
    policy: Path,
    workdir: Path,
) -> None:
    refused = pgparity("snapshot", "--dsn", source.dsn, "--output", str(workdir / "raw"))
    assert refused.returncode == 2
    assert "not a completed pgparity seed" in refused.stderr
    assert seed(source, target, policy).returncode == 0
    archive = workdir / "archive"
    made = pgparity("snapshot", "--dsn", target.dsn, "--output", str(archive))
    assert made.returncode == 0, made.stderr
    manifest = json.loads((archive / "manifest.json").read_text())
    assert manifest["rows"]["public.users"] == 20001
    assert manifest["policy_sha256"]
    restored_db = _create_database(target_cluster, clone=False)
    try:
        restored = pgparity("restore", "--archive", str(archive), "--target-dsn", restored_db.dsn)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert manifest["schema_digest"] in restored.stdout
        query = "SELECT email, full_name FROM users ORDER BY id LIMIT 20"
        assert rows(restored_db, query) == rows(target, query)
        again = pgparity("restore", "--archive", str(archive), "--target-dsn", restored_db.dsn)
        assert again.returncode == 2
        assert "not empty" in again.stderr
    finally:
        _drop_database(target_cluster, restored_db.name)
    (archive / "manifest.json").unlink()
    unfinished = pgparity("restore", "--archive", str(archive), "--target-dsn", target.dsn)
    assert unfinished.returncode == 2
    assert "no manifest.json" in unfinished.stderr


def test_interrupted_seed_cleans_up_its_sessions(
    source: PgDatabase, target: PgDatabase, policy: Path
) -> None:
    source.execute(
        "INSERT INTO orders (user_id, amount) "
        "SELECT 1 + g % 20000, g % 9 FROM generate_series(1, 1500000) g"
    )
    env = {**os.environ, "PGPARITY_MASKING_KEY": KEY}
    process = subprocess.Popen(
        [
            *PGPARITY,
            "seed",
            "--source-dsn",
            source.dsn,
            "--target-dsn",
            target.dsn,
            "--policy",
            str(policy),
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if "data:" in line:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    with psycopg.connect(target.dsn, autocommit=True) as conn:
        assert database_settings(conn)["seed_state"] == "incomplete"
    leftover = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgparity-seed'"
    assert rows(source, leftover) == [(0,)]


def test_permute_is_a_bijection_that_keeps_joins(
    pg_plain_db: PgDatabase, target: PgDatabase, tmp_path: Path
) -> None:
    pg_plain_db.execute("""
        CREATE TABLE tickets (id int PRIMARY KEY, code bigint UNIQUE NOT NULL);
        CREATE TABLE events (ticket_id int REFERENCES tickets (id), code bigint);
        INSERT INTO tickets SELECT g, g * 1000 FROM generate_series(-500, 4999) g;
        INSERT INTO events SELECT g % 5000, g FROM generate_series(1, 9000) g;
        INSERT INTO events VALUES (NULL, NULL);
    """)
    path = tmp_path / "permute.yaml"
    path.write_text(
        "version: 1\ntables:\n"
        "  public.tickets: {columns: {id: permute, code: permute}}\n"
        "  public.events: {columns: {ticket_id: permute, code: keep}}\n"
    )
    result = seed(pg_plain_db, target, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(
        target, "SELECT count(DISTINCT id), count(DISTINCT code), count(*) FROM tickets"
    ) == [(5500, 5500, 5500)]
    assert rows(target, "SELECT count(*) FROM tickets WHERE id BETWEEN -500 AND 4999") < [
        (100,)
    ]  # the values really moved
    join = "SELECT count(*) FROM events e JOIN tickets t ON t.id = e.ticket_id"
    assert rows(target, join) == rows(pg_plain_db, join) == [(9000,)]
    assert rows(target, "SELECT count(*) FROM events WHERE ticket_id IS NULL") == [(1,)]


def test_every_transform_produces_valid_values(
    pg_plain_db: PgDatabase, target: PgDatabase, tmp_path: Path
) -> None:
    pg_plain_db.execute("""
        CREATE TABLE everything (
            id int PRIMARY KEY, token text, code int, ref uuid, label varchar(12),
            score int, amount numeric(10, 2), seen timestamptz, day date, state text, big bigint);
        INSERT INTO everything
        SELECT g, 'tok-' || g, g, gen_random_uuid(), 'LABEL-' || g, g % 100, g * 1.25,
               timestamptz '2026-01-01' + g * interval '1 hour', date '2026-01-01' + g,
               'state' || (g % 3), g * 100000000000
        FROM generate_series(1, 2000) g;
        INSERT INTO everything (id) VALUES (0);
        ANALYZE everything;  -- the seed's parity check then compares every kept statistic
    """)
    path = tmp_path / "all.yaml"
    path.write_text("""version: 1
tables:
  public.everything:
    columns:
      id: keep
      token: {transform: hash, length: 32}
      code: {transform: hash_int, min: 10, max: 99}
      ref: uuid
      label: {transform: partial, first: 2, last: 1}
      score: {transform: noise, percent: 10}
      amount: {transform: noise, percent: 10}
      seen: {transform: date_trunc, unit: day}
      day: {transform: date_shift, days: 3}
      state: {transform: constant, value: masked}
      big: permute
""")
    result = seed(pg_plain_db, target, path)
    assert result.returncode == 0, result.stdout + result.stderr
    row = rows(
        target,
        "SELECT token, code, ref::text, label, score, amount, seen, day, state "
        "FROM everything WHERE id = 7",
    )[0]
    source_row = rows(pg_plain_db, "SELECT ref::text, day FROM everything WHERE id = 7")[0]
    token, code, ref, label, score, amount, seen, day, state = row
    assert isinstance(token, str)
    assert len(token) == 32
    assert token != "tok-7"
    assert 10 <= int(code) <= 99  # type: ignore[call-overload]
    assert ref != source_row[0]
    assert label == "LA" + "*" * 4 + "7"
    assert 0 <= int(score) <= 10  # type: ignore[call-overload]
    assert str(amount).endswith(".00") or "." in str(amount)
    assert str(seen).endswith("00:00:00+00:00")
    assert abs((day - source_row[1]).days) <= 3  # type: ignore[operator]
    assert state == "masked"
    nulls = rows(
        target,
        "SELECT token, code, ref, label, score, amount, seen, day, state, big "
        "FROM everything WHERE id = 0",
    )[0]
    assert nulls == (None,) * 10
    assert rows(target, "SELECT count(DISTINCT token), count(DISTINCT big) FROM everything") == [
        (2000, 2000)
    ]
