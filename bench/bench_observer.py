"""`make bench`: what observing a dry-run costs, and how short a lock wait it still sees.

1. Observer overhead. The same migration — a rewrite of pgbench_accounts (10 million rows at the
   default scale), several seconds of real work — runs bare with psql inside BEGIN … ROLLBACK and
   under `pgparity validate` with the 50 ms sampler, alternately, a few times each. The figure
   is the ratio of the median durations of the statement (target ≤ 1.05).
2. Detection. A migration holds ACCESS EXCLUSIVE on a small table for W ms while a client reads
   it continuously; for each W, several trials record whether the observer saw the queued
   session and how long it says it waited. The figure is the shortest W seen in every trial
   from there up (target: every wait of 200 ms or more).

Nothing here is a pass/fail test; the numbers are printed side by side, measured in one run.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from pgparity.engine.execute.dryrun import Timeouts
from pgparity.engine.observe.observation import ObservationOptions, TrafficPlan
from pgparity.engine.validate import MigrationFile, Target, ValidationOptions, validate
from pgparity.models.quantities import parse_duration
from pgparity.pg.localcluster import LocalCluster

SCALE = int(os.environ.get("PGPARITY_BENCH_SCALE", "100"))
ROUNDS = int(os.environ.get("PGPARITY_BENCH_ROUNDS", "7"))
TRIALS = int(os.environ.get("PGPARITY_BENCH_TRIALS", "5"))
WAITS_MS = (50, 100, 150, 200, 300, 500)
REWRITE = "ALTER TABLE pgbench_accounts ALTER COLUMN abalance TYPE bigint"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bare_psql_ms(cluster: LocalCluster) -> float:
    """The rewrite's duration as psql's \\timing reports it, inside BEGIN … ROLLBACK."""
    assert cluster.bindir is not None
    script = f"\\timing on\nBEGIN;\n{REWRITE};\nROLLBACK;\n"
    out = subprocess.run(
        [str(cluster.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        input=script,
        capture_output=True,
        text=True,
        check=True,
        env={**cluster.client_environment(), "PGOPTIONS": "-c statement_timeout=0"},
    ).stdout
    times = [float(t) for t in re.findall(r"Time: ([0-9.]+) ms", out)]
    return times[1]  # BEGIN, the rewrite, ROLLBACK


def pgparity_ms(cluster: LocalCluster, workdir: Path, options: ValidationOptions) -> float:
    path = workdir / "rewrite.sql"
    path.write_text(REWRITE + ";\n")
    report = validate(
        MigrationFile.read(path), Target(cluster.primary_dsn, cluster.replica_dsn), options
    )
    duration = report.statements[0].duration_ms
    assert report.statements[0].error is None, report.findings
    assert duration is not None
    return duration


def checkpoint(cluster: LocalCluster) -> None:
    import psycopg

    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    cluster.wait_replay()


def overhead(cluster: LocalCluster, workdir: Path) -> tuple[list[float], list[float]]:
    options = ValidationOptions(
        timeouts=Timeouts(parse_duration("5s"), parse_duration("0")), check_rerun=False
    )
    bare: list[float] = []
    observed: list[float] = []
    # A first rewrite sets hint bits and warms the cache for everyone after it: not counted.
    checkpoint(cluster)
    log(f"  warm-up: bare {bare_psql_ms(cluster):.0f} ms (not counted)")
    for number in range(1, ROUNDS + 1):
        # Alternate which goes first, so drift over the run favours neither.
        order = ["bare", "pgparity"] if number % 2 else ["pgparity", "bare"]
        for name in order:
            checkpoint(cluster)
            if name == "bare":
                bare.append(bare_psql_ms(cluster))
            else:
                observed.append(pgparity_ms(cluster, workdir, options))
        log(f"  round {number}: bare {bare[-1]:.0f} ms, under pgparity {observed[-1]:.0f} ms")
    return bare, observed


def detection(cluster: LocalCluster, workdir: Path) -> dict[int, list[float]]:
    """For each hold time: the waits the observer reported (0.0 where it saw nothing)."""
    traffic = TrafficPlan(auto=True, clients=1, rate=0)
    options = ValidationOptions(
        timeouts=Timeouts(parse_duration("5s"), parse_duration("30s")),
        check_rerun=False,
        observation=ObservationOptions(traffic=traffic),
    )
    seen: dict[int, list[float]] = {}
    for wait_ms in WAITS_MS:
        path = workdir / f"hold_{wait_ms}.sql"
        path.write_text(
            "LOCK TABLE pgbench_branches IN ACCESS EXCLUSIVE MODE;\n"
            f"SELECT pg_sleep({wait_ms / 1000});\n"
        )
        seen[wait_ms] = []
        for _ in range(TRIALS):
            report = validate(
                MigrationFile.read(path), Target(cluster.primary_dsn, cluster.replica_dsn), options
            )
            observation = report.statements[0].observed
            blocked = observation is not None and observation.max_blocked_sessions > 0
            seen[wait_ms].append(
                observation.max_lock_wait_seconds * 1000 if blocked and observation else 0.0
            )
        log(f"  hold {wait_ms} ms: seen {sum(1 for w in seen[wait_ms] if w > 0)}/{TRIALS}")
    return seen


def main() -> int:
    log(f"bench: local primary + replica, pgbench scale {SCALE} ({SCALE * 100_000:,} accounts)")
    with (
        LocalCluster(durable=False, settings={"max_wal_size": "4GB"}) as cluster,
        tempfile.TemporaryDirectory() as tmp,
    ):
        assert cluster.bindir is not None
        subprocess.run(
            [str(cluster.bindir / "pgbench"), "-i", "-q", "-s", str(SCALE)],
            env={**cluster.client_environment(), "PGOPTIONS": "-c statement_timeout=0"},
            check=True,
            capture_output=True,
        )
        cluster.wait_replay()
        log("1. observer overhead (rewrite of pgbench_accounts)")
        bare, observed = overhead(cluster, Path(tmp))
        log("2. detection of lock waits at the default 50 ms period")
        seen = detection(cluster, Path(tmp))
    report(bare, observed, seen)
    return 0


def report(bare: list[float], observed: list[float], seen: dict[int, list[float]]) -> None:
    bare_median, observed_median = statistics.median(bare), statistics.median(observed)
    ratio = observed_median / bare_median
    paired = statistics.median(o / b for o, b in zip(observed, bare, strict=True))
    print("\npgparity benchmark")
    print(
        f"  observer overhead: bare median {bare_median:.0f} ms, under pgparity validate "
        f"(50 ms sampler) median {observed_median:.0f} ms → ratio {ratio:.3f}; median of "
        f"paired ratios {paired:.3f} (target ≤ 1.05; {ROUNDS} rounds each)"
    )
    print("  lock-wait detection at 50 ms (a reader queued behind ACCESS EXCLUSIVE):")
    print(f"    {'held':>8}  {'seen':>6}  {'reported wait (median of seen)':>32}")
    for wait_ms, waits in seen.items():
        hits = [w for w in waits if w > 0]
        median = f"{statistics.median(hits):.0f} ms" if hits else "-"
        print(f"    {wait_ms:>5} ms  {len(hits)}/{len(waits):<4}  {median:>32}")
    reliable = None
    for wait_ms in sorted(seen, reverse=True):
        if all(w > 0 for w in seen[wait_ms]):
            reliable = wait_ms
        else:
            break
    print(
        f"  shortest wait seen in every trial (and all longer ones): "
        f"{f'{reliable} ms' if reliable else 'none'} (target: 200 ms or less)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
