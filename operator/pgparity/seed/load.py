"""Load the data: workers stream masked COPYs, and build a table's indexes once it is loaded.

A scheduler hands workers two kinds of task: copying one piece of a table, and — as soon as
every piece of a table is in — building that table's primary key, unique constraints and
indexes. Index builds of loaded tables thus overlap the copying of the others, instead of all
waiting for the last table (foreign keys, which need both sides, come after everything).
"""

from __future__ import annotations

import collections
import io
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from pgparity.errors import DatabaseError, UsageError
from pgparity.pg.connection import connect, error_message
from pgparity.seed.mac import Mac
from pgparity.seed.plan import CopyJob
from pgparity.seed.postdata import BuildTiming, PostDataEntry, build
from pgparity.seed.progress import SeedProgress
from pgparity.seed.schema import SchemaArchive
from pgparity.seed.tools import ChildProcesses, error_line, tool, tool_environment

SEED_APPLICATION = "pgparity-seed"
RELAY_BLOCK = 1 << 20
# Target sessions that load data: no timeouts set on the target's roles or database cut a long
# COPY short, rows arrive as UTF-8 (the source side's psql is told the same), and row security
# never filters them silently (as pg_restore loads data).
TARGET_SESSION = (
    "-c synchronous_commit=off -c statement_timeout=0 -c lock_timeout=0 "
    "-c idle_in_transaction_session_timeout=0 -c row_security=off -c client_encoding=UTF8"
)


@dataclass(frozen=True)
class TableCopy:
    table: str
    rows: int
    bytes: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "rows": self.rows,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class LoadPlan:
    source_dsn: str
    target_dsn: str
    snapshot: str
    key: bytes | None
    mac: Mac  # how the jobs' SELECTs compute HMACs, so which key settings they read
    archive: SchemaArchive  # the schema, whose post-data entries the builds apply
    jobs: Sequence[CopyJob]
    builds: dict[tuple[str, str], list[PostDataEntry]]  # per table, once it is loaded


Task = CopyJob | PostDataEntry


class Scheduler:
    """Hands out tasks; a table's builds become ready when its last piece is copied."""

    def __init__(self, plan: LoadPlan, progress: SeedProgress) -> None:
        self.stop = threading.Event()
        self.progress = progress
        self.children = ChildProcesses()  # the index builds' pg_restore processes
        self._copies = collections.deque(plan.jobs)
        self._ready: collections.deque[PostDataEntry] = collections.deque()
        self._builds = plan.builds
        self._pieces: dict[tuple[str, str], list[tuple[int, int, float, float]]] = {}
        self._expected = collections.Counter(_key(j) for j in plan.jobs)
        self._in_flight = 0
        self._cond = threading.Condition()
        self.tables: list[TableCopy] = []
        self.timings: list[BuildTiming] = []

    def next(self) -> Task | None:
        with self._cond:
            while not self.stop.is_set():
                if self._ready:
                    self._in_flight += 1
                    return self._ready.popleft()
                if self._copies:
                    self._in_flight += 1
                    return self._copies.popleft()
                if self._in_flight == 0:
                    return None
                self._cond.wait(0.1)
            return None

    def copied(self, job: CopyJob, rows: int, size: int, started: float, ended: float) -> None:
        key = _key(job)
        with self._cond:
            self._in_flight -= 1
            pieces = self._pieces.setdefault(key, [])
            pieces.append((rows, size, started, ended))
            done = len(pieces) == self._expected[key]
            if done:
                copy = TableCopy(
                    job.table.display,
                    sum(p[0] for p in pieces),
                    sum(p[1] for p in pieces),
                    max(p[3] for p in pieces) - min(p[2] for p in pieces),
                )
                self.tables.append(copy)
                self._ready.extend(self._builds.get(key, []))
            self._cond.notify_all()
        if done:
            self.progress.table_done(copy.table, copy.rows, copy.bytes, copy.seconds)

    def built(self, timing: BuildTiming) -> None:
        with self._cond:
            self._in_flight -= 1
            self.timings.append(timing)
            self._cond.notify_all()


def _key(job: CopyJob) -> tuple[str, str]:
    return job.table.schema, job.table.name


def load(plan: LoadPlan, workers: int, progress: SeedProgress) -> Scheduler:
    scheduler = Scheduler(plan, progress)
    pool = [_Worker(plan, scheduler) for _ in range(max(1, workers))]
    try:
        for worker in pool:
            worker.start()
        for worker in pool:
            worker.join()
    except BaseException:
        scheduler.stop.set()
        scheduler.children.stop()
        # Ctrl-C may land while the pool is starting: only started workers can be joined.
        started = [worker for worker in pool if worker.ident is not None]
        for worker in started:
            worker.cancel()
        for worker in started:
            worker.join(timeout=10)
        raise
    finally:
        progress.finish()
    failures = [w.error for w in pool if w.error is not None]
    if failures:
        raise failures[0]
    return scheduler


class _Worker(threading.Thread):
    """Runs tasks on its own target session.

    A copy's source side is a ``psql`` process running ``COPY (masked SELECT) TO STDOUT`` in a
    transaction that imports the exported snapshot: libpq hands COPY data over one row at a
    time, and relaying rows one by one in Python would cost more than the copy itself. Python
    reads the pipe in 1 MB blocks and writes them to the target's ``COPY … FROM STDIN``, which
    is committed only if the source side ended cleanly — a truncated stream never commits.
    """

    def __init__(self, plan: LoadPlan, scheduler: Scheduler) -> None:
        super().__init__(daemon=True, name="pgparity-seed-worker")
        self._plan = plan
        self._scheduler = scheduler
        self._target: psycopg.Connection[Any] | None = None
        self._producer: subprocess.Popen[bytes] | None = None
        self.error: BaseException | None = None

    def cancel(self) -> None:
        if self._producer is not None and self._producer.poll() is None:
            self._producer.kill()
        if self._target is not None and not self._target.closed:
            self._target.cancel_safe()

    def run(self) -> None:
        try:
            self._target = connect(
                self._plan.target_dsn,
                role="target",
                autocommit=True,
                application_name=SEED_APPLICATION,
                session_options=TARGET_SESSION,
            )
            while (task := self._scheduler.next()) is not None:
                if isinstance(task, CopyJob):
                    self._copy(task)
                else:
                    self._scheduler.built(self._build(task))
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = (
                exc
                if isinstance(exc, DatabaseError | UsageError)
                else DatabaseError(f"copy failed: {exc}")
            )
            self._scheduler.stop.set()
        finally:
            self.cancel()
            if self._target is not None:
                self._target.close()

    def _build(self, entry: PostDataEntry) -> BuildTiming:
        plan, scheduler = self._plan, self._scheduler
        return build(
            plan.target_dsn, plan.archive, entry, scheduler.progress.say, scheduler.children
        )

    def _source_command(self, job: CopyJob) -> list[str]:
        assert self._target is not None
        return [
            tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
            "-c", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            "-c", f"SET TRANSACTION SNAPSHOT '{self._plan.snapshot}'",
            "-c", job.copy_out().as_string(self._target),
        ]  # fmt: skip

    def _source_environment(self) -> dict[str, str]:
        # Read-only like every production session; rows in physical order (correlation
        # survives); the key's pads in the start-up options, never in any SQL text.
        options = "-c default_transaction_read_only=on -c synchronize_seqscans=off"
        if self._plan.key is not None:
            options += " " + self._plan.mac.session_options(self._plan.key)
        env = tool_environment(self._plan.source_dsn, extra_options=options)
        env["PGAPPNAME"] = SEED_APPLICATION
        env["PGCLIENTENCODING"] = "UTF8"
        return env

    def _copy(self, job: CopyJob) -> None:
        assert self._target is not None
        started = time.monotonic()
        size = 0
        self._producer = subprocess.Popen(
            self._source_command(job),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._source_environment(),
            start_new_session=True,
        )
        stream = self._producer.stdout
        assert isinstance(stream, io.BufferedReader)
        try:
            with self._target.transaction(), self._target.cursor() as cursor:
                with cursor.copy(job.copy_in()) as into:
                    while block := stream.read(RELAY_BLOCK):
                        if self._scheduler.stop.is_set():
                            raise DatabaseError("stopped: another worker failed")
                        into.write(block)
                        size += len(block)
                        self._scheduler.progress.copied(len(block))
                    self._check_source(job)
                rows = max(cursor.rowcount, 0)
        except psycopg.Error as exc:
            raise DatabaseError(f"copying {job.label} failed: {error_message(exc)}") from exc
        self._scheduler.copied(job, rows, size, started, time.monotonic())

    def _check_source(self, job: CopyJob) -> None:
        """Raise — before the target's COPY ends — if the source side did not finish cleanly."""
        assert self._producer is not None
        assert self._producer.stderr is not None
        if self._producer.wait() != 0:
            message = error_line(self._producer.stderr.read(), self._plan.source_dsn)
            raise DatabaseError(f"copying {job.label} failed on the source: {message}")
