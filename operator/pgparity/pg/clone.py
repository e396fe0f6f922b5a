"""The clone marker: how pgparity knows a database is a disposable clone it may change.

Statements that cannot be rolled back (CREATE INDEX CONCURRENTLY, …) are rehearsed only on
databases marked as clones (DESIGN.md safety rules). The mark is a database-level setting,
``pgparity.clone``, stored in ``pg_db_role_setting``: it survives restarts, streams to replicas
with the rest of the catalog, cannot be set by an ordinary session by accident, and is not part
of the application's schema (the digest does not see it).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

MARKER_SETTING = "pgparity.clone"

_IS_CLONE = """
SELECT EXISTS (
  SELECT 1
  FROM pg_db_role_setting s
  JOIN pg_database d ON d.oid = s.setdatabase
  CROSS JOIN LATERAL unnest(s.setconfig) AS c(entry)
  WHERE d.datname = current_database() AND s.setrole = 0
    AND c.entry LIKE 'pgparity.clone=_%')
"""


def mark_clone(conn: psycopg.Connection[Any], clone_name: str) -> None:
    """Mark the connected database as a pgparity clone called ``clone_name``."""
    dbname = conn.info.dbname
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET {} = {}").format(
            sql.Identifier(dbname),
            sql.Identifier(*MARKER_SETTING.split(".")),
            sql.Literal(clone_name),
        )
    )


def is_clone(conn: psycopg.Connection[Any]) -> bool:
    """True when the connected database carries the pgparity clone marker."""
    row = conn.execute(_IS_CLONE).fetchone()
    return bool(row and row[0])


_SETTINGS = """
SELECT c.entry
FROM pg_db_role_setting s
JOIN pg_database d ON d.oid = s.setdatabase
CROSS JOIN LATERAL unnest(s.setconfig) AS c(entry)
WHERE d.datname = current_database() AND s.setrole = 0 AND c.entry LIKE 'pgparity.%'
"""


def set_database_setting(conn: psycopg.Connection[Any], name: str, value: str) -> None:
    """Record ``pgparity.<name> = value`` on the connected database (owner or superuser)."""
    conn.execute(
        sql.SQL("ALTER DATABASE {} SET {} = {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier("pgparity", name), sql.Literal(value)
        )
    )


def database_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The ``pgparity.*`` settings recorded on the connected database, without the prefix."""
    found = {}
    for (entry,) in conn.execute(_SETTINGS).fetchall():
        name, _, value = str(entry).partition("=")
        found[name.removeprefix("pgparity.")] = value
    return found
