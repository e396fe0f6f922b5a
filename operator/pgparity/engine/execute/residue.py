"""What a validation left behind that ROLLBACK did not undo — measured, put back where it may be.

Some state lives outside transactions. Sequence values move with every ``nextval`` (an INSERT
into a serial column is enough) and the migration runs up to three times (the dry-run, the
checks with it applied, the re-run check), traffic inserts too; pg_class.reltuples/relpages
are updated in place by CREATE INDEX, ANALYZE and VACUUM; a session-level advisory lock
outlives the transaction that took it; replication slots are not transactional. pgparity
reads these before and after a validation: sequences that moved are set back to their values
on clones (unless committed traffic wrote rows that use them) and reported elsewhere; the
dry-run session's advisory locks are released; everything is listed in the report's
``side_effects``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from pgparity.models.report import SideEffect, SideEffectKind
from pgparity.pg.connection import error_message
from pgparity.pg.schemas import user_schema
from pgparity.pg.sqlexec import own_queries

# Sequences the session may read, in the schemas the digest covers.
_SEQUENCES = f"""
SELECT c.oid::int8, n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'S'
  AND {user_schema("n.nspname")}
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY 1
"""
_STATISTICS = f"""
SELECT format('%I.%I', n.nspname, c.relname), c.relpages, c.reltuples::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'i', 'p')
  AND {user_schema("n.nspname")}
"""
_SLOTS = "SELECT slot_name::text FROM pg_replication_slots"
_ADVISORY = """
SELECT format('advisory %s/%s/%s', classid, objid, objsubid), mode
FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'
"""
_SEQUENCE_BATCH = 500


@dataclass(frozen=True)
class SequenceValue:
    oid: int
    name: str
    last_value: int
    is_called: bool

    def describe(self) -> str:
        return f"{self.last_value}{'' if self.is_called else ' (not yet called)'}"


@dataclass(frozen=True)
class ResidueSnapshot:
    """The state outside transactions that a validation can change."""

    sequences: Mapping[int, SequenceValue]
    statistics: Mapping[str, tuple[int, float]]
    slots: frozenset[str]


def take_residue_snapshot(conn: psycopg.Connection[Any]) -> ResidueSnapshot:
    """Read it on an idle connection (each query is its own statement; nothing is written)."""
    with own_queries(conn):
        return ResidueSnapshot(
            sequences=_sequence_values(conn),
            statistics={
                str(name): (int(pages), float(tuples))
                for name, pages, tuples in conn.execute(_STATISTICS).fetchall()
            },
            slots=frozenset(str(row[0]) for row in conn.execute(_SLOTS).fetchall()),
        )


def _sequence_values(conn: psycopg.Connection[Any]) -> dict[int, SequenceValue]:
    listed = conn.execute(_SEQUENCES).fetchall()
    values: dict[int, SequenceValue] = {}
    for start in range(0, len(listed), _SEQUENCE_BATCH):
        batch = listed[start : start + _SEQUENCE_BATCH]
        query = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT {}::int8, last_value, is_called FROM {}").format(
                sql.Literal(int(oid)), sql.Identifier(str(schema), str(name))
            )
            for oid, schema, name in batch
        )
        names = {int(oid): f"{schema}.{name}" for oid, schema, name in batch}
        for oid, last_value, is_called in conn.execute(query).fetchall():
            values[int(oid)] = SequenceValue(
                int(oid), names[int(oid)], int(last_value), bool(is_called)
            )
    return values


def compare(before: ResidueSnapshot, after: ResidueSnapshot) -> list[SideEffect]:
    """What moved between the two snapshots (sequences, statistics, replication slots)."""
    found = [
        SideEffect(
            kind=SideEffectKind.SEQUENCE,
            object=old.name,
            before=old.describe(),
            after=after.sequences[oid].describe(),
        )
        for oid, old in before.sequences.items()
        if oid in after.sequences and _moved(old, after.sequences[oid])
    ]
    found += [
        SideEffect(
            kind=SideEffectKind.STATISTICS,
            object=name,
            before=_stats(stats),
            after=_stats(after.statistics[name]),
        )
        for name, stats in sorted(before.statistics.items())
        if name in after.statistics and after.statistics[name] != stats
    ]
    found += [
        SideEffect(kind=SideEffectKind.REPLICATION_SLOT, object=slot, before=None, after="created")
        for slot in sorted(after.slots - before.slots)
    ]
    found += [
        SideEffect(kind=SideEffectKind.REPLICATION_SLOT, object=slot, before="existed", after=None)
        for slot in sorted(before.slots - after.slots)
    ]
    return found


def _moved(old: SequenceValue, new: SequenceValue) -> bool:
    return (old.last_value, old.is_called) != (new.last_value, new.is_called)


def _stats(stats: tuple[int, float]) -> str:
    return f"relpages {stats[0]}, reltuples {stats[1]:g}"


def put_back(
    conn: psycopg.Connection[Any],
    before: ResidueSnapshot,
    effects: Sequence[SideEffect],
    *,
    sequences: bool = True,
) -> list[SideEffect]:
    """On a clone: set every sequence that moved back to its value (``setval``; not when
    ``sequences`` is False) and drop replication slots the run created; say which could be."""
    by_name = {value.name: value for value in before.sequences.values()}
    done = []
    for effect in effects:
        if effect.kind is SideEffectKind.SEQUENCE and sequences and effect.object in by_name:
            old = by_name[effect.object]
            done.append(_attempt(conn, effect, _SETVAL, (old.oid, old.last_value, old.is_called)))
        elif effect.kind is SideEffectKind.REPLICATION_SLOT and effect.after is not None:
            done.append(_attempt(conn, effect, _DROP_SLOT, (effect.object,)))
        else:
            done.append(effect)
    return done


_SETVAL = "SELECT pg_catalog.setval(%s::pg_catalog.oid::pg_catalog.regclass, %s, %s)"
_DROP_SLOT = "SELECT pg_catalog.pg_drop_replication_slot(%s)"


def _attempt(
    conn: psycopg.Connection[Any], effect: SideEffect, query: str, params: tuple[Any, ...]
) -> SideEffect:
    try:
        conn.execute(query, params)
    except psycopg.Error as exc:
        return replace(effect, note=f"not put back: {error_message(exc)}")
    return replace(effect, restored=True)


def release_advisory_locks(conn: psycopg.Connection[Any]) -> list[SideEffect]:
    """Session-level advisory locks the dry-run session still holds after its ROLLBACK
    (taken by a function pgparity could not see into), released."""
    with own_queries(conn):
        held = conn.execute(_ADVISORY).fetchall()
        if held:
            conn.execute("SELECT pg_catalog.pg_advisory_unlock_all()")
    return [
        SideEffect(
            kind=SideEffectKind.ADVISORY_LOCK,
            object=str(name),
            before=None,
            after=str(mode),
            restored=True,
        )
        for name, mode in held
    ]
