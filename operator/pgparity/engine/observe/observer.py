"""Watch the database while a migration runs: lock queues, blocked sessions, replication lag.

An ``Observer`` samples, from sessions of its own, every ``period`` (50 ms by default):
every session waiting for a lock, since when and behind whom (``pg_locks``,
``pg_stat_activity``, ``pg_blocking_pids()``), and how far the replicas are behind
(``pg_stat_replication`` on the primary, ``pg_last_wal_replay_lsn()`` on a replica). The
dry-run marks which statement is running; ``summarize`` — a pure function — turns the samples
into per-statement observations: the most sessions blocked behind the migration at once, the
longest wait, the migration's own waits, who blocked whom, and the largest lag.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

import psycopg

from pgparity.engine.observe import observer_sql
from pgparity.models.report import BlockingEdge, ObservationGap, Quantity, StatementObservation
from pgparity.pg.connection import connect
from pgparity.pg.replication import parse_lsn

DEFAULT_PERIOD_SECONDS = 0.05
OBSERVER_APPLICATION = "pgparity-observer"
# The observer's own sessions resolve names in the catalog and give up on a stuck query.
OBSERVER_OPTIONS = "-c search_path=pg_catalog,pg_temp -c statement_timeout=5s"
T = TypeVar("T")


@dataclass(frozen=True)
class Waiter:
    pid: int
    application: str
    query: str
    waitstart: float | None
    mode: str | None
    relation: str | None
    blockers: tuple[int, ...]


@dataclass(frozen=True)
class ActivitySample:
    at: float
    statement: int | None
    waiters: tuple[Waiter, ...]
    names: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicationSample:
    at: float
    statement: int | None
    lag_bytes: int
    lag_seconds: float | None
    replicas: int
    hidden: int = 0  # replicas whose position this role may not see
    taken: float = 0.0  # time.monotonic(), comparable with the migration's window
    replica_measured: bool = False  # lag_bytes includes the replica's own replay position


class Source(StrEnum):
    """Which of the observer's sessions a sample failed on."""

    PRIMARY = "primary"
    REPLICA = "replica"


@dataclass(frozen=True)
class SamplingFailure:
    taken: float  # time.monotonic()
    source: Source
    message: str


@dataclass
class Samples:
    activity: list[ActivitySample] = field(default_factory=list)
    replication: list[ReplicationSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failures: list[SamplingFailure] = field(default_factory=list)
    stopped: float | None = None  # time.monotonic() when the sampler gave up before the end
    ticks: int = 0
    waitstart: bool = True  # the server has pg_locks.waitstart (PostgreSQL 14+)


class Observer:
    """A sampling thread; ``mark(index)`` says which statement runs, ``None`` between them."""

    def __init__(
        self, dsn: str, *, replica_dsn: str | None = None, period: float = DEFAULT_PERIOD_SECONDS
    ) -> None:
        self._dsn = dsn
        self._replica_dsn = replica_dsn
        self._period = period
        self._statement: int | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgparity-observer", daemon=True)
        self._conn: psycopg.Connection[Any] | None = None
        self._replica: psycopg.Connection[Any] | None = None
        self.samples = Samples()

    @property
    def period(self) -> float:
        return self._period

    def mark(self, statement: int | None) -> None:
        self._statement = statement

    def start(self) -> None:
        # Connect here, not in the thread, so an unreachable database fails the run at once.
        self._conn = connect(
            self._dsn,
            role="target (observer)",
            application_name=OBSERVER_APPLICATION,
            session_options=OBSERVER_OPTIONS,
        )
        self.samples.waitstart = self._conn.info.server_version >= observer_sql.WAITSTART_SINCE
        if self._replica_dsn:
            self._replica = connect(
                self._replica_dsn,
                role="replica (observer)",
                application_name=OBSERVER_APPLICATION,
                session_options=OBSERVER_OPTIONS,
            )
        self._thread.start()
        self._ready.wait(timeout=5)

    def stop(self) -> Samples:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for conn in (self._conn, self._replica):
            if conn is not None:
                conn.close()
        return self.samples

    def __enter__(self) -> Observer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        next_tick = time.monotonic()
        try:
            while not self._stop.is_set() and not (self._conn is None or self._conn.closed):
                self._tick()
                self._ready.set()
                next_tick += self._period
                self._stop.wait(max(0.0, next_tick - time.monotonic()))
        finally:
            if not self._stop.is_set():  # it gave up (its session is gone), nobody stopped it
                self.samples.stopped = time.monotonic()
            self._ready.set()

    def _tick(self) -> None:
        """One sample of each kind; a failure is recorded (the report then says what could
        not be observed) and sampling goes on while the primary's session lives."""
        assert self._conn is not None
        statement = self._statement
        self.samples.ticks += 1
        current = self._sampled(Source.PRIMARY, lambda: self._activity_sample(statement))
        if current is not None:
            self._sampled(Source.REPLICA, lambda: self._replica_sample(current))

    def _sampled(self, source: Source, take: Callable[[], T]) -> T | None:
        try:
            return take()
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.samples.errors.append(message)
            self.samples.failures.append(SamplingFailure(time.monotonic(), source, message))
            return None

    def _activity_sample(self, statement: int | None) -> str:
        """Sample who waits for which lock; returns the primary's WAL position (for lag)."""
        assert self._conn is not None
        query = (
            observer_sql.LOCK_WAITERS
            if self.samples.waitstart
            else (observer_sql.LOCK_WAITERS_WITHOUT_WAITSTART)
        )
        rows = self._conn.execute(query).fetchall()
        if rows:
            waiters = tuple(_waiter(row) for row in rows)
            blockers = sorted({pid for w in waiters for pid in w.blockers})
            names = dict(self._conn.execute(observer_sql.SESSION_NAMES, (blockers,)).fetchall())
            at = float(rows[0][0])
            self.samples.activity.append(ActivitySample(at, statement, waiters, names))
        row = self._conn.execute(observer_sql.REPLICATION).fetchone()
        assert row is not None
        at, current, lag_bytes, lag_seconds, replicas, hidden = row
        self.samples.replication.append(
            ReplicationSample(
                at=float(at),
                statement=statement,
                lag_bytes=int(lag_bytes),
                lag_seconds=None if lag_seconds is None else float(lag_seconds),
                replicas=int(replicas),
                hidden=int(hidden),
                taken=time.monotonic(),
            )
        )
        return str(current)

    def _replica_sample(self, current: str) -> None:
        """The replica's own replay position, when it was given: the lag in bytes even where
        the primary hides pg_stat_replication's positions."""
        if self._replica is None:
            return
        replayed = self._replica.execute(observer_sql.REPLICA_REPLAY).fetchone()
        if replayed and replayed[0]:
            own = parse_lsn(current) - parse_lsn(str(replayed[0]))
            last = self.samples.replication[-1]
            self.samples.replication[-1] = replace(
                last, lag_bytes=max(last.lag_bytes, own), replica_measured=True
            )


def _waiter(row: Sequence[Any]) -> Waiter:
    _, pid, application, query, waitstart, mode, relation, blockers = row
    return Waiter(
        pid=int(pid),
        application=str(application),
        query=str(query or ""),
        waitstart=None if waitstart is None else float(waitstart),
        mode=None if mode is None else str(mode),
        relation=None if relation is None else str(relation),
        blockers=tuple(int(b) for b in blockers or ()),
    )


# -- turning samples into observations (pure) ----------------------------------------------


@dataclass
class _Accumulator:
    blocked: int = 0
    wait: float = 0.0
    own_wait: float = 0.0
    lag_bytes: int = 0
    lag_seconds: float = 0.0
    edges: dict[tuple[str, str, str | None, str | None], tuple[set[int], float]] = field(
        default_factory=dict
    )

    def edge(self, key: tuple[str, str, str | None, str | None], pid: int, wait: float) -> None:
        pids, longest = self.edges.get(key, (set(), 0.0))
        self.edges[key] = (pids | {pid}, max(longest, wait))


@dataclass(frozen=True)
class Summary:
    """The maxima over the run; None where the observer could not observe (``gaps``)."""

    statements: Mapping[int, StatementObservation]
    max_blocked_sessions: int | None
    max_lock_wait_seconds: float | None
    migration_lock_wait_seconds: float | None
    max_replication_lag_bytes: int | None
    max_replication_lag_seconds: float | None


def summarize(
    samples: Samples, migration_pids: Iterable[int], statement_locks: Mapping[int, set[str]]
) -> Summary:
    """Per-statement observations from the samples taken while statements were marked.

    A session counts as blocked by the migration when a migration session is among its
    blockers, directly or through other waiters (the lock queue). Its wait is charged to the
    earliest statement that locked the relation it waits for — locks last until the
    transaction ends, so a wait can start during a later statement — else to the statement
    running at the time.
    """
    migration = set(migration_pids)
    acc: dict[int, _Accumulator] = defaultdict(_Accumulator)
    for sample in samples.activity:
        if sample.statement is None:
            continue
        blocked = _blocked_by(sample.waiters, migration)
        queued: dict[int, int] = defaultdict(int)
        for waiter in sample.waiters:
            if waiter.pid in blocked:
                queued[_cause(waiter.relation, sample.statement, statement_locks)] += 1
        for cause, count in queued.items():
            acc[cause].blocked = max(acc[cause].blocked, count)
        for waiter in sample.waiters:
            wait = sample.at - waiter.waitstart if waiter.waitstart is not None else 0.0
            if waiter.pid in migration:
                own = acc[sample.statement]
                own.own_wait = max(own.own_wait, wait)
                for blocker in waiter.blockers:
                    name = sample.names.get(blocker, f"pid {blocker}")
                    own.edge(("migration", name, waiter.relation, waiter.mode), blocker, wait)
            elif waiter.pid in blocked:
                cause = _cause(waiter.relation, sample.statement, statement_locks)
                target = acc[cause]
                target.wait = max(target.wait, wait)
                target.edge(
                    (waiter.application, "migration", waiter.relation, waiter.mode),
                    waiter.pid,
                    wait,
                )
    for lag in samples.replication:
        if lag.statement is not None:
            running = acc[lag.statement]
            running.lag_bytes = max(running.lag_bytes, lag.lag_bytes)
            running.lag_seconds = max(running.lag_seconds, lag.lag_seconds or 0.0)
    observations = {index: _observation(a) for index, a in acc.items()}
    return Summary(
        statements=observations,
        max_blocked_sessions=max((a.blocked for a in acc.values()), default=0),
        max_lock_wait_seconds=max((a.wait for a in acc.values()), default=0.0),
        migration_lock_wait_seconds=max((a.own_wait for a in acc.values()), default=0.0),
        max_replication_lag_bytes=max((a.lag_bytes for a in acc.values()), default=0),
        max_replication_lag_seconds=max((a.lag_seconds for a in acc.values()), default=0.0),
    )


def _blocked_by(waiters: Sequence[Waiter], migration: set[int]) -> set[int]:
    """Waiters whose chain of blockers reaches a migration session."""
    blockers = {w.pid: set(w.blockers) for w in waiters}
    blocked: set[int] = set()
    changed = True
    while changed:
        changed = False
        for pid, ahead in blockers.items():
            if pid not in blocked and pid not in migration and ahead & (migration | blocked):
                blocked.add(pid)
                changed = True
    return blocked


def _cause(relation: str | None, running: int, statement_locks: Mapping[int, set[str]]) -> int:
    if relation is not None:
        for index in sorted(statement_locks):
            if index <= running and relation in statement_locks[index]:
                return index
    return running


def _observation(acc: _Accumulator) -> StatementObservation:
    edges = sorted(
        (
            BlockingEdge(
                waiter=k[0],
                blocker=k[1],
                relation=k[2],
                mode=k[3],
                sessions=len(pids),
                max_wait_seconds=longest,
            )
            for k, (pids, longest) in acc.edges.items()
        ),
        key=lambda e: -e.max_wait_seconds,
    )
    return StatementObservation(
        max_blocked_sessions=acc.blocked,
        max_lock_wait_seconds=acc.wait,
        own_lock_wait_seconds=acc.own_wait,
        max_replication_lag_bytes=acc.lag_bytes,
        max_replication_lag_seconds=acc.lag_seconds,
        blocking=tuple(edges[:10]),
    )


# -- what could not be observed (pure) -------------------------------------------------------


_LOCKS = (Quantity.BLOCKED_SESSIONS, Quantity.LOCK_WAIT)
_LAG = (Quantity.REPLICATION_LAG_BYTES, Quantity.REPLICATION_LAG_SECONDS)


def observation_gaps(
    samples: Samples, window: tuple[float, float] | None, period: float, replica_given: bool
) -> list[ObservationGap]:
    """What the samples cannot tell about the migration's window (``time.monotonic()``)."""
    if window is None:
        return []
    start, end = window[0] - period, window[1] + period
    gaps = _sampler_gaps(samples, start, window[1])
    if not samples.waitstart:
        gaps.append(
            ObservationGap(
                Quantity.LOCK_WAIT,
                "the server has no pg_locks.waitstart (PostgreSQL 14 and later): how long "
                "sessions waited for locks is unknown",
            )
        )
    gaps += _replication_gaps(samples, start, end, window[1], replica_given)
    return _first_per_quantity(gaps)


def _sampler_gaps(samples: Samples, start: float, finished: float) -> list[ObservationGap]:
    failed = [
        f for f in samples.failures if f.source is Source.PRIMARY and start <= f.taken <= finished
    ]
    reason = None
    if failed:
        reason = (
            f"the observer's samples of the target failed {len(failed)} times during the "
            f"migration ({failed[0].message})"
        )
    elif samples.stopped is not None and samples.stopped < finished:
        reason = "the observer lost its session on the target during the migration"
    if reason is None:
        return []
    return [ObservationGap(q, reason) for q in (*_LOCKS, *_LAG)]


def _replication_gaps(
    samples: Samples, start: float, end: float, finished: float, replica_given: bool
) -> list[ObservationGap]:
    during = [r for r in samples.replication if start <= r.taken <= end]
    if not during:
        during = [r for r in samples.replication if r.taken <= end][-1:]
    failed = [
        f for f in samples.failures if f.source is Source.REPLICA and start <= f.taken <= finished
    ]
    if failed:
        reason = f"the replica could not be sampled during the migration ({failed[0].message})"
        return [ObservationGap(q, reason) for q in _LAG]
    if during and all(r.replicas == 0 for r in during) and not replica_given:
        reason = "no replica streams from the target"
        return [ObservationGap(q, reason, no_replica=True) for q in _LAG]
    gaps = []
    hidden = [r for r in during if r.hidden]
    if hidden:
        reason = (
            "pg_stat_replication hides the replicas' positions from this role (it needs "
            "pg_monitor or pg_read_all_stats)"
        )
        gaps.append(ObservationGap(Quantity.REPLICATION_LAG_SECONDS, reason))
        if not all(r.replica_measured for r in hidden):
            gaps.append(ObservationGap(Quantity.REPLICATION_LAG_BYTES, reason))
    return gaps


def _first_per_quantity(gaps: Sequence[ObservationGap]) -> list[ObservationGap]:
    seen: dict[Quantity, ObservationGap] = {}
    for gap in gaps:
        seen.setdefault(gap.quantity, gap)
    return list(seen.values())


def without_gaps(summary: Summary, gaps: Sequence[ObservationGap]) -> Summary:
    """The summary with every quantity that could not be observed set to None (unknown),
    per statement too — never a zero that reads as "nothing happened"."""
    missing = {gap.quantity for gap in gaps}
    statements = {i: _blank(o, missing) for i, o in summary.statements.items()}
    return Summary(
        statements=statements,
        max_blocked_sessions=_unless(
            Quantity.BLOCKED_SESSIONS, missing, summary.max_blocked_sessions
        ),
        max_lock_wait_seconds=_unless(Quantity.LOCK_WAIT, missing, summary.max_lock_wait_seconds),
        migration_lock_wait_seconds=_unless(
            Quantity.LOCK_WAIT, missing, summary.migration_lock_wait_seconds
        ),
        max_replication_lag_bytes=_unless(
            Quantity.REPLICATION_LAG_BYTES, missing, summary.max_replication_lag_bytes
        ),
        max_replication_lag_seconds=_unless(
            Quantity.REPLICATION_LAG_SECONDS, missing, summary.max_replication_lag_seconds
        ),
    )


def _blank(seen: StatementObservation, missing: set[Quantity]) -> StatementObservation:
    return replace(
        seen,
        max_blocked_sessions=_unless(Quantity.BLOCKED_SESSIONS, missing, seen.max_blocked_sessions),
        max_lock_wait_seconds=_unless(Quantity.LOCK_WAIT, missing, seen.max_lock_wait_seconds),
        own_lock_wait_seconds=_unless(Quantity.LOCK_WAIT, missing, seen.own_lock_wait_seconds),
        max_replication_lag_bytes=_unless(
            Quantity.REPLICATION_LAG_BYTES, missing, seen.max_replication_lag_bytes
        ),
        max_replication_lag_seconds=_unless(
            Quantity.REPLICATION_LAG_SECONDS, missing, seen.max_replication_lag_seconds
        ),
    )


N = TypeVar("N", int, float)


def _unless(quantity: Quantity, missing: set[Quantity], value: N | None) -> N | None:
    return None if quantity in missing else value
