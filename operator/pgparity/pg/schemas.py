"""Which schemas hold the application's objects: the one definition every catalog query uses."""

from __future__ import annotations


def user_schema(column: str) -> str:
    """SQL that is true when the schema named by ``column`` (``n.nspname``) is the application's.

    Not information_schema, and none whose name begins with ``pg_``: pg_catalog, pg_toast and
    the sessions' temporary schemas (pg_temp_N, pg_toast_temp_N). No one else's schema can
    begin with ``pg_``: PostgreSQL reserves the prefix (CREATE SCHEMA refuses it). No ``%`` in
    it, so it fits queries with and without parameters.
    """
    return f"({column} <> 'information_schema' AND {column} !~ '^pg_')"
