"""Was a run cold or warm: the data blocks a statement found in shared buffers or read in.

``pg_stat_get_xact_blocks_fetched/_hit(oid)`` give this backend's counts for a relation since
its statistics were last flushed, which never happens inside a transaction (PostgreSQL flushes
pending statistics only between transactions): so the difference across one statement is what
that statement asked of the buffer manager, per relation, whether or not pg_stat_statements is
installed. Only user relations count (OID ≥ 16384, FirstNormalObjectId): the catalog reads of
DDL and of pgparity's own bookkeeping are not data.

A relation first touched by a statement may already have counts pending from earlier
transactions of this session, so ``BufferCounter.start`` reads every user relation once, and
each statement afterwards reads only the relations the session holds locks on (every relation
a statement opens stays locked to the end of the transaction). The tables whose blocks a
statement asked for are the tables it worked on — also those an earlier statement had already
locked, which its own new locks do not show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgparity.models.report import Buffers
from pgparity.pg.sqlexec import own_queries

FIRST_NORMAL_OID = 16384

_COUNTS = """
SELECT c.oid::int8, pg_catalog.pg_stat_get_xact_blocks_fetched(c.oid)::int8,
       pg_catalog.pg_stat_get_xact_blocks_hit(c.oid)::int8,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_catalog.format('%%I.%%I', n.nspname, c.relname)
       END
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""
_ALL = _COUNTS + "WHERE c.oid >= %(first)s AND c.relkind IN ('r', 'i', 't', 'm')"
# Relations dropped in this transaction are gone from pg_class: their counts are not wanted.
_LOCKED = (
    _COUNTS
    + """
WHERE c.oid IN (SELECT l.relation FROM pg_catalog.pg_locks l
                WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'
                  AND l.relation >= %(first)s)
"""
)


@dataclass(frozen=True)
class _Counts:
    fetched: int
    hit: int
    table: str | None = None  # the name of a table or materialized view, else None


@dataclass
class BufferCounter:
    """Counts per relation as last read; ``after_statement`` returns the statement's share."""

    known: dict[int, _Counts] = field(default_factory=dict)

    @classmethod
    def start(cls, conn: psycopg.Connection[Any]) -> BufferCounter:
        return cls(known=_read(conn, _ALL))

    def after_statement(self, conn: psycopg.Connection[Any]) -> Buffers:
        now = _read(conn, _LOCKED)
        fetched = hit = 0
        tables = set()
        for oid, counts in now.items():
            before = self.known.get(oid, _Counts(0, 0))
            asked = max(0, counts.fetched - before.fetched)
            fetched += asked
            hit += max(0, counts.hit - before.hit)
            if asked and counts.table is not None:
                tables.add(counts.table)
        self.known.update(now)
        return Buffers.counted(hit, max(0, fetched - hit), tuple(sorted(tables)))


def _read(conn: psycopg.Connection[Any], query: str) -> dict[int, _Counts]:
    with own_queries(conn):
        rows = conn.execute(query, {"first": FIRST_NORMAL_OID}).fetchall()
    return {
        int(oid): _Counts(int(fetched), int(hit), None if table is None else str(table))
        for oid, fetched, hit, table in rows
    }
