"""`make bench-seed`: anonymized seeding against a plain dump and restore, and its source CPU.

Source: pgbench at ``--scale`` (default 50: 5 M accounts) plus 20,000 users per scale unit
(1 M) with seven personal columns; target: a second server on the same machine. Every round
runs each side once, in an order rotated from round to round, into an empty database:

- the anchor, ``pg_dump -Fc | pg_restore`` (no masking);
- for each ``--jobs`` value: ``pgparity seed`` with every personal column masked, once with the
  builtin HMAC and once with pgcrypto installed on the source (pgparity then uses its
  ``hmac()``), and ``pgparity seed`` with a keep-everything policy.

Printed per side: the median time, the **median of the ratios to the anchor of the same round**
(one round per side is too noisy to steer by on a shared machine), rows/s and MB/s, and the CPU
the source's backends spent — what production pays — in seconds and per GB of source table data.
That CPU is read from ``/proc/<pid>/stat`` of the backends serving the run (found by
``application_name`` in ``pg_stat_activity``, sampled every 25 ms); the CPU of every backend the
source's postmaster reaped during the run is printed beside it as a check (the source has no
other clients and autovacuum is off, so the two agree unless a backend exits between samples).

Last, the HMAC floor: the source CPU of a ``COPY`` of the users with only the HMACs of their
keyed columns whose values are all distinct added (each construction), over the plain ``COPY``
— the part of the masking cost no transform can go below.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import psycopg
from psycopg import conninfo, sql

from pgparity.pg.localcluster import LocalCluster
from pgparity.seed.mac import Mac, choose_mac

USERS_PER_SCALE = 20_000
KEY = "bench-masking-key-0123456789abcdef"
SAMPLE_SECONDS = 0.025
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETTINGS = {"max_wal_size": "4GB", "autovacuum": "off"}
PGCRYPTO_SCHEMA = "crypto"  # not on the search_path: pgparity must call it schema-qualified

USERS_SQL = """
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
FROM generate_series(1, {users}) g;
CREATE INDEX users_created_at_idx ON users (created_at);
"""

PGBENCH_TABLES = """
  public.pgbench_accounts: {columns: {aid: keep, bid: keep, abalance: keep, filler: keep}}
  public.pgbench_branches: {columns: {bid: keep, bbalance: keep, filler: keep}}
  public.pgbench_tellers: {columns: {tid: keep, bid: keep, tbalance: keep, filler: keep}}
  public.pgbench_history:
    columns: {tid: keep, bid: keep, aid: keep, delta: keep, mtime: keep, filler: keep}
"""
MASKED_POLICY = f"""
version: 1
tables:{PGBENCH_TABLES}
  public.users:
    columns:
      id: keep
      email: {{transform: email, unique: true}}
      full_name: name
      phone: phone
      birth_date: {{transform: date_shift, days: 30}}
      national_id: null
      street_address: fill
      notes: fill
      created_at: keep
"""
KEEP_POLICY = f"""
version: 1
tables:{PGBENCH_TABLES}
  public.users:
    columns: {{id: keep, email: keep, full_name: keep, phone: keep, birth_date: keep,
               national_id: keep, street_address: keep, notes: keep, created_at: keep}}
"""


class Mask(StrEnum):
    BUILTIN = "masked, builtin HMAC"
    PGCRYPTO = "masked, pgcrypto hmac()"
    KEEP = "keep everything"


@dataclass(frozen=True)
class Side:
    """One way of copying the source: the anchor (mask None) or a seed."""

    mask: Mask | None = None
    jobs: int = 0

    @property
    def label(self) -> str:
        if self.mask is None:
            return "pg_dump -Fc | pg_restore"
        return f"seed --jobs {self.jobs}, {self.mask}"


ANCHOR = Side()
HASHED: tuple[Mask, ...] = (Mask.BUILTIN, Mask.PGCRYPTO)


@dataclass
class Measured:
    seconds: list[float] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    source_cpu: list[float] = field(default_factory=list)
    reaped_cpu: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Source:
    cluster: LocalCluster
    rows: int
    table_bytes: int
    users: int
    scale: int


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def process_cpu(pid: int, *, children: bool = False) -> float | None:
    """CPU seconds (user + system) of a process, or of its reaped children; None once gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    first = 13 if children else 11  # utime, stime / cutime, cstime (proc(5), from field 3)
    return (int(fields[first]) + int(fields[first + 1])) / CLOCK_TICKS


class BackendCpu(threading.Thread):
    """Samples the CPU of the source backends whose application_name is one of ``names``."""

    def __init__(self, dsn: str, names: tuple[str, ...]) -> None:
        super().__init__(daemon=True, name="bench-backend-cpu")
        self._conn = psycopg.connect(dsn, autocommit=True)
        self._names = list(names)
        self._latest: dict[int, float] = {}
        self._done = threading.Event()

    def run(self) -> None:
        query = "SELECT pid FROM pg_stat_activity WHERE application_name = ANY (%s)"
        while not self._done.wait(SAMPLE_SECONDS):
            pids = {int(row[0]) for row in self._conn.execute(query, (self._names,))}
            for pid in pids | set(self._latest):
                seconds = process_cpu(pid)
                if seconds is not None:
                    self._latest[pid] = seconds

    def stop(self) -> float:
        self._done.set()
        self.join()
        self._conn.close()
        return sum(self._latest.values())


@contextmanager
def source_cpu(source: Source, names: tuple[str, ...], into: Measured) -> Iterator[None]:
    """Record the CPU the source's backends spend inside the block."""
    assert source.cluster.primary is not None
    assert source.cluster.primary.process is not None
    postmaster = source.cluster.primary.process.pid
    sampler = BackendCpu(source.cluster.primary_dsn, names)
    reaped_before = process_cpu(postmaster, children=True) or 0.0
    sampler.start()
    try:
        yield
    finally:
        sampled = sampler.stop()
    # Backends that ended are reaped by the postmaster within milliseconds.
    time.sleep(0.2)
    into.source_cpu.append(sampled)
    into.reaped_cpu.append((process_cpu(postmaster, children=True) or 0.0) - reaped_before)


def load_source(cluster: LocalCluster, scale: int) -> Source:
    assert cluster.bindir is not None
    users = USERS_PER_SCALE * scale
    log(f"bench-seed: loading pgbench scale {scale} and {users:,} users into the source")
    env = {**cluster.client_environment(), "PGOPTIONS": "-c statement_timeout=0"}
    subprocess.run(
        [str(cluster.bindir / "pgbench"), "-i", "-q", "-s", str(scale)],
        env=env,
        check=True,
        capture_output=True,
    )
    psql = [str(cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    subprocess.run(psql, input=USERS_SQL.format(users=users), text=True, env=env, check=True)
    # Hint bits and statistics now, so that no side pays for setting them.
    subprocess.run([*psql, "-c", "VACUUM (FREEZE, ANALYZE)"], env=env, check=True)
    with psycopg.connect(cluster.primary_dsn) as conn:
        row = conn.execute(
            "SELECT sum(n_live_tup)::int8, sum(pg_table_size(relid))::int8 FROM pg_stat_user_tables"
        ).fetchone()
    assert row is not None
    return Source(cluster, int(row[0]), int(row[1]), users, scale)


def set_pgcrypto(source: Source, installed: bool) -> None:
    """What a DBA would have done (pgparity never creates anything on its source)."""
    with psycopg.connect(source.cluster.primary_dsn, autocommit=True) as conn:
        schema = sql.Identifier(PGCRYPTO_SCHEMA)
        if installed:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS pgcrypto SCHEMA {}").format(schema)
            )
        else:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


@contextmanager
def empty_database(target: LocalCluster, name: str) -> Iterator[str]:
    with psycopg.connect(target.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield conninfo.make_conninfo(target.primary_dsn, dbname=name)
    finally:
        with psycopg.connect(target.primary_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute("CHECKPOINT")


def run_anchor(source: Source, target: LocalCluster, database: str) -> float:
    assert source.cluster.bindir is not None
    started = time.perf_counter()
    dump = subprocess.Popen(
        [str(source.cluster.bindir / "pg_dump"), "-Fc"],
        stdout=subprocess.PIPE,
        env=source.cluster.client_environment(),
    )
    subprocess.run(
        [str(source.cluster.bindir / "pg_restore"), "--no-owner", "-d", database],
        env={**target.client_environment(), "PGDATABASE": database},
        stdin=dump.stdout,
        check=True,
    )
    assert dump.stdout is not None
    dump.stdout.close()
    if dump.wait() != 0:
        raise RuntimeError("pg_dump failed")
    return time.perf_counter() - started


def run_seed(source: Source, side: Side, target_dsn: str, policy: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable, "-m", "pgparity", "seed",
            "--source-dsn", source.cluster.primary_dsn, "--target-dsn", target_dsn,
            "--policy", str(policy), "--jobs", str(side.jobs),
            "--no-parity", "--quiet", "--format", "json",
        ],
        env={**os.environ, "PGPARITY_MASKING_KEY": KEY},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"seed failed: {result.stderr.strip()}")
    phases = json.loads(result.stdout).get("phases_seconds", {})
    log("      phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return seconds


def one_round(
    source: Source, target: LocalCluster, sides: list[Side], policies: dict[Mask, Path]
) -> dict[Side, tuple[float, Measured]]:
    results: dict[Side, tuple[float, Measured]] = {}
    for number, side in enumerate(sides):
        measured = Measured()
        set_pgcrypto(source, side.mask is Mask.PGCRYPTO)
        names = ("pg_dump",) if side.mask is None else ("pgparity-seed", "pg_dump")
        with (
            empty_database(target, f"bench_{number}") as database,
            source_cpu(source, names, measured),
        ):
            if side.mask is None:
                seconds = run_anchor(source, target, f"bench_{number}")
            else:
                seconds = run_seed(source, side, database, policies[side.mask])
        log(
            f"    {side.label:<48} {seconds:6.1f} s   source CPU {measured.source_cpu[0]:5.1f} s "
            f"(reaped {measured.reaped_cpu[0]:.1f} s)   load {load_average()}"
        )
        results[side] = (seconds, measured)
    set_pgcrypto(source, False)
    return results


# The users' columns whose values are unique, so every row computes their HMAC (birth dates
# repeat: their HMAC is computed once per distinct value).
UNIQUE_KEYED = ("email", "full_name", "phone")


def hmac_floor(source: Source, pgcrypto: bool) -> float:
    """Source CPU of a COPY of the users with just the HMACs of their unique keyed columns
    added, over the COPY of the users as they are: what no transform can go below."""
    set_pgcrypto(source, pgcrypto)
    try:
        with psycopg.connect(source.cluster.primary_dsn, autocommit=True) as probe:
            mac = choose_mac(probe, KEY.encode())
        return _copy_cpu(source, mac, hashed=True) - _copy_cpu(source, mac, hashed=False)
    finally:
        set_pgcrypto(source, False)


def _copy_cpu(source: Source, mac: Mac, *, hashed: bool) -> float:
    columns: list[sql.Composable] = [sql.SQL("src.*")]
    if hashed:
        columns += [mac.of_text(sql.Identifier("src", c)) for c in UNIQUE_KEYED]
    query = sql.SQL("COPY (SELECT {} FROM users AS src) TO STDOUT (FORMAT binary)").format(
        sql.SQL(", ").join(columns)
    )
    options = mac.session_options(KEY.encode())
    with psycopg.connect(source.cluster.primary_dsn, options=options) as conn:
        pid = conn.info.backend_pid
        seconds = []
        for _ in range(3):
            before = process_cpu(pid) or 0.0
            with conn.cursor().copy(query) as copy:
                for _block in copy:
                    pass
            seconds.append((process_cpu(pid) or 0.0) - before)
    return statistics.median(seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every side (>= 3)")
    parser.add_argument("--jobs", default="1,2,4", help="seed --jobs values, comma-separated")
    parser.add_argument("--scale", type=int, default=50, help="pgbench scale; 20,000 users each")
    args = parser.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    sides = [ANCHOR, *(Side(mask, j) for j in jobs for mask in Mask)]
    results = {side: Measured() for side in sides}
    started_load = load_average()
    with (
        LocalCluster(durable=False, replicas=0, settings=SETTINGS) as source_cluster,
        LocalCluster(durable=False, replicas=0, settings=SETTINGS) as target,
        tempfile.TemporaryDirectory() as tmp,
    ):
        source = load_source(source_cluster, args.scale)
        policies = {mask: Path(tmp) / f"{mask.name.lower()}.yaml" for mask in Mask}
        for mask, path in policies.items():
            path.write_text(KEEP_POLICY if mask is Mask.KEEP else MASKED_POLICY)
        for number in range(args.rounds):
            order = collections.deque(sides)
            order.rotate(number)
            log(f"  round {number + 1} of {args.rounds}")
            for side, (seconds, measured) in one_round(
                source, target, list(order), policies
            ).items():
                results[side].seconds.append(seconds)
                results[side].source_cpu += measured.source_cpu
                results[side].reaped_cpu += measured.reaped_cpu
        log("  the HMAC floor")
        floors = {mask: hmac_floor(source, mask is Mask.PGCRYPTO) for mask in HASHED}
    for number in range(args.rounds):
        anchor = results[ANCHOR].seconds[number]
        for measured in results.values():
            measured.ratios.append(measured.seconds[number] / anchor)
    report(source, results, args.rounds, (started_load, load_average()))
    report_floor(source, results, floors)
    return 0


def report(
    source: Source, results: dict[Side, Measured], rounds: int, load: tuple[str, str]
) -> None:
    mb, gb = source.table_bytes / 1024**2, source.table_bytes / 1024**3
    print("\npgparity seeding benchmark")
    print(
        f"  source: {source.rows:,} rows, {mb:,.0f} MB of table data (pgbench scale "
        f"{source.scale} + {source.users:,} users with seven personal columns); "
        f"{rounds} rounds, sides alternated; {os.cpu_count()} cores, load average "
        f"{load[0]} before, {load[1]} after"
    )
    print(
        f"  {'side':<50} {'median':>8} {'ratio':>6} {'rows/s':>11} {'MB/s':>7} "
        f"{'source CPU':>11} {'CPU s/GB':>9} {'reaped':>7}"
    )
    for side, measured in results.items():
        seconds = statistics.median(measured.seconds)
        cpu = statistics.median(measured.source_cpu)
        print(
            f"  {side.label:<50} {seconds:6.1f} s {statistics.median(measured.ratios):6.2f} "
            f"{source.rows / seconds:>11,.0f} {mb / seconds:7.1f} {cpu:9.1f} s {cpu / gb:9.2f} "
            f"{statistics.median(measured.reaped_cpu):5.1f} s"
        )
    print(
        "  ratio: median over rounds of (side / pg_dump | pg_restore of the same round); "
        "targets for the masked seed: ≤ 1.0 with pgcrypto, ≤ 1.15 without"
    )


def report_floor(source: Source, results: dict[Side, Measured], floors: dict[Mask, float]) -> None:
    """How much of what masking costs the source is the keyed HMAC itself."""
    keep = statistics.median(
        cpu for side, m in results.items() if side.mask is Mask.KEEP for cpu in m.source_cpu
    )
    print(
        f"  the HMAC floor: {len(UNIQUE_KEYED)} keyed columns with a distinct value per row "
        f"({', '.join(UNIQUE_KEYED)}); their HMACs alone, added to a COPY of the users"
    )
    for mask, floor in floors.items():
        masked = statistics.median(
            cpu for side, m in results.items() if side.mask is mask for cpu in m.source_cpu
        )
        extra = masked - keep
        print(
            f"    {mask.value:<26} HMACs {floor:5.1f} s = {floor / source.users * 1e6:4.2f} µs "
            f"per user row; all masking {extra:5.1f} s over keep-everything "
            f"({floor / extra:.0%} of it is the HMACs)"
        )


if __name__ == "__main__":
    raise SystemExit(main())
