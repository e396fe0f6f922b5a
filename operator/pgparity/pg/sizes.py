"""How big each table is: the bytes and rows a scale prediction compares (clone vs production).

Read from the catalog only (no count(*), which on production would scan every table):
``pg_table_size`` (heap, TOAST, free-space and visibility maps: what a rewrite copies) and
``reltuples`` (the planner's row estimate; -1, unknown, until the first ANALYZE or VACUUM).
Cheap and read-only, so it runs against production (through a read-only session) as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from pgparity.pg.schemas import user_schema

_TABLE_SIZES = f"""
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname), pg_catalog.pg_table_size(c.oid)::int8,
       c.reltuples::float8
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND {user_schema("n.nspname")}
"""


@dataclass(frozen=True)
class TableSize:
    """A table's size in bytes and, when known, its rows."""

    bytes: int
    rows: float | None = None


def read_table_sizes(conn: psycopg.Connection[Any]) -> Mapping[str, TableSize]:
    """Every user table and materialized view, by schema-qualified name (as pg_locks shows)."""
    rows = conn.execute(_TABLE_SIZES).fetchall()
    return {
        str(name): TableSize(bytes=int(size), rows=None if tuples < 0 else float(tuples))
        for name, size, tuples in rows
    }
