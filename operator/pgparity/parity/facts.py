"""What one side of the parity floor is: read once, in a read-only transaction, then compared.

``read_facts`` is the only function here that talks to a server; everything it returns is
plain data for the pure comparison in ``floor``. Every value read is hostile input (a setting
value, an extension or role name on production may hold anything): it stays data, is quoted with
psycopg.sql wherever it goes back into SQL, and is cut short wherever it is printed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import psycopg

from pgparity.errors import DatabaseError
from pgparity.parity import floor_sql
from pgparity.parity.settings import SettingType
from pgparity.pg.connection import error_message
from pgparity.schema.digest import take_snapshot


class Level(StrEnum):
    """Where a setting's value comes from, highest precedence first."""

    DATABASE_ROLE = "database-role"  # ALTER ROLE r IN DATABASE d SET
    ROLE = "role"  # ALTER ROLE r SET
    DATABASE = "database"  # ALTER DATABASE d SET
    ALL_ROLES = "all-roles"  # ALTER ROLE ALL SET
    SERVER = "server"  # postgresql.conf, command line, defaults (pg_settings)


PRECEDENCE = (Level.DATABASE_ROLE, Level.ROLE, Level.DATABASE, Level.ALL_ROLES)
# pg_settings sources that show the reading session's own settings rather than the server's.
_SESSION_SOURCES = frozenset({"client", "session", "database", "user", "database user", "global"})


@dataclass(frozen=True)
class Setting:
    """One setting on one side: the server's value and what each level sets it to."""

    name: str
    kind: SettingType
    context: str
    server: str | None  # None: hidden by a setting of the role pgparity reads as
    server_source: str
    levels: Mapping[Level, str] = field(default_factory=dict)

    def effective(self) -> tuple[str | None, Level, str]:
        """The value a session of the role in the database starts with, its level and source."""
        for level in PRECEDENCE:
            if level in self.levels:
                return self.levels[level], level, level.value
        return self.server, Level.SERVER, self.server_source


@dataclass(frozen=True)
class DatabaseFacts:
    name: str
    encoding: str
    lc_collate: str
    lc_ctype: str
    locale_provider: str
    icu_locale: str | None
    recorded_collation_version: str | None  # datcollversion
    collation_version: str | None  # the version the server's library has now


@dataclass(frozen=True)
class Topology:
    streaming: int
    synchronous: int
    hidden: int  # replication connections whose state this role may not see
    with_feedback: int  # streaming replicas that send hot_standby_feedback (backend_xmin set)
    in_recovery: bool

    @property
    def mode(self) -> str:
        if self.synchronous:
            return "synchronous"
        return "asynchronous" if self.streaming else "none"


@dataclass(frozen=True)
class Facts:
    settings: Mapping[str, Setting]  # by lower-case name
    database: DatabaseFacts
    collations: Mapping[str, tuple[str, str | None]]  # name → (provider, version)
    extensions: Mapping[str, str]  # installed: name → version
    available: Mapping[str, frozenset[str]]  # for the names asked about: versions available
    default_versions: Mapping[str, str]
    topology: Topology
    role: str | None
    role_exists: bool
    schema_digest: str

    def value(self, name: str) -> str | None:
        found = self.settings.get(name.lower())
        return found.server if found else None


def read_facts(
    conn: psycopg.Connection[Any], *, role: str | None, extensions: Sequence[str] = ()
) -> Facts:
    """Everything the floor compares, from the database ``conn`` is connected to.

    ``conn`` must be idle in autocommit mode; the reading happens in one REPEATABLE READ, READ
    ONLY transaction, whose ``SET LOCAL search_path`` ends with it.
    """
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            rows = cur.execute(floor_sql.SETTINGS).fetchall()
            cur.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            facts = _read_rest(cur, rows, role, extensions)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the parity floor: {error_message(exc)}") from exc
    return Facts(**facts, schema_digest=take_snapshot(conn).digest)


def _read_rest(
    cur: psycopg.Cursor[Any],
    setting_rows: list[tuple[Any, ...]],
    role: str | None,
    extensions: Sequence[str],
) -> dict[str, Any]:
    levels = cur.execute(floor_sql.LEVEL_SETTINGS, {"role": role}).fetchall()
    names = list(extensions)
    return {
        "settings": _settings(setting_rows, levels),
        "database": DatabaseFacts(*cur.execute(floor_sql.DATABASE).fetchone() or ()),
        "collations": {
            str(n): (str(p), v) for n, p, v in cur.execute(floor_sql.USED_COLLATIONS).fetchall()
        },
        "extensions": {str(n): str(v) for n, v in cur.execute(floor_sql.EXTENSIONS).fetchall()},
        "available": _available(cur, names),
        "default_versions": {
            str(n): str(v)
            for n, v in cur.execute(floor_sql.DEFAULT_VERSIONS, {"names": names}).fetchall()
        },
        "topology": _topology(cur),
        "role": role,
        "role_exists": role is None or _role_exists(cur, role),
    }


def _settings(rows: list[tuple[Any, ...]], levels: list[tuple[Any, ...]]) -> dict[str, Setting]:
    by_level: dict[str, dict[Level, str]] = {}
    for level, entry in levels:
        name, _, value = str(entry).partition("=")
        by_level.setdefault(name.lower(), {})[Level(level)] = value
    settings = {}
    for name, value, unit, vartype, source, context in rows:
        hidden = source in _SESSION_SOURCES
        settings[str(name).lower()] = Setting(
            name=str(name),
            kind=SettingType(str(vartype), unit),
            context=str(context),
            server=None if hidden else value,
            server_source=str(source),
            levels=by_level.get(str(name).lower(), {}),
        )
    # A custom setting (``app.tenant``) set only by ALTER DATABASE/ROLE is a placeholder the
    # server keeps out of pg_settings: it exists through its levels alone.
    for name, found in by_level.items():
        if name not in settings and "." in name:
            settings[name] = Setting(name, SettingType("string"), "user", None, "default", found)
    return settings


def _available(cur: psycopg.Cursor[Any], names: list[str]) -> dict[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for name, version in cur.execute(floor_sql.AVAILABLE_VERSIONS, {"names": names}).fetchall():
        found.setdefault(str(name), set()).add(str(version))
    return {name: frozenset(versions) for name, versions in found.items()}


def _topology(cur: psycopg.Cursor[Any]) -> Topology:
    row = cur.execute(floor_sql.REPLICATION).fetchone()
    assert row is not None  # an aggregate always returns a row
    return Topology(int(row[0]), int(row[1]), int(row[2]), int(row[3]), bool(row[4]))


def _role_exists(cur: psycopg.Cursor[Any], role: str) -> bool:
    row = cur.execute(floor_sql.ROLE_EXISTS, {"role": role}).fetchone()
    return bool(row and row[0])
