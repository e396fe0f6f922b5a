"""What the linter knows at each statement of a file: what the file created above, whether a
transaction is open, which timeouts are in effect, which dangerous locks are held.

Objects created earlier in the same file are new: nobody else uses them yet, so locking or
rewriting them costs nothing (eugene tracks this too). Everything else is taken to exist, with
data, in use — the trace on a clone is what finds out how much.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pglast import ast
from pglast.enums import (
    AlterTableType,
    ConstrType,
    NullTestType,
    ObjectType,
    TransactionStmtKind,
    VariableSetKind,
)

from pgparity.lint.locking import TakenLock
from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import (
    DEFAULT_SCHEMA,
    added_constraints,
    alter_commands,
    function_name,
    qualified,
    relation_name,
    string_value,
)
from pgparity.lint.source import Statement

TIMEOUTS = ("lock_timeout", "statement_timeout")
_BEGINS = (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START)
_ENDS = (
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED,
    TransactionStmtKind.TRANS_STMT_PREPARE,
)


@dataclass
class FileState:
    assume_in_transaction: bool = False
    open_transaction: Statement | None = None  # the explicit BEGIN, while open
    created: set[str] = field(default_factory=set)
    timeouts: dict[str, bool] = field(default_factory=dict)  # name → set for the session
    local_timeouts: set[str] = field(default_factory=set)  # SET LOCAL: until the transaction ends
    reported: set[str] = field(default_factory=set)  # once-per-file rules already reported
    held: dict[str, LockMode] = field(default_factory=dict)  # dangerous locks, this transaction
    altered: set[str] = field(default_factory=set)
    not_valid: set[tuple[str, str]] = field(default_factory=set)  # (table, constraint), this tx
    not_null_checks: set[tuple[str, str]] = field(default_factory=set)  # (table, column) proven
    not_null_set: set[str] = field(default_factory=set)  # tables with a SET NOT NULL above
    # CHECK (col IS NOT NULL) NOT VALID by (table, constraint), awaiting VALIDATE CONSTRAINT.
    pending_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    current_locks: tuple[TakenLock, ...] = ()  # the locks of the statement being checked

    @property
    def in_transaction(self) -> bool:
        return self.open_transaction is not None or self.assume_in_transaction

    def is_new(self, relation: str | None) -> bool:
        return relation is not None and relation in self.created

    def existing(self, locks: tuple[TakenLock, ...]) -> list[TakenLock]:
        return [lock for lock in locks if not self.is_new(lock.relation)]

    def timeout_set(self, name: str) -> bool:
        return self.timeouts.get(name, False) or name in self.local_timeouts

    # --- after each statement -------------------------------------------------------------

    def after(self, statement: Statement, locks: tuple[TakenLock, ...]) -> None:
        node = statement.node
        self._track_created(node)
        self._track_settings(node)
        if isinstance(node, ast.AlterTableStmt):
            self._track_constraints(node)
        for lock in self.existing(locks):
            if lock.mode.dangerous:
                previous = self.held.get(lock.relation)
                if previous is None or lock.mode.strength > previous.strength:
                    self.held[lock.relation] = lock.mode
        if isinstance(node, ast.TransactionStmt):
            self._track_transaction(statement, node)
        elif not self.in_transaction:
            self._end_transaction()  # autocommit: every statement is its own transaction

    def _track_transaction(self, statement: Statement, node: ast.TransactionStmt) -> None:
        if node.kind in _BEGINS:
            self.open_transaction = statement
        elif node.kind in _ENDS:
            self.open_transaction = None
            self._end_transaction()

    def _end_transaction(self) -> None:
        self.held.clear()
        self.not_valid.clear()
        self.local_timeouts.clear()

    def _track_created(self, node: ast.Node) -> None:
        for name in _created_names(node):
            self.created.add(name)
        if isinstance(node, ast.RenameStmt) and node.renameType in _RELATION_KINDS:
            old = relation_name(node.relation)
            if old in self.created and node.newname and node.relation is not None:
                schema = node.relation.schemaname or DEFAULT_SCHEMA
                self.created.add(qualified([schema, node.newname]))
        if isinstance(node, ast.AlterTableStmt) and not self.is_new(relation_name(node.relation)):
            self.altered.add(relation_name(node.relation) or "")

    def _track_settings(self, node: ast.Node) -> None:
        if isinstance(node, ast.VariableSetStmt):
            self._track_set(node)
        elif isinstance(node, ast.SelectStmt):
            for name, value, local in _set_config_calls(node):
                self._set_timeout(name, value, local)

    def _track_set(self, node: ast.VariableSetStmt) -> None:
        if node.kind == VariableSetKind.VAR_RESET_ALL:
            self.timeouts.clear()
            self.local_timeouts.clear()
        name = str(node.name or "")
        if name not in TIMEOUTS:
            return
        if node.kind in (VariableSetKind.VAR_RESET, VariableSetKind.VAR_SET_DEFAULT):
            self.timeouts[name] = False
            self.local_timeouts.discard(name)
        elif node.kind == VariableSetKind.VAR_SET_VALUE and node.args:
            self._set_timeout(name, string_value(node.args[0]), bool(node.is_local))

    def _set_timeout(self, name: str, value: str | None, local: bool) -> None:
        """``0`` disables a timeout; SET LOCAL outside a transaction does nothing (the server
        only warns), which is how many migrations believe they have a timeout and do not."""
        enabled = value is not None and value.strip().lower() not in ("0", "0ms", "0s", "")
        if local:
            if self.in_transaction and enabled:
                self.local_timeouts.add(name)
            elif self.in_transaction:
                self.local_timeouts.discard(name)
            return
        self.timeouts[name] = enabled

    def _track_constraints(self, node: ast.AlterTableStmt) -> None:
        table = relation_name(node.relation) or ""
        for constraint, _ in added_constraints(node):
            if constraint.skip_validation and constraint.conname:
                self.not_valid.add((table, str(constraint.conname)))
            column = _not_null_check_column(constraint)
            if column and not constraint.skip_validation:
                self.not_null_checks.add((table, column))
            if column and constraint.skip_validation:
                self.pending_checks[(table, str(constraint.conname))] = column
        for cmd in alter_commands(node):
            if cmd.subtype == AlterTableType.AT_SetNotNull:
                self.not_null_set.add(table)
            if cmd.subtype == AlterTableType.AT_ValidateConstraint and cmd.name:
                column = self.pending_checks.get((table, str(cmd.name)))
                if column:
                    self.not_null_checks.add((table, column))


_RELATION_KINDS = {
    ObjectType.OBJECT_TABLE,
    ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW,
    ObjectType.OBJECT_INDEX,
    ObjectType.OBJECT_SEQUENCE,
}


def _created_names(node: ast.Node) -> list[str]:
    if isinstance(node, ast.CreateStmt):
        return [relation_name(node.relation) or ""]
    if isinstance(node, ast.CreateTableAsStmt):
        return [relation_name(getattr(node.into, "rel", None)) or ""]
    if isinstance(node, ast.ViewStmt):
        return [] if node.replace else [relation_name(node.view) or ""]
    if isinstance(node, ast.IndexStmt) and node.idxname:
        schema = node.relation.schemaname if node.relation else None
        return [qualified([schema, node.idxname] if schema else [node.idxname])]
    if isinstance(node, ast.CreateSeqStmt):
        return [relation_name(node.sequence) or ""]
    return []


def _not_null_check_column(constraint: ast.Constraint) -> str | None:
    """The column of ``CHECK (col IS NOT NULL)``, which lets SET NOT NULL skip its scan."""
    if constraint.contype != ConstrType.CONSTR_CHECK:
        return None
    expr = constraint.raw_expr
    if not isinstance(expr, ast.NullTest) or expr.nulltesttype != NullTestType.IS_NOT_NULL:
        return None
    fields = getattr(expr.arg, "fields", None) or ()
    return str(fields[-1].sval) if fields and hasattr(fields[-1], "sval") else None


def _set_config_calls(node: ast.SelectStmt) -> list[tuple[str, str | None, bool]]:
    """``SELECT set_config('lock_timeout', '1s', is_local)`` calls in a select list."""
    calls = []
    for target in node.targetList or ():
        call = getattr(target, "val", None)
        if not isinstance(call, ast.FuncCall) or function_name(call) != "set_config":
            continue
        args = list(call.args or ())
        name = string_value(args[0]) if len(args) == 3 else None
        if name in TIMEOUTS:
            local = (string_value(args[2]) or "").lower() in ("true", "t", "on", "1")
            calls.append((str(name), string_value(args[1]), local))
    return calls
