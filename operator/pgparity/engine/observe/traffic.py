"""Production-like traffic while a migration runs, and what the traffic went through.

An idle clone never shows a lock wait: nothing else runs, so no queue forms behind an ACCESS
EXCLUSIVE lock. ``TrafficRunner`` runs client sessions that issue a workload — derived from the
catalog for the tables the migration touches (``auto_workload``: primary-key reads, single-row
updates, inserts), or read from a YAML file — at a configurable rate, and records every
transaction's start, latency and error. Each transaction is rolled back unless the workload says
``commit: true``: locks and waits are the same, and the clone's data stays as it was.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgparity.engine.sql.statements import parse_migration
from pgparity.errors import UsageError
from pgparity.models.quantities import parse_duration
from pgparity.models.report import LatencyStats, TrafficReport
from pgparity.models.workload import ParamSpec, Workload, WorkloadStatement
from pgparity.pg.connection import connect
from pgparity.pg.sqlexec import LexingChangedError, execute_one, fetch_rows

TRAFFIC_APPLICATION = "pgparity-traffic"
# How a traffic transaction is recorded when its statement changed a lexer setting.
LEXING_CHANGED = "lexing-changed"
SAMPLE_ROWS = 1000
STOP_GRACE_SECONDS = 10.0

_COLUMNS = """
SELECT a.attname, a.attidentity, a.attgenerated, a.atthasdef,
       coalesce(a.attnum = ANY (pk.indkey::int2[]), false) AS in_pk
FROM pg_attribute a
LEFT JOIN pg_index pk ON pk.indrelid = a.attrelid AND pk.indisprimary
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_OTHER_UNIQUE = """
SELECT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = %s::regclass
               AND indisunique AND NOT indisprimary)
"""
_EXISTING_TABLE = """
SELECT n.nspname, c.relname, format('%%I.%%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass(%s) AND c.relkind IN ('r', 'p')
"""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    display: str

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


@dataclass(frozen=True)
class Transaction:
    """One client transaction: when it started (monotonic), how long, how it ended."""

    started: float
    latency_ms: float
    statement: str
    sqlstate: str | None = None


@dataclass
class TrafficOutcome:
    transactions: list[Transaction] = field(default_factory=list)
    clients: int = 0
    rate: float = 0.0
    statements: tuple[str, ...] = ()

    @property
    def errors(self) -> Counter[str]:
        return Counter(t.sqlstate for t in self.transactions if t.sqlstate)


def check_workload(workload: Workload) -> None:
    """Each traffic statement must be one statement that can run in the runner's transaction,
    each ``sample`` one query, none with an effect ROLLBACK cannot undo: bad input otherwise,
    named, before anything runs."""
    for statement in workload.statements:
        label = repr(statement.name or statement.sql[:40])
        problem = _statement_problem(_with_server_placeholders(statement.sql))
        if problem:
            raise UsageError(f"traffic statement {label}: {problem}")
        for name, spec in statement.params.items():
            if spec.sample is None:
                continue
            problem = _statement_problem(spec.sample, query=True)
            if problem:
                raise UsageError(f"traffic statement {label}: sample for {name}: {problem}")


def _with_server_placeholders(text: str) -> str:
    """``%(id)s`` → ``$1`` and ``%%`` → ``%``, as psycopg sends it, so pglast can parse it."""
    names: dict[str, int] = {}

    def number(match: re.Match[str]) -> str:
        return (
            "%"
            if match.group(0) == "%%"
            else f"${names.setdefault(match.group(1), len(names) + 1)}"
        )

    return re.sub(r"%%|%\((\w+)\)s", number, text)


def _statement_problem(text: str, *, query: bool = False) -> str | None:
    parsed = parse_migration(text)
    if parsed.syntax_error is not None:
        return f"does not parse: {parsed.syntax_error.message}"
    if len(parsed.statements) != 1 or parsed.unwrapped:
        return f"must be exactly one statement, not {len(parsed.statements) + 2 * parsed.unwrapped}"
    statement = parsed.statements[0]
    if not statement.transactional:
        return f"{statement.reason}; traffic runs inside transactions pgparity ends itself"
    if query and statement.node != "SelectStmt":
        return "must be a SELECT or VALUES query"
    refused = [e for e in statement.effects if e.refused]
    return refused[0].message if refused else None


def existing_tables(conn: psycopg.Connection[Any], names: Sequence[str]) -> list[Table]:
    """The names that are existing tables on the target, in order, without repeats."""
    found: list[Table] = []
    for name in names:
        try:
            row = conn.execute(_EXISTING_TABLE, (name,)).fetchone()
        except psycopg.errors.InvalidName:
            continue
        if row and all(t.display != row[2] for t in found):
            found.append(Table(schema=str(row[0]), name=str(row[1]), display=str(row[2])))
    return found


def auto_workload(
    conn: psycopg.Connection[Any], tables: Sequence[Table], *, clients: int, rate: float
) -> Workload | None:
    """Reads, updates and inserts on ``tables`` shaped by their keys; None if there are none."""
    statements: list[WorkloadStatement] = []
    for table in tables:
        statements += _statements_for(conn, table)
    if not statements:
        return None
    return Workload(statements=tuple(statements), clients=clients, rate=rate)


def _statements_for(conn: psycopg.Connection[Any], table: Table) -> list[WorkloadStatement]:
    columns = conn.execute(_COLUMNS, (table.display,)).fetchall()
    ident = table.ident
    pk = [c for c in columns if c[4]]
    if len(pk) != 1:
        # No single-column key to aim at: a read that still needs the table's ACCESS SHARE.
        read = sql.SQL("SELECT 1 FROM {} LIMIT 1").format(ident).as_string(conn)
        return [WorkloadStatement(name=f"read {table.display}", sql=read, weight=1.0)]
    key = sql.Identifier(pk[0][0])
    sample = sql.SQL("SELECT {} FROM {} LIMIT {}").format(key, ident, sql.Literal(SAMPLE_ROWS))
    param = {"key": ParamSpec(sample=sample.as_string(conn))}
    found = [
        WorkloadStatement(
            name=f"read {table.display} by key",
            weight=6.0,
            params=param,
            sql=sql.SQL("SELECT * FROM {} WHERE {} = %(key)s").format(ident, key).as_string(conn),
        )
    ]
    plain = [c[0] for c in columns if not c[4] and not c[2] and c[1] != "a"]
    if plain:
        column = sql.Identifier(plain[0])
        found.append(
            WorkloadStatement(
                name=f"update {table.display} by key",
                weight=3.0,
                params=param,
                sql=sql.SQL("UPDATE {} SET {} = {} WHERE {} = %(key)s")
                .format(ident, column, column, key)
                .as_string(conn),
            )
        )
    key_has_default = bool(pk[0][1] or pk[0][3])
    other_unique = conn.execute(_OTHER_UNIQUE, (table.display,)).fetchone()
    if plain and key_has_default and other_unique and not other_unique[0]:
        copied = sql.SQL(", ").join(sql.Identifier(c) for c in plain)
        found.append(
            WorkloadStatement(
                name=f"insert into {table.display}",
                weight=1.0,
                params=param,
                sql=sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE {} = %(key)s")
                .format(ident, copied, copied, ident, key)
                .as_string(conn),
            )
        )
    return found


class TrafficRunner:
    """Client threads issuing ``workload`` against ``dsn`` until stopped."""

    def __init__(self, dsn: str, workload: Workload, *, seed: int = 1) -> None:
        self._dsn = dsn
        self._workload = workload
        self._seed = seed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._values: dict[tuple[int, str], Sequence[Any]] = {}
        self.outcome = TrafficOutcome(
            clients=workload.clients,
            rate=workload.rate,
            statements=tuple(s.name or s.sql for s in workload.statements),
        )

    @property
    def workload(self) -> Workload:
        return self._workload

    def start(self) -> None:
        self._resolve_samples()
        for number in range(self._workload.clients):
            conn = connect(
                self._dsn,
                role="target (traffic)",
                application_name=TRAFFIC_APPLICATION,
                user_sql=True,
            )
            self._conns.append(conn)
            thread = threading.Thread(
                target=self._client,
                args=(number, conn),
                daemon=True,
                name=f"pgparity-traffic-{number}",
            )
            self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def stop(self) -> TrafficOutcome:
        self._stop.set()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for thread, conn in zip(self._threads, self._conns, strict=True):
            if thread.ident is None:  # never started: Ctrl-C landed while starting
                continue
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():  # stuck behind a lock nobody releases: cancel its query
                conn.cancel_safe()
                thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        return self.outcome

    def _resolve_samples(self) -> None:
        """Fetch the values of ``sample`` parameters once, before the traffic starts."""
        with connect(
            self._dsn,
            role="target (traffic)",
            read_only=True,
            application_name=TRAFFIC_APPLICATION,
            user_sql=True,
        ) as conn:
            for index, statement in enumerate(self._workload.statements):
                for name, spec in statement.params.items():
                    if spec.sample is not None:
                        self._values[(index, name)] = _sample(conn, spec.sample, statement, name)

    def _client(self, number: int, conn: psycopg.Connection[Any]) -> None:
        # Reproducible workload choices, not secrets.
        rng = random.Random(self._seed * 1000 + number)  # noqa: S311
        statements = self._workload.statements
        weights = [s.weight for s in statements]
        interval = 1.0 / self._workload.rate if self._workload.rate > 0 else 0.0
        next_at = time.monotonic()
        while not self._stop.is_set():
            index = rng.choices(range(len(statements)), weights)[0]
            statement = statements[index]
            params = {
                name: self._value(rng, index, name, spec) for name, spec in statement.params.items()
            }
            transaction = self._transaction(conn, statement, params)
            self._record(transaction)
            if transaction.sqlstate == LEXING_CHANGED:
                return  # this session no longer reads SQL as pglast does: it stops
            if interval:
                next_at = max(next_at + interval, time.monotonic() - interval)
                self._stop.wait(max(0.0, next_at - time.monotonic()))

    def _transaction(
        self, conn: psycopg.Connection[Any], statement: WorkloadStatement, params: Mapping[str, Any]
    ) -> Transaction:
        started = time.monotonic()
        sqlstate = None
        try:
            with conn.transaction(force_rollback=not self._workload.commit):
                execute_one(conn, statement.sql, params or None)
        except psycopg.Error as exc:
            if conn.closed:
                raise
            sqlstate = exc.sqlstate or "client"
        except LexingChangedError:
            sqlstate = LEXING_CHANGED
        latency = (time.monotonic() - started) * 1000
        return Transaction(
            started=started,
            latency_ms=latency,
            statement=statement.name or statement.sql[:40],
            sqlstate=sqlstate,
        )

    def _record(self, transaction: Transaction) -> None:
        with self._lock:
            self.outcome.transactions.append(transaction)

    def _value(self, rng: random.Random, index: int, name: str, spec: ParamSpec) -> Any:
        if spec.int_range is not None:
            return rng.randint(spec.int_range[0], spec.int_range[1])
        if spec.choice is not None:
            return rng.choice(spec.choice)
        if spec.sample is not None:
            return rng.choice(self._values[(index, name)])
        return spec.value


def _sample(
    conn: psycopg.Connection[Any], query: str, statement: WorkloadStatement, name: str
) -> Sequence[Any]:
    try:
        rows = fetch_rows(conn, query)
    except (psycopg.Error, LexingChangedError) as exc:
        raise UsageError(
            f"traffic statement {statement.name or statement.sql[:40]!r}: sample "
            f"for {name} failed: {str(exc).strip().splitlines()[0]}"
        ) from exc
    values = [row[0] for row in rows]
    if not values:
        raise UsageError(
            f"traffic statement {statement.name or statement.sql[:40]!r}: sample "
            f"for {name} returned no rows"
        )
    return values


def latency_stats(latencies: Sequence[float]) -> LatencyStats:
    """Nearest-rank percentiles."""
    ordered = sorted(latencies)

    def rank(p: float) -> float | None:
        if not ordered:
            return None
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return LatencyStats(count=len(ordered), p50_ms=rank(0.50), p95_ms=rank(0.95), p99_ms=rank(0.99))


def traffic_report(outcome: TrafficOutcome, window: tuple[float, float]) -> TrafficReport:
    """Latency before vs during the migration, errors, completed transactions."""
    start, end = window

    def stats(keep: Callable[[Transaction], bool]) -> LatencyStats:
        return latency_stats([t.latency_ms for t in outcome.transactions if keep(t)])

    during = [t for t in outcome.transactions if start <= t.started <= end]
    return TrafficReport(
        clients=outcome.clients,
        rate_per_client=outcome.rate,
        statements=outcome.statements,
        transactions=len(outcome.transactions),
        transactions_ok=sum(1 for t in outcome.transactions if t.sqlstate is None),
        errors=dict(sorted(outcome.errors.items())),
        errors_during_migration=dict(
            sorted(Counter(t.sqlstate for t in during if t.sqlstate).items())
        ),
        latency_before=stats(lambda t: t.started < start and t.sqlstate is None),
        latency_during=stats(lambda t: start <= t.started <= end),
        latency_after=stats(lambda t: t.started > end and t.sqlstate is None),
    )


def seconds(text: str | None, default: float = 0.0) -> float:
    return parse_duration(text).seconds if text else default
