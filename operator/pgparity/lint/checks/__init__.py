"""The rules, as functions from a statement (and what the file did before it) to hits.

Each module holds one family; ``CHECKS`` maps a statement's node type to the checks that read
it, so a statement is looked at only by the rules that can fire on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pglast import ast

from pgparity.lint.checks import columns, constraints, indexes, objects, sessions
from pgparity.lint.findings import Hit
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState

Check = Callable[[Statement, FileState], Iterable[Hit]]

CHECKS: dict[type, tuple[Check, ...]] = {
    ast.IndexStmt: (indexes.create_index,),
    ast.DropStmt: (indexes.drop_index, objects.drop_relation),
    ast.ReindexStmt: (indexes.reindex,),
    ast.VacuumStmt: (indexes.vacuum_full,),
    ast.ClusterStmt: (indexes.cluster,),
    ast.TruncateStmt: (indexes.truncate_cascade,),
    ast.AlterTableStmt: (
        indexes.detach_partition,
        constraints.added_constraints,
        constraints.validate_constraint,
        constraints.set_not_null,
        columns.column_changes,
        columns.added_columns,
        sessions.multiple_alter_table,
    ),
    ast.AlterDomainStmt: (constraints.alter_domain,),
    ast.CreateDomainStmt: (constraints.create_domain,),
    ast.CreateStmt: (),
    ast.DropdbStmt: (objects.drop_database,),
    ast.RenameStmt: (objects.rename,),
    ast.CreateEnumStmt: (objects.create_enum,),
    ast.AlterEnumStmt: (objects.alter_enum,),
    ast.TransactionStmt: (sessions.transaction_nesting,),
}

# Rules that read every statement, whatever its type.
EVERY_STATEMENT: tuple[Check, ...] = (
    columns.column_types,
    columns.duplicate_columns,
    sessions.non_transactional,
    sessions.timeouts,
    sessions.work_after_dangerous_lock,
    sessions.not_re_runnable,
    objects.unqualified_names,
)


def check_statement(statement: Statement, state: FileState) -> list[Hit]:
    hits: list[Hit] = []
    for check in (*CHECKS.get(type(statement.node), ()), *EVERY_STATEMENT):
        hits.extend(check(statement, state))
    return hits


def check_end_of_file(state: FileState) -> list[tuple[Statement, Hit]]:
    return sessions.end_of_file(state)
