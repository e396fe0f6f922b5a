"""Transactions and the session: nesting, statements PostgreSQL refuses in a transaction,
timeouts in effect when a dangerous lock is requested, work done while one is held."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import AlterTableType, ReindexObjectType, TransactionStmtKind

from pgparity.lint.catalog import Rule
from pgparity.lint.findings import Hit
from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import alter_commands, relation_name
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState

_BEGINS = (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START)
_ENDS = (TransactionStmtKind.TRANS_STMT_COMMIT, TransactionStmtKind.TRANS_STMT_ROLLBACK)
# Statements that neither take locks nor do work: running them while a lock is held is free.
_FREE = (ast.TransactionStmt, ast.VariableSetStmt, ast.VariableShowStmt)
_CLUSTER_LEVEL = (
    ast.CreatedbStmt,
    ast.DropdbStmt,
    ast.AlterSystemStmt,
    ast.CreateTableSpaceStmt,
    ast.DropTableSpaceStmt,
    ast.CreateSubscriptionStmt,
    ast.DropSubscriptionStmt,
)


def transaction_nesting(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.TransactionStmt)
    if node.kind in _BEGINS and state.open_transaction is not None:
        yield Hit(
            Rule.TRANSACTION_NESTING,
            f"BEGIN inside the transaction opened at statement {state.open_transaction.index}: "
            "PostgreSQL only warns, and the first COMMIT ends both",
        )
    elif node.kind in _BEGINS and state.assume_in_transaction:
        yield Hit(
            Rule.TRANSACTION_NESTING,
            "BEGIN in a file the migration tool already runs in a transaction "
            "(assume-in-transaction): its COMMIT ends the tool's transaction early",
        )
    elif node.kind in _ENDS and state.open_transaction is None:
        verb = "COMMIT" if node.kind == TransactionStmtKind.TRANS_STMT_COMMIT else "ROLLBACK"
        where = (
            "ends the migration tool's transaction early (assume-in-transaction)"
            if state.assume_in_transaction
            else "without a BEGIN does nothing but warn"
        )
        yield Hit(Rule.TRANSACTION_NESTING, f"{verb} {where}")


def end_of_file(state: FileState) -> list[tuple[Statement, Hit]]:
    begin = state.open_transaction
    if begin is None:
        return []
    return [
        (
            begin,
            Hit(
                Rule.UNCOMMITTED_TRANSACTION,
                "BEGIN without COMMIT: when the runner's session ends the transaction is rolled "
                "back, and nothing of the migration is applied",
            ),
        )
    ]


def non_transactional(statement: Statement, state: FileState) -> Iterator[Hit]:
    if not state.in_transaction:
        return
    what = refused_in_transaction(statement.node)
    if what is not None:
        where = (
            f"the transaction opened at statement {state.open_transaction.index}"
            if state.open_transaction is not None
            else "the transaction the migration tool runs the file in (assume-in-transaction)"
        )
        yield Hit(
            Rule.NON_TRANSACTIONAL_IN_TRANSACTION,
            f"{what} cannot run inside a transaction block, and this runs inside {where}: it "
            "fails with 25001; run it in a migration of its own, outside a transaction",
        )


def refused_in_transaction(node: ast.Node) -> str | None:
    """The statements PostgreSQL refuses in a transaction block (PreventInTransactionBlock)."""
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt) and _reindex_refused(node):
        return "REINDEX CONCURRENTLY (or of a schema, system or database)"
    if isinstance(node, ast.AlterTableStmt) and any(
        cmd.subtype == AlterTableType.AT_DetachPartition and getattr(cmd.def_, "concurrent", 0)
        for cmd in alter_commands(node)
    ):
        return "DETACH PARTITION CONCURRENTLY"
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER without a table"
    if isinstance(node, _CLUSTER_LEVEL):
        return type(node).__name__.removesuffix("Stmt")
    return None


def _reindex_refused(node: ast.ReindexStmt) -> bool:
    concurrently = any(getattr(p, "defname", "") == "concurrently" for p in node.params or ())
    wide = node.kind in (
        ReindexObjectType.REINDEX_OBJECT_SCHEMA,
        ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        ReindexObjectType.REINDEX_OBJECT_DATABASE,
    )
    return concurrently or wide


def timeouts(statement: Statement, state: FileState) -> Iterator[Hit]:
    """Once per file: the first dangerous lock on an existing relation requested while no
    lock_timeout (statement_timeout) is in effect — set earlier in the file, and still in
    effect (``SET LOCAL`` outside a transaction, or after its COMMIT, is not)."""
    dangerous = [lock for lock in state.existing(state.current_locks) if lock.mode.dangerous]
    if not dangerous:
        return
    first = dangerous[0]
    for setting, rule, effect in (
        (
            "lock_timeout",
            Rule.MISSING_LOCK_TIMEOUT,
            "if a long transaction holds the table, this statement waits for it, and every "
            "query of the application queues behind this statement; SET lock_timeout = '2s' "
            "first, and retry",
        ),
        (
            "statement_timeout",
            Rule.MISSING_STATEMENT_TIMEOUT,
            "nothing bounds how long the lock is then held; SET statement_timeout first",
        ),
    ):
        if rule.value in state.reported or state.timeout_set(setting):
            continue
        state.reported.add(rule.value)
        yield Hit(
            rule,
            f"{first.mode.sql_name} on {first.relation} ({first.mode.blocks}) is requested "
            f"with no {setting} set: {effect}",
            relation=first.relation,
            lock=first.mode,
        )


def work_after_dangerous_lock(statement: Statement, state: FileState) -> Iterator[Hit]:
    if not state.in_transaction or not state.held or isinstance(statement.node, _FREE):
        return
    relation, mode = next(iter(state.held.items()))
    others = f" (and {len(state.held) - 1} more)" if len(state.held) > 1 else ""
    yield Hit(
        Rule.WORK_AFTER_DANGEROUS_LOCK,
        f"this statement runs while the transaction holds {mode.sql_name} on {relation}"
        f"{others}, taken by an earlier statement: the application stays blocked ({mode.blocks})"
        " for this statement's duration too; commit the lock-taking statement on its own",
        relation=relation,
        lock=mode,
    )


def multiple_alter_table(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.AlterTableStmt)
    table = relation_name(node.relation)
    if table in state.altered and not state.is_new(table):
        yield Hit(
            Rule.MULTIPLE_ALTER_TABLE,
            f"another ALTER TABLE on {table}: each one takes its lock again and may scan or "
            "rewrite the table again; combine the actions into one statement",
            relation=table,
            lock=LockMode.ACCESS_EXCLUSIVE,
        )


def not_re_runnable(statement: Statement, state: FileState) -> Iterator[Hit]:
    """Outside a transaction a failure leaves the statements before it applied; a re-run then
    fails on them unless each one can run twice (IF [NOT] EXISTS)."""
    if state.in_transaction:
        return
    what = _not_idempotent(statement.node)
    if what is not None:
        yield Hit(
            Rule.NOT_RE_RUNNABLE,
            f"{what}: outside a transaction, a re-run after a partial failure fails here",
        )


def _not_idempotent(node: ast.Node) -> str | None:
    if isinstance(node, ast.CreateStmt | ast.IndexStmt | ast.CreateSeqStmt | ast.CreateSchemaStmt):
        exists = getattr(node, "if_not_exists", False)
        return (
            None if exists else f"{type(node).__name__.removesuffix('Stmt')} without IF NOT EXISTS"
        )
    if isinstance(node, ast.DropStmt):
        return None if node.missing_ok else "DROP without IF EXISTS"
    if isinstance(node, ast.AlterTableStmt):
        for cmd in alter_commands(node):
            if cmd.subtype in (AlterTableType.AT_AddColumn, AlterTableType.AT_DropColumn) and not (
                cmd.missing_ok
            ):
                verb = "ADD COLUMN" if cmd.subtype == AlterTableType.AT_AddColumn else "DROP COLUMN"
                return f"{verb} without IF {'NOT ' if verb == 'ADD COLUMN' else ''}EXISTS"
    return None
