"""Streaming replication as the primary and its replicas report it: WAL positions, and the
system identifier a primary shares with its replicas."""

from __future__ import annotations

import time
from typing import Any

import psycopg

_MAY_READ_CONTROL = (
    "SELECT pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')"
)
_SYSTEM_IDENTIFIER = "SELECT system_identifier FROM pg_catalog.pg_control_system()"
_WRITTEN = "SELECT pg_catalog.pg_current_wal_lsn()::text"
_REPLAYED = "SELECT count(*) FROM pg_catalog.pg_stat_replication WHERE replay_lsn >= %s::pg_lsn"


def system_identifier(conn: psycopg.Connection[Any]) -> int | None:
    """The cluster's system identifier — the same on a primary and on every replica streaming
    from it — or None where the role may not run ``pg_control_system()`` (a superuser, or a
    member of pg_monitor-like roles granted it, may). Asked first, so nothing fails and no
    transaction is aborted."""
    allowed = conn.execute(_MAY_READ_CONTROL).fetchone()
    if not allowed or not allowed[0]:
        return None
    row = conn.execute(_SYSTEM_IDENTIFIER).fetchone()
    return int(row[0]) if row else None


def parse_lsn(text: str) -> int:
    """``16/B374D848`` → byte position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def written_lsn(conn: psycopg.Connection[Any]) -> str:
    """Where the primary's WAL ends now (``16/B374D848``)."""
    row = conn.execute(_WRITTEN).fetchone()
    assert row is not None
    return str(row[0])


def wait_for_replay(
    conn: psycopg.Connection[Any], lsn: str, replicas: int, *, timeout: float, period: float
) -> float | None:
    """Seconds until ``replicas`` replicas of the primary ``conn`` is connected to have
    replayed its WAL up to ``lsn``, polling every ``period``; None after ``timeout``."""
    started = time.monotonic()
    while True:
        row = conn.execute(_REPLAYED, (lsn,)).fetchone()
        if row is not None and int(row[0]) >= replicas:
            return time.monotonic() - started
        if time.monotonic() - started >= timeout:
            return None
        time.sleep(period)
