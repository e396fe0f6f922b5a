"""What a session holds and what it changed: its own locks, relation files, WAL position.

Locks persist to the end of a transaction, so a new ``(object, mode)`` pair after a statement
is a lock that statement took (the technique eugene's tracer uses). ``StatementTracer`` asks
the server for the new pairs only — it passes the keys it already knows, so each statement
costs what it changed, not what the transaction holds — and looks for rewrites only among
relations the session holds in ACCESS EXCLUSIVE mode: a new file node (a rewrite) needs that
lock, on the table and on each index rebuilt with it. The out-of-transaction rehearsal samples
another session's locks with ``held_locks`` from a second session.

Every query here runs with ``search_path = pg_catalog, pg_temp`` (``sqlexec``), in a session
where the migration may have created ``public.pg_current_wal_insert_lsn()`` or an operator ``=``
and put ``public`` first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgparity.models.report import LockRecord
from pgparity.pg.replication import parse_lsn
from pgparity.pg.schemas import user_schema
from pgparity.pg.sqlexec import SessionSettings, own_queries

_USER_RELATION = """
  -- catalog locks are the bookkeeping's; TOAST locks follow their table's
  AND (l.locktype <> 'relation'
       OR n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast'))
"""
_OBJECT = """
       CASE
         WHEN l.locktype = 'relation' THEN pg_catalog.format('%%I.%%I', n.nspname, c.relname)
         WHEN l.locktype = 'object' AND l.classid IS NOT NULL THEN
           pg_catalog.pg_describe_object(l.classid, l.objid, l.objsubid)
         WHEN l.locktype = 'advisory' THEN
           pg_catalog.format('advisory %%s/%%s', l.classid, l.objid)
         ELSE l.locktype
       END
"""

# Locks the dry-run's own bookkeeping takes (catalog reads) are not the migration's.
_LOCKS = f"""
SELECT l.locktype, l.mode, {_OBJECT} AS object, c.relkind::text
FROM pg_catalog.pg_locks l
LEFT JOIN pg_catalog.pg_class c ON l.locktype = 'relation' AND c.oid = l.relation
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE l.pid = %(pid)s AND l.granted
  AND l.locktype NOT IN ('virtualxid', 'transactionid')
  {_USER_RELATION}
"""

# The same, minus the locks whose key is in %(known)s (one per line), with each relation's OID
# and file node; the bookkeeping's locks come back too (object NULL), once, so that their keys
# are known next time. A relation lock's key is its OID and mode; any other lock's names every
# column pg_locks fills for it (NULLs are skipped, and each lock type fills a fixed set of
# columns, so keys never collide). The filter runs before any join (a hashed subplan, so the
# planner does not weigh thousands of constants): a statement costs the server one pass over
# the lock table (pg_lock_status) plus what it newly took.
_NEW_LOCKS = f"""
SELECT l.key, l.locktype, l.mode,
       CASE WHEN true {_USER_RELATION} THEN {_OBJECT} END AS object,
       c.relkind::text, c.oid::int8, pg_catalog.pg_relation_filenode(c.oid)::int8
FROM (SELECT l.*
      FROM (SELECT l.locktype, l.database, l.relation, l.classid, l.objid, l.objsubid, l.mode,
                   CASE WHEN l.locktype = 'relation' THEN l.relation::text || l.mode
                        ELSE pg_catalog.concat_ws(':', l.locktype, l.database, l.relation,
                                                  l.page, l.tuple, l.classid, l.objid,
                                                  l.objsubid, l.mode)
                   END AS key
            FROM pg_catalog.pg_locks l
            WHERE l.pid = pg_catalog.pg_backend_pid() AND l.granted
              AND l.locktype NOT IN ('virtualxid', 'transactionid')) l
      WHERE l.key NOT IN (SELECT pg_catalog.string_to_table(%(known)s, E'\\n'))
      OFFSET 0) l
LEFT JOIN pg_catalog.pg_class c ON l.locktype = 'relation' AND c.oid = l.relation
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""

_FILENODES = f"""
SELECT c.oid::int8, pg_catalog.format('%I.%I', n.nspname, c.relname), c.relkind,
       pg_catalog.pg_relation_filenode(c.oid)::int8
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {user_schema("n.nspname")}
"""

_WATCHED_FILENODES = """
SELECT c.oid::int8, pg_catalog.pg_relation_filenode(c.oid)::int8
FROM pg_catalog.pg_class c
WHERE c.oid = ANY (%s::pg_catalog.oid[])
"""

_SETTINGS = (
    "SELECT pg_catalog.current_setting('lock_timeout'), "
    "pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text"
)

REWRITE_MODE = "AccessExclusiveLock"
FOREIGN_TABLE = "f"


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


def held_locks(conn: psycopg.Connection[Any], pid: int) -> set[HeldLock]:
    """Granted locks of session ``pid`` on user objects (from a session of pgparity's own,
    whose search_path is pinned at connection time)."""
    with conn.cursor() as cur:
        cur.execute(_LOCKS, {"pid": pid})
        return {
            HeldLock(str(obj), str(mode), str(locktype), None if kind is None else str(kind))
            for locktype, mode, obj, kind in cur.fetchall()
            if obj is not None
        }


def relation_files(conn: psycopg.Connection[Any]) -> dict[int, RelationFile]:
    """Every relation of the user schemas, by OID, with its file node (None for views,
    partitioned tables and others without storage)."""
    with own_queries(conn), conn.cursor() as cur:
        cur.execute(_FILENODES)
        return {
            int(oid): RelationFile(str(name), str(kind), None if node is None else int(node))
            for oid, name, kind, node in cur.fetchall()
        }


def session_state(conn: psycopg.Connection[Any]) -> SessionState:
    """The timeouts in effect right now and the WAL insert position."""
    with own_queries(conn) as saved:
        return _read_state(conn, saved)


def _read_state(conn: psycopg.Connection[Any], saved: SessionSettings) -> SessionState:
    """The state as the session had it before ``own_queries`` (which clears its
    statement_timeout for pgparity's own queries)."""
    row = conn.execute(_SETTINGS).fetchone()
    assert row is not None
    return SessionState(
        lock_timeout=str(row[0]),
        statement_timeout=saved.statement_timeout,
        wal_lsn=parse_lsn(str(row[1])),
    )


def rewritten(before: Mapping[int, RelationFile], after: Mapping[int, RelationFile]) -> list[str]:
    """Relations that existed before and got a new file: the statement rewrote them."""
    return sorted(
        after[oid].name
        for oid, old in before.items()
        if oid in after and old.filenode is not None and after[oid].filenode != old.filenode
    )


@dataclass(frozen=True)
class _NewLock:
    key: str
    lock: HeldLock | None  # None: a relation dropped in this transaction
    oid: int | None
    filenode: int | None


@dataclass(frozen=True)
class StatementTrace:
    """What one statement did: the locks it took, what it rewrote or created, its WAL."""

    locks: tuple[HeldLock, ...]
    rewrites: tuple[str, ...]
    created: frozenset[str]
    before: SessionState
    after: SessionState

    @property
    def wal_bytes(self) -> int:
        return max(0, self.after.wal_lsn - self.before.wal_lsn)

    @property
    def foreign_writes(self) -> tuple[str, ...]:
        """Foreign tables the statement opened for writing (RowExclusiveLock: INSERT, UPDATE,
        DELETE, MERGE) — through a trigger or a function, where no static check sees it."""
        return tuple(
            lock.object
            for lock in self.locks
            if lock.relkind == FOREIGN_TABLE and lock.mode == "RowExclusiveLock"
        )


@dataclass
class StatementTracer:
    """Follows one transaction statement by statement; start it before the first one."""

    baseline: Mapping[int, RelationFile]
    state: SessionState
    watched: dict[int, int | None] = field(default_factory=dict)
    known: str = ""  # the keys of every lock seen, one per line

    @classmethod
    def start(cls, conn: psycopg.Connection[Any]) -> StatementTracer:
        baseline = relation_files(conn)
        with own_queries(conn) as saved:
            tracer = cls(baseline=baseline, state=_read_state(conn, saved))
            tracer._new_locks(conn)  # what the session holds already is nobody's
        return tracer

    def after_statement(self, conn: psycopg.Connection[Any]) -> StatementTrace:
        """Measure the statement that just ran; the next one is measured from here."""
        before = self.state
        with own_queries(conn) as saved:
            new = self._new_locks(conn)
            changed = self._watched_changes(conn)
            self.state = _read_state(conn, saved)
        rewrites = [*changed, *self._rewritten_now(new)]
        return StatementTrace(
            locks=tuple(sorted(n.lock for n in new if n.lock is not None)),
            rewrites=tuple(sorted(set(rewrites))),
            created=frozenset(
                n.lock.object
                for n in new
                if n.lock is not None and n.oid is not None and n.oid not in self.baseline
            ),
            before=before,
            after=self.state,
        )

    def _new_locks(self, conn: psycopg.Connection[Any]) -> list[_NewLock]:
        rows = conn.execute(_NEW_LOCKS, {"known": self.known}).fetchall()
        new = [_new_lock(row) for row in rows]
        if new:
            self.known = "\n".join([self.known, *(lock.key for lock in new)]).lstrip("\n")
        return new

    def _rewritten_now(self, new: Iterable[_NewLock]) -> list[str]:
        """Relations that existed before the run and were first locked for a rewrite now."""
        found = []
        for lock in new:
            old = self.baseline.get(lock.oid) if lock.oid is not None else None
            if old is None or lock.lock is None or lock.lock.mode != REWRITE_MODE:
                continue
            assert lock.oid is not None
            self.watched[lock.oid] = lock.filenode
            if old.filenode is not None and lock.filenode != old.filenode:
                found.append(old.name)
        return found

    def _watched_changes(self, conn: psycopg.Connection[Any]) -> list[str]:
        """Relations already held for a rewrite whose file node changed since last seen."""
        if not self.watched:
            return []
        rows = conn.execute(_WATCHED_FILENODES, (list(self.watched),)).fetchall()
        found = []
        for oid, node in rows:
            if node != self.watched[int(oid)]:
                self.watched[int(oid)] = None if node is None else int(node)
                found.append(self.baseline[int(oid)].name)
        return found


def _new_lock(row: Sequence[Any]) -> _NewLock:
    key, locktype, mode, obj, kind, oid, filenode = row
    lock = None
    if obj is not None:
        lock = HeldLock(str(obj), str(mode), str(locktype), None if kind is None else str(kind))
    return _NewLock(
        key=str(key),
        lock=lock,
        oid=None if oid is None else int(oid),
        filenode=None if filenode is None else int(filenode),
    )
