"""`make demo`: the main job, end to end, on the embedded default (local PostgreSQL).

Creates a local primary + streaming replica configured like a production database, loads an
example schema at a volume where costs show (pgbench's 5 million accounts, 1 million users,
2 million orders), validates the bundled migrations with `pgparity validate`, prints each
report and a one-line summary each, and removes the cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from psycopg import conninfo

from pgparity.pg.localcluster import LocalCluster

HERE = Path(__file__).resolve().parent
PGBENCH_SCALE = int(os.environ.get("PGPARITY_DEMO_SCALE", "50"))  # 100,000 accounts each
# What production runs with: the dry-run must meet the same limits.
PRODUCTION = {
    "lock_timeout": "2s",
    "statement_timeout": "5s",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
}
MIGRATIONS = [
    ("001_add_nickname.sql", []),
    ("002_widen_balance.sql", []),
    # Blocking locks are warnings by default; a team that forbids them runs with --strict.
    ("003_index_orders.sql", ["--strict"]),
    # Under production-like traffic, with a long reader holding ACCESS SHARE on orders.
    (
        "004_orders_note_under_traffic.sql",
        ["--traffic", "auto", "--hold-lock", "public.orders:5", "--max-blocked-sessions", "2"],
    ),
]


def say(message: str) -> None:
    print(f"\n=== {message}", flush=True)


def load(cluster: LocalCluster) -> None:
    env = {**cluster.client_environment(), "PGOPTIONS": "-c statement_timeout=0"}
    started = time.monotonic()
    assert cluster.bindir is not None
    subprocess.run(
        [str(cluster.bindir / "pgbench"), "-i", "-q", "-s", str(PGBENCH_SCALE)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cluster.run_sql_file(HERE / "seed.sql")
    cluster.wait_replay()
    print(
        f"loaded {PGBENCH_SCALE * 100_000:,} accounts, 1,000,000 users, 2,000,000 orders "
        f"in {time.monotonic() - started:.0f} s; the replica has replayed it all"
    )


def validate(cluster: LocalCluster, name: str, extra: list[str]) -> tuple[int, str]:
    # The password travels in the environment, not on a command line other users can see.
    params = conninfo.conninfo_to_dict(cluster.primary_dsn)
    env = {**os.environ, "PGPASSWORD": str(params.pop("password"))}
    replica = conninfo.conninfo_to_dict(cluster.replica_dsn or "")
    replica.pop("password", None)
    command = [
        sys.executable,
        "-m",
        "pgparity",
        "validate",
        "--migration",
        str(HERE / "migrations" / name),
        "--dsn",
        conninfo.make_conninfo(**params),
        "--replica-dsn",
        conninfo.make_conninfo(**replica),
        "--lock-timeout",
        PRODUCTION["lock_timeout"],
        "--statement-timeout",
        PRODUCTION["statement_timeout"],
        *extra,
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    print(result.stdout, end="")
    if result.returncode not in (0, 1):
        print(result.stderr, end="", file=sys.stderr)
    summary = next(
        (
            line.removeprefix("verdict    ")
            for line in result.stdout.splitlines()
            if line.startswith("verdict ")
        ),
        result.stderr.strip(),
    )
    return result.returncode, summary


def main() -> int:
    say(
        "creating a local primary + streaming replica with production settings: "
        + ", ".join(f"{k}={v}" for k, v in PRODUCTION.items())
    )
    with LocalCluster(settings=PRODUCTION, progress=lambda m: print(f"  {m}")) as cluster:
        say("loading the example schema at production-like volume")
        load(cluster)
        summaries = []
        for name, extra in MIGRATIONS:
            say(f"pgparity validate {name} {' '.join(extra)}".rstrip())
            summaries.append(validate(cluster, name, extra))
    say("summary")
    for code, line in summaries:
        print(f"  exit {code}  {line}")
    expected = [0, 1, 1, 1]
    if [code for code, _ in summaries] != expected:
        print(f"unexpected exit codes (expected {expected})", file=sys.stderr)
        return 1
    print("\nthe local cluster has been removed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
