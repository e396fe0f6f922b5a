"""Plan how to undo what a non-transactional statement did to a clone, from two catalog snapshots.

A statement such as CREATE INDEX CONCURRENTLY cannot be rolled back, so after rehearsing it on a
clone pgparity puts the clone's schema back the way it was. The plan is a pure function of the
snapshot before and the snapshot after: an index that appeared is dropped (CONCURRENTLY, so the
clone is never blocked), an index that disappeared is rebuilt from its definition, a partition
that was detached is attached again, a constraint that appeared or disappeared is dropped or
re-added. Anything else is returned as unplannable so the caller reports it rather than
guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from pgparity.schema.digest import CatalogSnapshot, ChangeKind, ObjectChange, diff_snapshots


@dataclass(frozen=True)
class CompensationStep:
    statement: sql.Composed | sql.SQL
    reason: str


@dataclass(frozen=True)
class CompensationPlan:
    steps: tuple[CompensationStep, ...] = ()
    unplannable: tuple[ObjectChange, ...] = field(default_factory=tuple)


def plan_compensation(before: CatalogSnapshot, after: CatalogSnapshot) -> CompensationPlan:
    """Steps that turn the schema of ``after`` back into the schema of ``before``."""
    steps: list[CompensationStep] = []
    unplannable: list[ObjectChange] = []
    changes = diff_snapshots(before, after)
    # Constraints first, then tables (re-attach), then indexes: an index re-created on a
    # re-attached partition must see the partition attached.
    for change in sorted(changes, key=_order):
        planned = _plan_one(change)
        if planned is None:
            unplannable.append(change)
        else:
            steps.extend(planned)
    return CompensationPlan(steps=tuple(steps), unplannable=tuple(unplannable))


def _order(change: ObjectChange) -> tuple[int, str]:
    kind = change.key.partition(":")[0]
    return ({"constraint": 0, "table": 1, "index": 2}.get(kind, 3), change.key)


def _plan_one(change: ObjectChange) -> list[CompensationStep] | None:
    kind = change.key.partition(":")[0]
    if kind == "index":
        return _plan_index(change)
    if kind == "constraint":
        return _plan_constraint(change)
    if kind == "table" and change.kind is ChangeKind.CHANGED:
        return _plan_reattach(change.before, change.after)
    return None


def _plan_index(change: ObjectChange) -> list[CompensationStep]:
    steps: list[CompensationStep] = []
    if change.kind in (ChangeKind.ADDED, ChangeKind.CHANGED):
        new = change.after
        steps.append(
            CompensationStep(
                sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(
                    sql.Identifier(new["schema"], new["name"])
                ),
                f"drop index {new['schema']}.{new['name']} built by the rehearsal",
            )
        )
    if change.kind in (ChangeKind.REMOVED, ChangeKind.CHANGED):
        old = change.before
        steps.append(
            CompensationStep(
                _trusted(concurrent_index_definition(old["definition"])),
                f"rebuild index {old['schema']}.{old['name']} dropped by the rehearsal",
            )
        )
    return steps


def concurrent_index_definition(definition: str) -> str:
    """``CREATE [UNIQUE] INDEX name ON …`` (pg_get_indexdef) → the CONCURRENTLY form."""
    return re.sub(r"^CREATE (UNIQUE )?INDEX ", r"CREATE \1INDEX CONCURRENTLY ", definition, count=1)


def _plan_constraint(change: ObjectChange) -> list[CompensationStep] | None:
    if change.kind is ChangeKind.ADDED and change.after.get("on_kind") == "table":
        new = change.after
        return [
            CompensationStep(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    sql.Identifier(new["schema"], new["on"]), sql.Identifier(new["name"])
                ),
                f"drop constraint {new['name']} added by the rehearsal",
            )
        ]
    if change.kind is ChangeKind.REMOVED and change.before.get("on_kind") == "table":
        old = change.before
        return [
            CompensationStep(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                    sql.Identifier(old["schema"], old["on"]),
                    sql.Identifier(old["name"]),
                    _trusted(old["definition"]),
                ),
                f"re-add constraint {old['name']} removed by the rehearsal",
            )
        ]
    return None


def _plan_reattach(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[CompensationStep] | None:
    """A partition detached by the rehearsal is attached again with its original bound."""
    parent = before.get("partition_of")
    unchanged = {k: v for k, v in before.items() if k not in ("partition_of", "partition_bound")}
    rest_after = {k: v for k, v in after.items() if k not in ("partition_of", "partition_bound")}
    if not parent or after.get("partition_of") or unchanged != rest_after:
        return None
    return [
        CompensationStep(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} {}").format(
                sql.Identifier(parent["schema"], parent["name"]),
                sql.Identifier(before["schema"], before["name"]),
                _trusted(before["partition_bound"]),
            ),
            f"re-attach partition {before['schema']}.{before['name']}",
        )
    ]


def _trusted(text: str) -> sql.SQL:
    """SQL text the server itself produced (pg_get_indexdef, pg_get_constraintdef, …)."""
    return sql.SQL(text)
