"""`make bench-seed`: anonymized seeding against a plain dump and restore of the same database.

A source of pgbench scale 50 (5 million accounts) plus 1 million users with personal data;
measured side by side in one run, each into an empty database on the same target server:
`pgparity seed` with every personal column transformed, and `pg_dump -Fc | pg_restore`.
Printed: both times, rows/s, MB/s and the ratio (target: seed ≤ 1.0× dump and restore).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from pgparity.pg.localcluster import LocalCluster

SCALE = int(os.environ.get("PGPARITY_BENCH_SCALE", "50"))
USERS = int(os.environ.get("PGPARITY_BENCH_USERS", "1000000"))
JOBS = int(os.environ.get("PGPARITY_BENCH_JOBS", "2"))
KEY = "bench-masking-key-0123456789abcdef"

USERS_SQL = f"""
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name text NOT NULL,
    phone text,
    birth_date date,
    national_id text,
    street_address text,
    notes text,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO users (email, full_name, phone, birth_date, national_id, street_address, notes)
SELECT 'user' || g || '@mail.example', 'First' || g || ' Last' || (g % 997),
       '+1 555 ' || lpad((g % 10000000)::text, 7, '0'), date '1950-01-01' + g % 25000,
       lpad(g::text, 9, '0'), g || ' Main Street, Springfield',
       CASE WHEN g % 3 = 0 THEN NULL ELSE 'customer note number ' || g END
FROM generate_series(1, {USERS}) g;
CREATE INDEX users_created_at_idx ON users (created_at);
ANALYZE;
"""

POLICY = """
version: 1
tables:
  public.pgbench_accounts: {columns: {aid: keep, bid: keep, abalance: keep, filler: keep}}
  public.pgbench_branches: {columns: {bid: keep, bbalance: keep, filler: keep}}
  public.pgbench_tellers: {columns: {tid: keep, bid: keep, tbalance: keep, filler: keep}}
  public.pgbench_history:
    columns: {tid: keep, bid: keep, aid: keep, delta: keep, mtime: keep, filler: keep}
  public.users:
    columns:
      id: keep
      email: {transform: email, unique: true}
      full_name: name
      phone: phone
      birth_date: {transform: date_shift, days: 30}
      national_id: null
      street_address: fill
      notes: fill
      created_at: keep
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def database(cluster: LocalCluster, name: str) -> str:
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return conninfo.make_conninfo(cluster.primary_dsn, dbname=name)


def source_size(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        rows = conn.execute("SELECT sum(n_live_tup) FROM pg_stat_user_tables").fetchone()
    assert size is not None
    assert rows is not None
    return int(size[0]), int(rows[0])


def timed(command: list[str], env: dict[str, str], **kwargs: object) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - started


def main() -> int:
    with (
        LocalCluster(durable=False, replicas=0, settings={"max_wal_size": "4GB"}) as source,
        LocalCluster(durable=False, replicas=0, settings={"max_wal_size": "4GB"}) as target,
        tempfile.TemporaryDirectory() as tmp,
    ):
        assert source.bindir is not None
        log(f"bench-seed: loading pgbench scale {SCALE} and {USERS:,} users into the source")
        env = {**source.client_environment(), "PGOPTIONS": "-c statement_timeout=0"}
        subprocess.run(
            [str(source.bindir / "pgbench"), "-i", "-q", "-s", str(SCALE)],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [str(source.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
            input=USERS_SQL,
            text=True,
            env=env,
            check=True,
        )
        size, rows = source_size(source.primary_dsn)
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)

        seeded = database(target, "seeded")
        log(f"1. pgparity seed --jobs {JOBS} (every personal column masked)")
        seed_env = {**os.environ, "PGPARITY_MASKING_KEY": KEY}
        seed_seconds = timed(
            [
                sys.executable,
                "-m",
                "pgparity",
                "seed",
                "--source-dsn",
                source.primary_dsn,
                "--target-dsn",
                seeded,
                "--policy",
                str(policy),
                "--jobs",
                str(JOBS),
                "--no-parity",
                "--quiet",
            ],
            seed_env,
            stdout=subprocess.DEVNULL,
        )

        restored = database(target, "restored")
        log("2. pg_dump -Fc | pg_restore (no masking)")
        dump = subprocess.Popen(
            [str(source.bindir / "pg_dump"), "-Fc"],
            stdout=subprocess.PIPE,
            env=source.client_environment(),
        )
        target_env = {**target.client_environment(), "PGDATABASE": "restored"}
        plain_seconds = timed(
            [str(source.bindir / "pg_restore"), "--no-owner", "-d", "restored"],
            target_env,
            stdin=dump.stdout,
        )
        dump.wait()
        assert dump.returncode == 0
        del restored
    report(size, rows, seed_seconds, plain_seconds)
    return 0


def report(size: int, rows: int, seed_seconds: float, plain_seconds: float) -> None:
    mb = size / 1024**2
    print("\npgparity seeding benchmark")
    print(
        f"  source: {rows:,} rows, {mb:,.0f} MB (pgbench scale {SCALE} + {USERS:,} users "
        "with personal data)"
    )
    for name, seconds in (
        ("pgparity seed (masked)", seed_seconds),
        ("pg_dump -Fc | pg_restore", plain_seconds),
    ):
        print(
            f"  {name:<26} {seconds:7.1f} s  {rows / seconds:>12,.0f} rows/s  "
            f"{mb / seconds:7.1f} MB/s"
        )
    print(f"  ratio seed / dump+restore: {seed_seconds / plain_seconds:.2f} (target ≤ 1.0)")


if __name__ == "__main__":
    raise SystemExit(main())
