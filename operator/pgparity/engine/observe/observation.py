"""Run a dry-run inside production-like surroundings and say what they went through.

``ObservedRun`` is a context manager around the dry-run: on entry it starts the observer,
the traffic (and lets it run for a warm-up, so latencies before the migration are known) and
the long readers of ``--hold-lock``; the dry-run marks each statement; on exit it releases the
readers, lets the traffic run a little longer, waits for the replicas to replay what the
migration wrote, and stops everything — also when the migration fails or Ctrl-C arrives — so no
session is left behind.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

import psycopg

from pgparity.engine.observe.holdlock import HoldLock, LockHolder
from pgparity.engine.observe.observer import (
    DEFAULT_PERIOD_SECONDS,
    OBSERVER_OPTIONS,
    Observer,
    Summary,
    observation_gaps,
    summarize,
    without_gaps,
)
from pgparity.engine.observe.traffic import (
    TrafficRunner,
    auto_workload,
    existing_tables,
    seconds,
    traffic_report,
)
from pgparity.models.progress import Progress, quiet
from pgparity.models.report import (
    ObservationGap,
    Observed,
    PlanComparison,
    StatementResult,
    TrafficReport,
)
from pgparity.models.workload import Workload
from pgparity.pg.connection import connect
from pgparity.pg.replication import wait_for_replay

REPLICA_CATCHUP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class Budgets:
    """Limits on the cost to the application; exceeding one rejects the migration."""

    max_lock_wait_seconds: float | None = None
    max_blocked_sessions: int | None = None
    max_lag_bytes: int | None = None
    max_lag_seconds: float | None = None


@dataclass(frozen=True)
class TrafficPlan:
    """``auto`` derives a workload from the catalog; otherwise ``workload`` is used."""

    auto: bool = False
    workload: Workload | None = None
    clients: int = 4
    rate: float = 20.0


@dataclass(frozen=True)
class ObservationOptions:
    period: float = DEFAULT_PERIOD_SECONDS
    traffic: TrafficPlan | None = None
    hold_locks: tuple[HoldLock, ...] = ()
    budgets: Budgets = field(default_factory=Budgets)
    catchup_timeout: float = REPLICA_CATCHUP_TIMEOUT_SECONDS


@dataclass(frozen=True)
class ObservationResult:
    summary: Summary
    period: float
    samples: int
    sampling_errors: int
    window_seconds: float
    replica_catchup_seconds: float | None
    traffic: TrafficReport | None
    gaps: tuple[ObservationGap, ...] = ()

    def observed(self, plans: Sequence[PlanComparison] = ()) -> Observed:
        """The report's account of the run, with the plans compared after it."""
        summary = self.summary
        return Observed(
            max_lock_wait_seconds=summary.max_lock_wait_seconds,
            max_blocked_sessions=summary.max_blocked_sessions,
            migration_lock_wait_seconds=summary.migration_lock_wait_seconds,
            max_replication_lag_bytes=summary.max_replication_lag_bytes,
            max_replication_lag_seconds=summary.max_replication_lag_seconds,
            observation_gaps=self.gaps,
            replica_catchup_seconds=self.replica_catchup_seconds,
            sample_period_ms=self.period * 1000,
            samples=self.samples,
            sampling_errors=self.sampling_errors,
            migration_window_seconds=self.window_seconds,
            traffic=self.traffic,
            plans=tuple(plans),
        )


class ObservedRun:
    def __init__(
        self,
        dsn: str,
        replica_dsn: str | None,
        options: ObservationOptions,
        migration_pid: int,
        referenced: Sequence[str],
        progress: Progress = quiet,
    ) -> None:
        self._dsn = dsn
        self._replica_dsn = replica_dsn
        self._options = options
        self._referenced = referenced
        self._progress = progress
        self._observer = Observer(dsn, replica_dsn=replica_dsn, period=options.period)
        self._traffic: TrafficRunner | None = None
        self._holders: list[LockHolder] = []
        self._pids = {migration_pid}
        self._started: float | None = None
        self._ended: float | None = None
        self._traffic_started = 0.0
        self._catchup: float | None = None

    def mark(self, statement: int | None) -> None:
        now = time.monotonic()
        if statement is not None and self._started is None:
            self._started = now
        if statement is None and self._started is not None:
            self._ended = now
        self._observer.mark(statement)

    def add_migration_session(self, pid: int) -> None:
        self._pids.add(pid)

    def __enter__(self) -> ObservedRun:
        try:
            self._observer.start()
            self._start_traffic()
            for hold in self._options.hold_locks:
                holder = LockHolder(self._dsn, hold)
                holder.start()
                self._holders.append(holder)
                self._progress(f"holding ACCESS SHARE on {hold.table} for {hold.seconds:g} s")
        except BaseException:
            self._shutdown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._shutdown(wait=exc_type is None)

    def _start_traffic(self) -> None:
        plan = self._options.traffic
        if plan is None:
            return
        workload = plan.workload
        if plan.auto:
            with connect(self._dsn, role="target", read_only=True) as conn:
                tables = existing_tables(conn, self._referenced)
                workload = auto_workload(conn, tables, clients=plan.clients, rate=plan.rate)
            if workload is None:
                self._progress("traffic: the migration touches no existing table; no traffic")
                return
            self._progress("traffic: " + ", ".join(s.name or s.sql for s in workload.statements))
        assert workload is not None
        self._traffic = TrafficRunner(self._dsn, workload)
        self._traffic.start()
        self._traffic_started = time.monotonic()
        warmup = seconds(workload.warmup)
        self._progress(
            f"traffic: {workload.clients} clients at {workload.rate:g}/s each; "
            f"{warmup:g} s warm-up before the migration"
        )
        time.sleep(warmup)

    def _shutdown(self, wait: bool = False) -> None:
        for holder in self._holders:
            holder.stop()
        if self._ended is None and self._started is not None:
            self._ended = time.monotonic()
        if self._traffic is not None:
            if wait:
                time.sleep(self._traffic_tail())
            self._traffic.stop()
        if wait:
            self._catchup = self._wait_for_replicas()
        self._observer.stop()

    def _traffic_tail(self) -> float:
        """Traffic after the migration: the cool-down, or longer to fill ``duration``."""
        assert self._traffic is not None
        workload = self._traffic.workload
        tail = seconds(workload.cooldown)
        if workload.duration:
            elapsed = time.monotonic() - self._traffic_started
            tail = max(tail, seconds(workload.duration) - elapsed)
        return tail

    def _wait_for_replicas(self) -> float | None:
        """Seconds until every replica has replayed what the primary had written at the end."""
        started = time.monotonic()
        try:
            with connect(self._dsn, role="target", session_options=OBSERVER_OPTIONS) as conn:
                row = conn.execute(
                    "SELECT pg_current_wal_lsn(), count(*), count(replay_lsn) "
                    "FROM pg_stat_replication"
                ).fetchone()
                # No replica, or positions this role may not see: nothing to wait for.
                if row is None or not row[1] or row[2] < row[1]:
                    return None
                end, replicas, _ = row
                waited = wait_for_replay(
                    conn,
                    str(end),
                    int(replicas),
                    timeout=self._options.catchup_timeout - (time.monotonic() - started),
                    period=self._options.period,
                )
        except psycopg.Error:
            return None
        return None if waited is None else time.monotonic() - started

    def result(self, results: Sequence[StatementResult]) -> ObservationResult:
        """Summarize, charging waits to the statements whose locks caused them."""
        locks = {r.index: {lock.relation for lock in r.locks} for r in results}
        samples = self._observer.samples
        window = (self._started or 0.0, self._ended or self._started or 0.0)
        traffic = None
        if self._traffic is not None:
            traffic = traffic_report(self._traffic.outcome, window)
        gaps = observation_gaps(
            samples,
            window if self._started is not None else None,
            self._observer.period,
            replica_given=self._replica_dsn is not None,
        )
        return ObservationResult(
            summary=without_gaps(summarize(samples, self._pids, locks), gaps),
            gaps=tuple(gaps),
            period=self._observer.period,
            samples=samples.ticks,
            sampling_errors=len(samples.errors),
            window_seconds=window[1] - window[0],
            replica_catchup_seconds=self._catchup,
            traffic=traffic,
        )
