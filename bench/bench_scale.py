"""`make bench-scale`: a migration of thousands of statements, in time and memory linear in it.

Each size N (1000, 2000, 4000 by default) is a migration of N small DDL statements — in fours:
CREATE TABLE with a primary key, ALTER TABLE … ADD COLUMN, CREATE INDEX, COMMENT ON — validated
with `pgparity validate` (the dry-run, the checks with the migration applied and the re-run
check) against a database that already holds 1000 tables. Each size runs in a process of its
own, so its peak RSS is its own. Printed: wall time, time per statement, peak RSS, and the ratio
of each size's time per statement to the smallest's (1.0 is linear).

The cluster allows 256 locks per transaction and connection: a migration that creates 1000
tables holds ~4000 locks at its end, more than the default lock table has room for (the
migration would fail the same way in production, in one transaction).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from pgparity.engine.execute.dryrun import Timeouts
from pgparity.engine.validate import MigrationFile, Target, ValidationOptions, validate
from pgparity.models.quantities import parse_duration
from pgparity.pg.localcluster import LocalCluster

SIZES = tuple(int(n) for n in os.environ.get("PGPARITY_BENCH_SIZES", "1000,2000,4000").split(","))
EXISTING_TABLES = int(os.environ.get("PGPARITY_BENCH_EXISTING", "1000"))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def migration(size: int) -> str:
    statements = []
    for i in range(size):
        table = f"m_{i // 4}"
        statements.append(
            (
                f"CREATE TABLE {table} (id bigint PRIMARY KEY, note text)",
                f"ALTER TABLE {table} ADD COLUMN created timestamptz",
                f"CREATE INDEX {table}_created ON {table} (created)",
                f"COMMENT ON TABLE {table} IS 'statement {i}'",
            )[i % 4]
        )
    return "".join(f"{s};\n" for s in statements)


def one(dsn: str, size: int) -> None:
    """Validate a migration of ``size`` statements; print JSON with the figures."""
    path = Path(tempfile.mkdtemp()) / f"scale_{size}.sql"
    path.write_text(migration(size))
    options = ValidationOptions(timeouts=Timeouts(parse_duration("5s"), parse_duration("10min")))
    progress: list[str] = []
    started = time.perf_counter()
    report = validate(MigrationFile.read(path), Target(dsn), options, progress.append)
    elapsed = time.perf_counter() - started
    executed = sum(1 for s in report.statements if s.executed)
    print(
        json.dumps(
            {
                "size": size,
                "verdict": report.verdict.value,
                "executed": executed,
                "seconds": elapsed,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "progress_lines": sum(1 for line in progress if line.startswith("statement ")),
            }
        )
    )


def prepare(cluster: LocalCluster) -> str:
    dsn = conninfo.make_conninfo(cluster.primary_dsn, dbname="scale")
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE scale")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE scale SET pgparity.clone = 'bench'"))
        for i in range(EXISTING_TABLES):
            conn.execute(
                sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, v text)").format(
                    sql.Identifier(f"existing_{i}")
                )
            )
    return dsn


def main() -> int:
    if len(sys.argv) == 3:
        one(sys.argv[1], int(sys.argv[2]))
        return 0
    settings = {"max_locks_per_transaction": "256", "max_connections": "100"}
    with LocalCluster(durable=False, replicas=1, settings=settings, progress=log) as cluster:
        dsn = prepare(cluster)
        log(f"database with {EXISTING_TABLES} tables ready; sizes {SIZES}")
        rows = []
        for size in SIZES:
            out = subprocess.run(
                [sys.executable, __file__, dsn, str(size)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            rows.append(json.loads(out))
            log(f"{size} statements: {rows[-1]['seconds']:.1f} s")
    base = rows[0]["seconds"] / rows[0]["size"]
    print(
        f"{'statements':>10} {'verdict':>10} {'seconds':>8} {'ms/stmt':>8} {'ratio':>6} "
        f"{'peak RSS':>9} {'progress lines':>15}"
    )
    for row in rows:
        per = row["seconds"] / row["size"]
        print(
            f"{row['size']:>10} {row['verdict']:>10} {row['seconds']:>8.1f} {per * 1000:>8.2f} "
            f"{per / base:>6.2f} {row['peak_rss_mb']:>7.0f}MB {row['progress_lines']:>15}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
