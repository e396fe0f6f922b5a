"""What a session holds and what it changed: its own locks, relation files, WAL position.

The dry-run calls these between statements of its own transaction (locks persist to the end of a
transaction, so a new ``(object, mode)`` pair after a statement is a lock that statement took —
the technique eugene's tracer uses), and the out-of-transaction rehearsal calls them from a second
session with the rehearsing session's pid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from pgparity.models.report import LockRecord

# Locks the dry-run's own bookkeeping takes (catalog reads) are not the migration's.
_LOCKS = """
SELECT l.locktype, l.mode,
       CASE
         WHEN l.locktype = 'relation' THEN format('%%I.%%I', n.nspname, c.relname)
         WHEN l.locktype = 'object' AND l.classid IS NOT NULL THEN
           pg_describe_object(l.classid, l.objid, l.objsubid)
         WHEN l.locktype = 'advisory' THEN format('advisory %%s/%%s', l.classid, l.objid)
         ELSE l.locktype
       END AS object,
       c.relkind::text
FROM pg_locks l
LEFT JOIN pg_class c ON l.locktype = 'relation' AND c.oid = l.relation
LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = %s AND l.granted
  AND l.locktype NOT IN ('virtualxid', 'transactionid')
  -- catalog locks are the bookkeeping's; TOAST locks follow their table's
  AND (l.locktype <> 'relation'
       OR n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast'))
"""

_FILENODES = """
SELECT c.oid::int8, format('%I.%I', n.nspname, c.relname), c.relkind,
       pg_relation_filenode(c.oid)::int8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'i')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_temp\\_%'
"""

_SETTINGS = (
    "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
    "pg_current_wal_insert_lsn()::text"
)


@dataclass(frozen=True, order=True)
class HeldLock:
    """A granted lock, identified the way reports show it."""

    object: str
    mode: str
    locktype: str = "relation"
    relkind: str | None = None


def lock_record(lock: HeldLock, held_ms: float | None = None) -> LockRecord:
    return LockRecord(
        relation=lock.object,
        mode=lock.mode,
        locktype=lock.locktype,
        relkind=lock.relkind,
        held_ms=held_ms,
    )


@dataclass(frozen=True)
class RelationFile:
    name: str
    relkind: str
    filenode: int | None


@dataclass(frozen=True)
class SessionState:
    lock_timeout: str
    statement_timeout: str
    wal_lsn: int

    def timeouts(self) -> dict[str, str]:
        return {"lock_timeout": self.lock_timeout, "statement_timeout": self.statement_timeout}


def held_locks(conn: psycopg.Connection[Any], pid: int | None = None) -> set[HeldLock]:
    """Granted locks of session ``pid`` (default: this session) on user objects."""
    with conn.cursor() as cur:
        cur.execute(_LOCKS, (pid if pid is not None else conn.info.backend_pid,))
        return {
            HeldLock(
                object=str(obj),
                mode=str(mode),
                locktype=str(locktype),
                relkind=None if relkind is None else str(relkind),
            )
            for locktype, mode, obj, relkind in cur.fetchall()
            if obj is not None
        }


def relation_files(conn: psycopg.Connection[Any]) -> dict[int, RelationFile]:
    """Tables, materialized views and indexes of user schemas, by OID, with their file node."""
    with conn.cursor() as cur:
        cur.execute(_FILENODES)
        return {
            int(oid): RelationFile(str(name), str(kind), None if node is None else int(node))
            for oid, name, kind, node in cur.fetchall()
        }


def session_state(conn: psycopg.Connection[Any]) -> SessionState:
    """The timeouts in effect right now and the WAL insert position."""
    row = conn.execute(_SETTINGS).fetchone()
    assert row is not None
    return SessionState(
        lock_timeout=str(row[0]), statement_timeout=str(row[1]), wal_lsn=parse_lsn(str(row[2]))
    )


def rewritten(before: dict[int, RelationFile], after: dict[int, RelationFile]) -> list[str]:
    """Relations that existed before and got a new file: the statement rewrote them."""
    return sorted(
        after[oid].name
        for oid, old in before.items()
        if oid in after and old.filenode is not None and after[oid].filenode != old.filenode
    )


def parse_lsn(text: str) -> int:
    """``16/B374D848`` → byte position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)
