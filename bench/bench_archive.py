"""`make bench-archive`: snapshot to and restore from an S3-compatible store, against pg_dump.

A clone of PGPARITY_BENCH_ARCHIVE_MB (default 512) MB of incompressible bytea plus a
compressible table of PGPARITY_BENCH_ARCHIVE_ROWS (default 2 million) rows; versitygw on
loopback (``make s3-assets``). Measured in one run, with /usr/bin/time: ``pgparity snapshot``
into the store (16 MiB parts, 2 jobs) and ``pgparity restore`` from it (2 jobs), and for
reference ``pg_dump -Fd -j2 -Z1`` to the local disk. Printed: wall time, MB/s of archive bytes,
peak RSS of each, and the ratio to pg_dump. Peak RSS is the figure that shows the streaming: it
stays near parts in flight × part size, whatever the archive's size.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from pgparity.pg.clone import mark_clone, set_database_setting
from pgparity.pg.localcluster import LocalCluster

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fix_s3 import S3Server, running_s3_server  # the tests' server

MB = int(os.environ.get("PGPARITY_BENCH_ARCHIVE_MB", "512"))
ROWS = int(os.environ.get("PGPARITY_BENCH_ARCHIVE_ROWS", "2000000"))
PART_MIB = int(os.environ.get("PGPARITY_BENCH_ARCHIVE_PART_MIB", "16"))
PGPARITY = [sys.executable, "-m", "pgparity"]


def build_clone(dsn: str) -> None:
    blobs = MB * 1024 * 1024 // 16000
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE blobs (id int PRIMARY KEY, payload bytea NOT NULL);"
            "ALTER TABLE blobs ALTER payload SET STORAGE EXTERNAL"
        )
        # 16,000 bytes of md5 output per row: incompressible, like encrypted or media columns.
        conn.execute(
            sql.SQL(
                "INSERT INTO blobs SELECT g, (SELECT decode(string_agg(md5(g::text || ':' || "
                "i::text), ''), 'hex') FROM generate_series(1, 1000) i) "
                "FROM generate_series(1, {}) g"
            ).format(sql.Literal(blobs))
        )
        conn.execute(
            sql.SQL(
                "CREATE TABLE orders AS SELECT g AS id, g % 5000 AS customer_id, "
                "(g % 997)::numeric(12, 2) AS amount, 'order number ' || g AS note "
                "FROM generate_series(1, {}) g; ALTER TABLE orders ADD PRIMARY KEY (id)"
            ).format(sql.Literal(ROWS))
        )
        conn.execute("ANALYZE")
        mark_clone(conn, "bench")
        set_database_setting(conn, "seed_state", "complete")
        set_database_setting(conn, "policy_sha256", "0" * 64)


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB (/usr/bin/time -v), stdout."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{command[:4]} failed: {result.stderr[-3000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return wall, int(peak.group(1)) / 1024 if peak else float("nan"), result.stdout


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="pgparity-bench-archive-"))
    try:
        with running_s3_server() as server, LocalCluster(durable=False, replicas=0) as cluster:
            run(cluster, server, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(cluster: LocalCluster, server: S3Server, workdir: Path) -> None:
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE clone")
        conn.execute("CREATE DATABASE restored")
    clone = conninfo.make_conninfo(cluster.primary_dsn, dbname="clone")
    restored = conninfo.make_conninfo(cluster.primary_dsn, dbname="restored")
    print(f"building the clone: {MB} MB of bytea, {ROWS:,} orders …", flush=True)
    build_clone(clone)
    server.bucket("bench")
    env = server.environment()
    url = "s3://bench/nightly/one.pgparity"
    up, up_rss, out = timed(
        [*PGPARITY, "snapshot", "--dsn", clone, "--output", url, "--part-size", str(PART_MIB),
         "--jobs", "2", "--quiet"],
        env,
    )  # fmt: skip
    size = int(re.search(r"([\d,]+) bytes", out).group(1).replace(",", ""))  # type: ignore[union-attr]
    down, down_rss, _ = timed(
        [*PGPARITY, "restore", "--archive", url, "--target-dsn", restored, "--jobs", "2",
         "--quiet"],
        env,
    )  # fmt: skip
    bindir = cluster.bindir
    assert bindir is not None
    dump, dump_rss, _ = timed(
        [str(bindir / "pg_dump"), "-Fd", "-j2", "-Z1", "-f", str(workdir / "dump"), "-d", clone],
        env,
    )
    mb = size / 1e6
    print(f"archive: {mb:,.0f} MB in {PART_MIB} MiB parts")
    print(f"snapshot → S3: {up:6.1f} s  {mb / up:6.1f} MB/s  peak RSS {up_rss:6.0f} MB")
    print(f"restore ← S3:  {down:6.1f} s  {mb / down:6.1f} MB/s  peak RSS {down_rss:6.0f} MB")
    print(f"pg_dump -Fd -j2 -Z1 to disk: {dump:6.1f} s  peak RSS {dump_rss:6.0f} MB")
    print(f"snapshot / pg_dump: {up / dump:.2f}×")


if __name__ == "__main__":
    main()
