"""The target of a seed or restore: empty, or a pgparity clone that ``--replace`` may clear.

``--replace`` drops every schema and extension of its target. It does so only in a database that
carries pgparity's clone marker (set by a seed or restore that proved its target, or
deliberately by a person): a database pgparity never marked — production, say — is refused
whatever the flags, before anything is dropped.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from pgparity.errors import UsageError
from pgparity.pg.clone import MARKER_SETTING, is_clone
from pgparity.pg.schemas import user_schema

_RELATIONS = f"""
SELECT count(*) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND {user_schema("n.nspname")}
"""
_SCHEMAS = f"""
SELECT nspname FROM pg_catalog.pg_namespace
WHERE {user_schema("nspname")}
"""
_EXTENSIONS = "SELECT extname FROM pg_catalog.pg_extension WHERE extname <> 'plpgsql'"


def check_replaceable(target: psycopg.Connection[Any], replace: bool) -> int:
    """How many relations the target holds that ``--replace`` will drop (0: it is empty).

    Refuses a non-empty target without ``replace``, and one that is not a pgparity clone.
    """
    row = target.execute(_RELATIONS).fetchone()
    count = int(row[0]) if row else 0
    if not count:
        return 0
    if not replace:
        raise UsageError(
            f"the target is not empty ({count} relations); refusing to write "
            "into it (use --replace to drop everything in it first)"
        )
    if not is_clone(target):
        raise UsageError(
            f"the target is not empty ({count} relations) and is not a pgparity clone: "
            "--replace only clears databases pgparity seeded or restored (empty it yourself, "
            f"or mark it as a clone on purpose: ALTER DATABASE … SET {MARKER_SETTING} = 'NAME')"
        )
    return count


def clear(target: psycopg.Connection[Any]) -> None:
    """Drop every extension (but plpgsql) and schema of the target; recreate ``public``."""
    for (extension,) in target.execute(_EXTENSIONS).fetchall():
        target.execute(
            sql.SQL("DROP EXTENSION IF EXISTS {} CASCADE").format(sql.Identifier(extension))
        )
    for (schema,) in target.execute(_SCHEMAS).fetchall():
        target.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    target.execute("CREATE SCHEMA IF NOT EXISTS public")
