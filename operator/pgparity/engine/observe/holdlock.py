"""``--hold-lock TABLE:SECONDS``: the long reader that makes DDL wait in production.

A transaction that has read a table holds ACCESS SHARE on it until it ends. DDL that needs
ACCESS EXCLUSIVE waits for it — and every session that comes after queues behind the DDL's
pending request. With a production lock_timeout the migration then fails fast with 55P03,
exactly as it would in production; without one, the queue grows.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgparity.errors import DatabaseError, UsageError, shown
from pgparity.models.quantities import parse_duration
from pgparity.pg.connection import connect, error_message

HOLD_APPLICATION = "pgparity-hold-lock"


@dataclass(frozen=True)
class HoldLock:
    table: str
    seconds: float

    @classmethod
    def parse(cls, text: str) -> HoldLock:
        """``public.orders:3`` or ``orders:2500ms`` (a bare number is seconds)."""
        table, sep, duration = text.rpartition(":")
        if not sep or not table.strip():
            raise UsageError(f"--hold-lock {text!r}: expected TABLE:SECONDS, e.g. orders:5")
        # A bare number is seconds here; read it exactly like any duration (no nan, inf, 1e400).
        bare = re.fullmatch(r"\s*[0-9]+(\.[0-9]+)?\s*", duration, re.ASCII)
        seconds = parse_duration(
            f"{duration.strip()}s" if bare else duration, what=f"--hold-lock {shown(text)} duration"
        ).seconds
        if seconds <= 0:
            raise UsageError(f"--hold-lock {text!r}: the duration must be positive")
        return cls(table=table.strip(), seconds=seconds)


class LockHolder:
    """Reads ``table`` in a transaction and keeps it open for ``seconds`` (or until stopped)."""

    def __init__(self, dsn: str, hold: HoldLock) -> None:
        self._dsn = dsn
        self.hold = hold
        self._stop = threading.Event()
        self._conn: psycopg.Connection[Any] | None = None
        self._thread = threading.Thread(
            target=self._wait_then_release, daemon=True, name=f"pgparity-hold-lock-{hold.table}"
        )

    def start(self) -> None:
        """Returns once the lock is held."""
        self._conn = connect(
            self._dsn, role="target (hold-lock)", application_name=HOLD_APPLICATION
        )
        names = self.hold.table.split(".")
        try:
            self._conn.execute("BEGIN")
            self._conn.execute(sql.SQL("SELECT 1 FROM {} LIMIT 1").format(sql.Identifier(*names)))
        except psycopg.Error as exc:
            self._conn.close()
            if isinstance(exc, psycopg.OperationalError):
                raise DatabaseError(f"--hold-lock {self.hold.table}: {exc}") from exc
            raise UsageError(f"--hold-lock {self.hold.table}: {error_message(exc)}") from exc
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _wait_then_release(self) -> None:
        assert self._conn is not None
        self._stop.wait(self.hold.seconds)
        try:
            self._conn.execute("ROLLBACK")
        finally:
            self._conn.close()
