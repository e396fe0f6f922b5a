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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgparity.engine import observer_sql
from pgparity.engine.connection import connect
from pgparity.engine.trace import parse_lsn
from pgparity.models.report import BlockingEdge, StatementObservation

DEFAULT_PERIOD_SECONDS = 0.05
OBSERVER_APPLICATION = "pgparity-observer"


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


@dataclass
class Samples:
    activity: list[ActivitySample] = field(default_factory=list)
    replication: list[ReplicationSample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ticks: int = 0


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
            self._dsn, role="target (observer)", application_name=OBSERVER_APPLICATION
        )
        self._conn.execute("SET statement_timeout = '5s'")
        if self._replica_dsn:
            self._replica = connect(
                self._replica_dsn, role="replica (observer)", application_name=OBSERVER_APPLICATION
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
        while not self._stop.is_set():
            try:
                self._tick()
            except psycopg.Error as exc:  # keep observing; say how often it failed
                self.samples.errors.append(str(exc).strip().splitlines()[0])
                if self._conn is None or self._conn.closed:
                    return
            self._ready.set()
            next_tick += self._period
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def _tick(self) -> None:
        assert self._conn is not None
        statement = self._statement
        self.samples.ticks += 1
        rows = self._conn.execute(observer_sql.LOCK_WAITERS).fetchall()
        if rows:
            waiters = tuple(_waiter(row) for row in rows)
            blockers = sorted({pid for w in waiters for pid in w.blockers})
            names = dict(self._conn.execute(observer_sql.SESSION_NAMES, (blockers,)).fetchall())
            at = float(rows[0][0])
            self.samples.activity.append(ActivitySample(at, statement, waiters, names))
        self.samples.replication.append(self._replication_sample(statement))

    def _replication_sample(self, statement: int | None) -> ReplicationSample:
        assert self._conn is not None
        row = self._conn.execute(observer_sql.REPLICATION).fetchone()
        assert row is not None
        at, current, lag_bytes, lag_seconds, replicas = row
        if self._replica is not None:
            replayed = self._replica.execute(observer_sql.REPLICA_REPLAY).fetchone()
            if replayed and replayed[0]:
                own = parse_lsn(str(current)) - parse_lsn(str(replayed[0]))
                lag_bytes = max(int(lag_bytes), own)
        return ReplicationSample(
            at=float(at),
            statement=statement,
            lag_bytes=int(lag_bytes),
            lag_seconds=None if lag_seconds is None else float(lag_seconds),
            replicas=int(replicas),
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
    statements: Mapping[int, StatementObservation]
    max_blocked_sessions: int
    max_lock_wait_seconds: float
    migration_lock_wait_seconds: float
    max_replication_lag_bytes: int
    max_replication_lag_seconds: float


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
