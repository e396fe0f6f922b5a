"""From production to the clone: the settings that bring a clone to parity.

``clone_parameters`` is the ``spec.postgres.parameters`` block of a StagingClone, from
production's effective values (what a session of the migration role starts with).
``parity_statements`` are the ``ALTER DATABASE / ALTER ROLE … SET`` statements that make an
external clone's levels equal production's, for every must-equal setting that differs: a level
production sets is set on the clone, a level production does not set is reset there, and a
server-level difference is made up at the database level when the setting allows it (else it
is left as a comment naming the postgresql.conf line). Both are pure; ``apply_statements`` runs
the statements, only on a database marked as a pgparity clone, never on production.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from pgparity.errors import DatabaseError, UsageError
from pgparity.parity.facts import PRECEDENCE, Facts, Level, Setting
from pgparity.parity.floor import shown
from pgparity.parity.settings import (
    LIST_QUOTED,
    SettingClass,
    SettingsList,
    list_elements,
    normalize,
    with_unit,
)
from pgparity.pg.clone import is_clone
from pgparity.pg.connection import error_message

# Contexts ALTER DATABASE / ALTER ROLE can set (pg_settings.context); the rest are the server's.
_PER_SESSION = frozenset({"user", "superuser"})


@dataclass(frozen=True)
class ParityPlan:
    statements: tuple[sql.Composed, ...]
    manual: tuple[str, ...]  # server settings only postgresql.conf (or spec.postgres) can set

    def text(self) -> str:
        lines = [f"{statement.as_string(None)};" for statement in self.statements]
        lines += [f"-- {line}" for line in self.manual]
        return "\n".join(lines) + "\n" if lines else "-- the clone's settings are at parity\n"


def compared_settings(production: Facts, settings: SettingsList) -> list[Setting]:
    found = []
    for name in sorted(production.settings):
        if settings.classify(name) is SettingClass.MUST_EQUAL:
            found.append(production.settings[name])
    return found


def clone_parameters(production: Facts, settings: SettingsList) -> dict[str, str]:
    """Production's effective value of every must-equal setting that is not at PostgreSQL's
    built-in default, as postgresql.conf takes it (a clone starts from the same defaults, and
    the StagingClone schema takes at most 64 parameters)."""
    parameters = {}
    for setting in compared_settings(production, settings):
        value, level, source = setting.effective()
        if value is not None and source != "default":
            parameters[setting.name] = (
                with_unit(value, setting.kind.unit) if level is Level.SERVER else value
            )
    return parameters


def parity_statements(production: Facts, staging: Facts, settings: SettingsList) -> ParityPlan:
    statements: list[sql.Composed] = []
    manual: list[str] = []
    target = _Target(staging.database.name, staging.role)
    for mine in compared_settings(production, settings):
        theirs = staging.settings.get(mine.name.lower()) or _unset_custom(mine)
        if theirs is None:
            manual.append(f"{shown(mine.name)}: not a setting on the clone's server")
            continue
        wanted, note = _wanted_levels(mine, theirs)
        if note:
            manual.append(note)
        statements += _level_changes(mine, theirs, wanted, target)
    return ParityPlan(tuple(statements), tuple(manual))


def _unset_custom(mine: Setting) -> Setting | None:
    """A custom setting (``app.tenant``) exists in a session only where something sets it:
    absent on the clone means set nowhere, which levels can change."""
    if "." not in mine.name:
        return None
    return Setting(mine.name, mine.kind, "user", None, "default")


@dataclass(frozen=True)
class _Target:
    database: str
    role: str | None


def _wanted_levels(mine: Setting, theirs: Setting) -> tuple[dict[Level, str], str]:
    """The clone's levels that give its sessions production's effective value."""
    wanted = dict(mine.levels)
    if any(level in wanted for level in PRECEDENCE) or _same(mine.server, theirs, mine):
        return wanted, ""
    if mine.server is None:
        return wanted, f"{shown(mine.name)}: production's server value is hidden from pgparity"
    value = with_unit(mine.server, mine.kind.unit)
    if theirs.context in _PER_SESSION:
        wanted[Level.DATABASE] = value
        return wanted, ""
    return wanted, (
        f"{shown(mine.name)} = {shown(value)}: a {theirs.context} setting; set it in the clone's "
        "postgresql.conf (spec.postgres.parameters)"
    )


def _same(value: str | None, theirs: Setting, mine: Setting) -> bool:
    other = theirs.server
    if value is None or other is None:
        return value == other
    return normalize(mine.name, value, mine.kind) == normalize(mine.name, other, theirs.kind)


def _level_changes(
    mine: Setting, theirs: Setting, wanted: Mapping[Level, str], target: _Target
) -> list[sql.Composed]:
    changes = []
    for level in PRECEDENCE:
        if level in (Level.ROLE, Level.DATABASE_ROLE) and target.role is None:
            continue
        have, want = theirs.levels.get(level), wanted.get(level)
        if want is None and have is None:
            continue
        if (
            want is not None
            and have is not None
            and normalize(mine.name, want, mine.kind) == normalize(mine.name, have, theirs.kind)
        ):
            continue
        changes.append(_alter(level, target, mine.name, want))
    return changes


def _alter(level: Level, target: _Target, name: str, value: str | None) -> sql.Composed:
    change = (
        sql.SQL("RESET {}").format(_name(name))
        if value is None
        else sql.SQL("SET {} = {}").format(_name(name), _value(name, value))
    )
    database, role = sql.Identifier(target.database), sql.Identifier(target.role or "")
    heads = {
        Level.DATABASE: sql.SQL("ALTER DATABASE {}").format(database),
        Level.ROLE: sql.SQL("ALTER ROLE {}").format(role),
        Level.DATABASE_ROLE: sql.SQL("ALTER ROLE {} IN DATABASE {}").format(role, database),
        Level.ALL_ROLES: sql.SQL("ALTER ROLE ALL"),
    }
    return sql.SQL("{} {}").format(heads[level], change)


def _name(name: str) -> sql.Composable:
    return sql.Identifier(*name.lower().split("."))


def _value(name: str, value: str) -> sql.Composable:
    if name.lower() in LIST_QUOTED:
        elements = list_elements(value)
        return sql.SQL(", ").join(sql.Literal(e) for e in elements) if elements else sql.Literal("")
    return sql.Literal(value)


def apply_statements(conn: psycopg.Connection[Any], statements: Sequence[sql.Composed]) -> None:
    """Run ``statements`` in one transaction on the clone ``conn`` is connected to; a database
    pgparity has not marked as a clone is refused before anything runs."""
    if not is_clone(conn):
        raise UsageError(
            f"refusing --apply: database {shown(conn.info.dbname)} is not marked as a pgparity "
            "clone (ALTER DATABASE … SET pgparity.clone = 'name' marks one on purpose)"
        )
    try:
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot bring the clone to parity: {error_message(exc)}") from exc
