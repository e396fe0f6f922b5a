"""Which table-level lock each statement takes, on which relation — read from the statement.

PostgreSQL documents a lock level per command (and per ALTER TABLE sub-command: the statement
takes the strongest). This is the static half of lock analysis; the trace measures the real
one on a clone, and the evidence join compares the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType, ReindexObjectType

from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import (
    RELATION_KINDS,
    added_constraints,
    alter_commands,
    qualified,
    relation_name,
)

AEL = LockMode.ACCESS_EXCLUSIVE
SUE = LockMode.SHARE_UPDATE_EXCLUSIVE
SRE = LockMode.SHARE_ROW_EXCLUSIVE


@dataclass(frozen=True)
class TakenLock:
    relation: str
    mode: LockMode


# ALTER TABLE sub-commands below ACCESS EXCLUSIVE (documentation of ALTER TABLE, "Notes").
_ALTER_MODES = {
    AlterTableType.AT_ValidateConstraint: SUE,
    AlterTableType.AT_SetStatistics: SUE,
    AlterTableType.AT_ClusterOn: SUE,
    AlterTableType.AT_DropCluster: SUE,
    AlterTableType.AT_SetRelOptions: SUE,
    AlterTableType.AT_ResetRelOptions: SUE,
    AlterTableType.AT_AttachPartition: SUE,
    AlterTableType.AT_EnableTrig: SRE,
    AlterTableType.AT_DisableTrig: SRE,
    AlterTableType.AT_EnableAlwaysTrig: SRE,
    AlterTableType.AT_EnableReplicaTrig: SRE,
    AlterTableType.AT_EnableTrigAll: SRE,
    AlterTableType.AT_DisableTrigAll: SRE,
    AlterTableType.AT_EnableTrigUser: SRE,
    AlterTableType.AT_DisableTrigUser: SRE,
}

# LOCK TABLE's mode numbers (lockdefs.h: 1 AccessShareLock … 8 AccessExclusiveLock).
_LOCK_NUMBERS = dict(enumerate(LockMode, start=1))


def statement_locks(node: ast.Node) -> tuple[TakenLock, ...]:
    """The locks ``node`` takes, the strongest per relation, in the order first named."""
    strongest: dict[str, LockMode] = {}
    for relation, mode in _locks(node):
        if relation and (relation not in strongest or mode.strength > strongest[relation].strength):
            strongest[relation] = mode
    return tuple(TakenLock(relation, mode) for relation, mode in strongest.items())


def _locks(node: ast.Node) -> Iterator[tuple[str | None, LockMode]]:
    reader = _READERS.get(type(node))
    if reader is not None:
        yield from reader(node)


def _alter_table(node: ast.AlterTableStmt) -> Iterator[tuple[str | None, LockMode]]:
    modes = [_command_mode(cmd) for cmd in alter_commands(node)]
    if modes:
        yield relation_name(node.relation), max(modes, key=lambda m: m.strength)
    for constraint, _ in added_constraints(node):
        if constraint.contype == ConstrType.CONSTR_FOREIGN:
            yield relation_name(constraint.pktable), SRE


def _command_mode(cmd: ast.AlterTableCmd) -> LockMode:
    if cmd.subtype == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
        return SUE
    if (
        cmd.subtype == AlterTableType.AT_AddConstraint
        and getattr(cmd.def_, "contype", None) == ConstrType.CONSTR_FOREIGN
    ):
        return SRE  # ADD FOREIGN KEY: SHARE ROW EXCLUSIVE on both tables
    return _ALTER_MODES.get(cmd.subtype, AEL) if cmd.subtype is not None else AEL


def _create_index(node: ast.IndexStmt) -> Iterator[tuple[str | None, LockMode]]:
    yield relation_name(node.relation), SUE if node.concurrent else LockMode.SHARE


def _drop(node: ast.DropStmt) -> Iterator[tuple[str | None, LockMode]]:
    if node.removeType not in RELATION_KINDS:
        return
    mode = SUE if node.concurrent else AEL
    for parts in node.objects or ():
        yield qualified(parts), mode


def _rename(node: ast.RenameStmt) -> Iterator[tuple[str | None, LockMode]]:
    if node.relation is None:
        return
    # ALTER INDEX … RENAME takes SHARE UPDATE EXCLUSIVE since PostgreSQL 12.
    mode = SUE if node.renameType == ObjectType.OBJECT_INDEX else AEL
    yield relation_name(node.relation), mode


def _truncate(node: ast.TruncateStmt) -> Iterator[tuple[str | None, LockMode]]:
    for relation in node.relations or ():
        yield relation_name(relation), AEL


def _vacuum(node: ast.VacuumStmt) -> Iterator[tuple[str | None, LockMode]]:
    full = any(getattr(o, "defname", "") == "full" for o in node.options or ())
    for rel in node.rels or ():
        yield relation_name(getattr(rel, "relation", None)), AEL if full else SUE


def _cluster(node: ast.ClusterStmt) -> Iterator[tuple[str | None, LockMode]]:
    yield relation_name(node.relation), AEL


def _reindex(node: ast.ReindexStmt) -> Iterator[tuple[str | None, LockMode]]:
    concurrently = any(getattr(p, "defname", "") == "concurrently" for p in node.params or ())
    if node.kind == ReindexObjectType.REINDEX_OBJECT_TABLE:
        yield relation_name(node.relation), SUE if concurrently else LockMode.SHARE
    elif node.kind == ReindexObjectType.REINDEX_OBJECT_INDEX:
        yield relation_name(node.relation), SUE if concurrently else AEL


def _lock(node: ast.LockStmt) -> Iterator[tuple[str | None, LockMode]]:
    mode = _LOCK_NUMBERS.get(int(node.mode or 8), AEL)
    for relation in node.relations or ():
        yield relation_name(relation), mode


def _create_trigger(node: ast.CreateTrigStmt) -> Iterator[tuple[str | None, LockMode]]:
    yield relation_name(node.relation), SRE


def _refresh(node: ast.RefreshMatViewStmt) -> Iterator[tuple[str | None, LockMode]]:
    yield relation_name(node.relation), LockMode.EXCLUSIVE if node.concurrent else AEL


def _create_table(node: ast.CreateStmt) -> Iterator[tuple[str | None, LockMode]]:
    """A new table takes SHARE ROW EXCLUSIVE on every table its foreign keys reference, and
    PARTITION OF takes ACCESS EXCLUSIVE on the parent."""
    if node.partbound is not None:
        for parent in node.inhRelations or ():
            yield relation_name(parent), AEL
    for element in node.tableElts or ():
        for constraint in _constraints_of(element):
            if constraint.contype == ConstrType.CONSTR_FOREIGN:
                yield relation_name(constraint.pktable), SRE


def _constraints_of(element: Any) -> list[ast.Constraint]:
    if isinstance(element, ast.Constraint):
        return [element]
    if isinstance(element, ast.ColumnDef):
        return [c for c in element.constraints or () if isinstance(c, ast.Constraint)]
    return []


def _replace_view(node: ast.ViewStmt) -> Iterator[tuple[str | None, LockMode]]:
    if node.replace:
        yield relation_name(node.view), AEL


_READERS: dict[type, Any] = {
    ast.AlterTableStmt: _alter_table,
    ast.IndexStmt: _create_index,
    ast.DropStmt: _drop,
    ast.RenameStmt: _rename,
    ast.TruncateStmt: _truncate,
    ast.VacuumStmt: _vacuum,
    ast.ClusterStmt: _cluster,
    ast.ReindexStmt: _reindex,
    ast.LockStmt: _lock,
    ast.CreateTrigStmt: _create_trigger,
    ast.RefreshMatViewStmt: _refresh,
    ast.CreateStmt: _create_table,
    ast.ViewStmt: _replace_view,
}
