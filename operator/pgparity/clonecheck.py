"""Is a staging database usable as a clone? And what does its primary look like right now?

``inspect_clone`` answers for the operator: reachable, marked as a pgparity clone (so it is not
production and may be written to), a streaming replica that really belongs to it, its schema
digest and size. ``sample_clone`` reads the live numbers the operator exports as metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from pgparity.errors import DatabaseError
from pgparity.models.clone_health import CloneHealth
from pgparity.models.common import Reason
from pgparity.pg.clone import database_settings, is_clone
from pgparity.pg.connection import connect, error_message
from pgparity.pg.replication import system_identifier
from pgparity.pg.schemas import user_schema
from pgparity.schema.digest import take_snapshot

__all__ = ["CloneHealth", "CloneSample", "inspect_clone", "sample_clone"]

_STREAMING = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
_DATA = f"""
SELECT count(*), coalesce(sum(greatest(c.reltuples, 0)), 0)::int8,
       pg_database_size(current_database())
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND {user_schema("n.nspname")}
"""
_SAMPLE = """
SELECT (SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::int8
        FROM pg_stat_replication),
       count(*) FILTER (WHERE w.waitstart IS NOT NULL),
       coalesce(extract(epoch FROM max(clock_timestamp() - w.waitstart)), 0)::float8
FROM pg_stat_activity a
LEFT JOIN LATERAL (SELECT min(l.waitstart) AS waitstart FROM pg_locks l
                   WHERE l.pid = a.pid AND NOT l.granted) w ON true
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
"""


def _bounded(timeout: float) -> dict[str, Any]:
    """Connection options so that no call of a check outlives ``timeout`` (per round trip).

    A hung server must not hold the operator's thread: libpq gives up connecting after
    ``connect_timeout`` (whole seconds, at least 2), the server cancels a statement after
    ``statement_timeout``.
    """
    return {
        "connect_timeout": max(2, round(timeout)),
        "session_options": f"-c statement_timeout={max(1, round(timeout * 1000))}",
    }


def inspect_clone(dsn: str, replica_dsn: str | None, *, timeout: float = 10.0) -> CloneHealth:
    try:
        with connect(dsn, role="clone primary", **_bounded(timeout)) as conn:
            return _inspect(conn, replica_dsn, timeout)
    except DatabaseError as exc:
        return CloneHealth(reachable=False, reason=Reason.UNREACHABLE, message=str(exc))
    except psycopg.errors.QueryCanceled as exc:
        return CloneHealth(
            reachable=False,
            reason=Reason.CHECK_TIMED_OUT,
            message=f"the clone check took longer than {timeout:g} s: {error_message(exc)}",
        )
    except psycopg.OperationalError as exc:  # the server went away in the middle of the check
        return CloneHealth(reachable=False, reason=Reason.UNREACHABLE, message=error_message(exc))


def _inspect(conn: psycopg.Connection[Any], replica_dsn: str | None, timeout: float) -> CloneHealth:
    if conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
        return CloneHealth(
            True,
            reason=Reason.NOT_A_PRIMARY,
            message="the dsn names a server in recovery, not a primary",
        )
    if not is_clone(conn):
        return CloneHealth(
            True,
            reason=Reason.NOT_A_CLONE,
            message="the database is not marked as a pgparity clone "
            "(pgparity.clone): refusing to treat it as staging",
        )
    streaming = _scalar(conn, _STREAMING)
    tables, rows, size = conn.execute(_DATA).fetchone() or (0, 0, 0)
    base = CloneHealth(
        True,
        True,
        int(streaming),
        digest=_digest(conn),
        tables=int(tables),
        rows=int(rows),
        bytes=int(size),
        seed_state=database_settings(conn).get("seed_state"),
    )
    if not streaming:
        return _with(
            base,
            Reason.NO_STREAMING_REPLICA,
            "the primary has no replica in state streaming (pg_stat_replication)",
        )
    if not replica_dsn:
        return _with(base, Reason.NO_REPLICA_DSN, "the Secret has no replicaDsn")
    problem = _replica_problem(conn, replica_dsn, timeout)
    if problem:
        return _with(base, Reason.REPLICA_NOT_STREAMING, problem)
    if base.seed_state not in (None, "complete"):
        return CloneHealth(
            **{
                **base.__dict__,
                "replica_ok": True,
                "reason": Reason.SEED_INCOMPLETE,
                "message": f"pgparity.seed_state is {base.seed_state}",
            }
        )
    return CloneHealth(
        **{
            **base.__dict__,
            "replica_ok": True,
            "reason": Reason.STREAMING,
            "message": f"{streaming} replica(s) streaming",
        }
    )


def _digest(conn: psycopg.Connection[Any]) -> str | None:
    """The schema digest, or None when the catalog cannot be read within the statement timeout.

    A migration being validated on the clone holds locks that reading some definitions waits
    for: the clone is busy, not broken, and keeps its last known digest.
    """
    try:
        return take_snapshot(conn).digest
    except DatabaseError:
        return None


def _with(base: CloneHealth, reason: Reason, message: str) -> CloneHealth:
    return CloneHealth(**{**base.__dict__, "reason": reason, "message": message})


def _replica_problem(
    primary: psycopg.Connection[Any], replica_dsn: str, timeout: float
) -> str | None:
    try:
        with connect(replica_dsn, role="clone replica", **_bounded(timeout)) as replica:
            if replica.execute("SELECT pg_is_in_recovery()").fetchone() != (True,):
                return "the replicaDsn names a server that is not in recovery"
            mine, theirs = system_identifier(primary), system_identifier(replica)
            if mine is not None and theirs is not None and mine != theirs:
                return "the replicaDsn names a replica of another cluster"
    except DatabaseError as exc:
        return str(exc)
    return None


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query.encode()).fetchone()
    return row[0] if row else None


@dataclass(frozen=True)
class CloneSample:
    lag_bytes: int
    waiting_sessions: int
    longest_wait_seconds: float


def sample_clone(dsn: str, *, timeout: float = 10.0) -> CloneSample:
    try:
        with connect(
            dsn, role="clone primary", application_name="pgparity-monitor", **_bounded(timeout)
        ) as conn:
            row = conn.execute(_SAMPLE).fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot sample the clone: {error_message(exc)}") from exc
    assert row is not None
    return CloneSample(int(row[0]), int(row[1]), float(row[2]))
