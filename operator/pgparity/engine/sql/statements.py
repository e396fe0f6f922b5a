"""Split a migration into statements with PostgreSQL's own parser, and classify each one.

pglast wraps libpg_query, the server's grammar compiled as a library, so a statement that parses
here parses on the server. Classification decides where a statement may run in the dry-run:
inside the rolled-back transaction, on its own (CREATE INDEX CONCURRENTLY and friends, which the
server refuses inside a transaction block), or never (transaction control that would let the
migration commit behind the dry-run's back).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import AlterTableType, ReindexObjectType, TransactionStmtKind
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from pgparity.engine.sql.effects import Effect, classify
from pgparity.engine.sql.plpgsql import do_block_tree, embedded_statements, tree_keys
from pgparity.models.report import Phase, StatementResult


class StatementKind(StrEnum):
    TRANSACTIONAL = "transactional"
    NON_TRANSACTIONAL = "non-transactional"
    TRANSACTION_CONTROL = "transaction-control"


class OutsideAction(StrEnum):
    """What a statement that must run outside a transaction does, which decides its rehearsal."""

    INDEX_BUILD = "index-build"
    INDEX_DROP = "index-drop"
    REINDEX = "reindex"
    DETACH_PARTITION = "detach-partition"
    VACUUM = "vacuum"
    CLUSTER_LEVEL = "cluster-level"


@dataclass(frozen=True)
class Statement:
    index: int
    line: int
    column: int
    sql: str
    node: str
    kind: StatementKind
    reason: str | None = None
    action: OutsideAction | None = None
    relations: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    in_transaction_sql: str | None = None
    effects: tuple[Effect, ...] = ()
    targets: tuple[tuple[str, ...], ...] = ()

    @property
    def transactional(self) -> bool:
        return self.kind is StatementKind.TRANSACTIONAL

    def result(self, *, executed: bool, **measured: Any) -> StatementResult:
        """This statement's entry in the report, with what was measured of it."""
        phase = Phase.TRANSACTION if self.transactional else Phase.OUTSIDE_TRANSACTION
        return StatementResult(
            index=self.index,
            line=self.line,
            sql=self.sql,
            transactional=self.transactional,
            executed=executed,
            phase=phase,
            **measured,
        )


@dataclass(frozen=True)
class SyntaxProblem:
    line: int
    column: int
    message: str


@dataclass(frozen=True)
class ParsedMigration:
    statements: tuple[Statement, ...]
    unwrapped: bool = False
    syntax_error: SyntaxProblem | None = None

    @property
    def transactional(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.kind is StatementKind.TRANSACTIONAL)

    @property
    def outside(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.kind is StatementKind.NON_TRANSACTIONAL)

    @property
    def transaction_control(self) -> tuple[Statement, ...]:
        return tuple(s for s in self.statements if s.kind is StatementKind.TRANSACTION_CONTROL)


def parse_migration(text: str) -> ParsedMigration:
    """Parse ``text``; a syntax error is returned (with line and column), not raised."""
    try:
        raw_statements = parse_sql(text)
    except ParseError as exc:
        message, offset = _parse_error_parts(exc)
        line, column = line_and_column(text, offset)
        return ParsedMigration(statements=(), syntax_error=SyntaxProblem(line, column, message))
    pieces = [_statement_piece(text, raw) for raw in raw_statements or ()]
    pieces = [p for p in pieces if p[1].strip()]
    unwrapped = _is_wrapped(pieces)
    if unwrapped:
        pieces = pieces[1:-1]
    statements = tuple(
        _classify(index, text, offset, sql, node)
        for index, (offset, sql, node) in enumerate(pieces, start=1)
    )
    return ParsedMigration(statements=statements, unwrapped=unwrapped)


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of character ``offset`` in ``text``."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _parse_error_parts(exc: ParseError) -> tuple[str, int]:
    # pglast reports (message, character offset); the offset is 0-based.
    args = exc.args
    message = str(args[0]) if args else str(exc)
    offset = int(args[1]) if len(args) > 1 and isinstance(args[1], int) else 0
    return message, offset


def _statement_piece(text: str, raw: ast.RawStmt) -> tuple[int, str, ast.Node]:
    # pglast gives character offsets; a length of 0 means "to the end of the input".
    start = raw.stmt_location or 0
    end = start + raw.stmt_len if raw.stmt_len else len(text)
    sql = text[start:end].strip().rstrip(";").rstrip()
    lead = len(text[start:end]) - len(text[start:end].lstrip())
    assert raw.stmt is not None  # libpg_query never yields an empty RawStmt
    return start + lead, sql, raw.stmt


def _is_wrapped(pieces: Sequence[tuple[int, str, ast.Node]]) -> bool:
    """One BEGIN/START TRANSACTION first and one COMMIT/END last, no other transaction control."""
    if len(pieces) < 2:
        return False
    first, last = pieces[0][2], pieces[-1][2]
    opens = isinstance(first, ast.TransactionStmt) and first.kind in (
        TransactionStmtKind.TRANS_STMT_BEGIN,
        TransactionStmtKind.TRANS_STMT_START,
    )
    closes = (
        isinstance(last, ast.TransactionStmt) and last.kind == TransactionStmtKind.TRANS_STMT_COMMIT
    )
    inner = [p[2] for p in pieces[1:-1]]
    return opens and closes and not any(isinstance(n, ast.TransactionStmt) for n in inner)


def _classify(index: int, text: str, offset: int, sql: str, node: ast.Node) -> Statement:
    line, column = line_and_column(text, offset)
    common: dict[str, Any] = {
        "index": index,
        "line": line,
        "column": column,
        "sql": sql,
        "node": type(node).__name__,
        "relations": _relations(node),
        "references": referenced_relations(node),
        "effects": classify(node),
        "targets": written_relations(node),
    }
    control = _transaction_control_reason(node)
    if control:
        return Statement(kind=StatementKind.TRANSACTION_CONTROL, reason=control, **common)
    outside = _outside_transaction(node)
    if outside:
        action, reason = outside
        return Statement(
            kind=StatementKind.NON_TRANSACTIONAL,
            reason=reason,
            action=action,
            in_transaction_sql=_without_concurrently(node),
            **common,
        )
    return Statement(kind=StatementKind.TRANSACTIONAL, **common)


def _transaction_control_reason(node: ast.Node) -> str | None:
    if isinstance(node, ast.TransactionStmt):
        kind = node.kind.name if node.kind is not None else "BEGIN"
        name = kind.removeprefix("TRANS_STMT_").replace("_", " ")
        return f"transaction control ({name}) would end or split the dry-run's transaction"
    if isinstance(node, ast.DoStmt) and _do_block_ends_transaction(node):
        return "the DO block runs COMMIT or ROLLBACK, which would end the dry-run's transaction"
    return None


def _do_block_ends_transaction(node: ast.DoStmt) -> bool:
    tree = do_block_tree(node)
    return any(key in ("PLpgSQL_stmt_commit", "PLpgSQL_stmt_rollback") for key in tree_keys(tree))


def _outside_transaction(node: ast.Node) -> tuple[OutsideAction, str] | None:
    """Statements PostgreSQL refuses inside a transaction block (PreventInTransactionBlock)."""
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return OutsideAction.INDEX_BUILD, "CREATE INDEX CONCURRENTLY cannot run in a transaction"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return OutsideAction.INDEX_DROP, "DROP INDEX CONCURRENTLY cannot run in a transaction"
    if isinstance(node, ast.ReindexStmt):
        return _reindex_outside(node)
    if isinstance(node, ast.AlterTableStmt) and _detaches_concurrently(node):
        return (
            OutsideAction.DETACH_PARTITION,
            "DETACH PARTITION CONCURRENTLY cannot run in a transaction",
        )
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return OutsideAction.VACUUM, "VACUUM cannot run in a transaction"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return OutsideAction.CLUSTER_LEVEL, "CLUSTER without a table cannot run in a transaction"
    cluster_level = _CLUSTER_LEVEL.get(type(node).__name__)
    if cluster_level:
        return OutsideAction.CLUSTER_LEVEL, f"{cluster_level} cannot run in a transaction"
    if isinstance(node, ast.DiscardStmt) and node.target == 0:  # DISCARD ALL
        return OutsideAction.CLUSTER_LEVEL, "DISCARD ALL cannot run in a transaction"
    return None


_CLUSTER_LEVEL = {
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    "AlterSubscriptionStmt": "ALTER SUBSCRIPTION",
}


def _reindex_outside(node: ast.ReindexStmt) -> tuple[OutsideAction, str] | None:
    concurrently = False
    for param in node.params or ():
        if isinstance(param, ast.DefElem) and param.defname == "concurrently":
            value = getattr(param.arg, "sval", None) or getattr(param.arg, "boolval", None)
            concurrently = param.arg is None or str(value).lower() in ("true", "on", "1")
    if concurrently:
        return OutsideAction.REINDEX, "REINDEX CONCURRENTLY cannot run in a transaction"
    multiple = (
        ReindexObjectType.REINDEX_OBJECT_SCHEMA,
        ReindexObjectType.REINDEX_OBJECT_SYSTEM,
        ReindexObjectType.REINDEX_OBJECT_DATABASE,
    )
    if node.kind in multiple:
        return OutsideAction.REINDEX, "REINDEX SCHEMA/SYSTEM/DATABASE cannot run in a transaction"
    return None


def _detaches_concurrently(node: ast.AlterTableStmt) -> bool:
    return any(
        isinstance(cmd, ast.AlterTableCmd)
        and cmd.subtype == AlterTableType.AT_DetachPartition
        and isinstance(cmd.def_, ast.PartitionCmd)
        and bool(cmd.def_.concurrent)
        for cmd in node.cmds or ()
    )


def _relations(node: ast.Node) -> tuple[str, ...]:
    """Relation names a statement names directly, as written (``schema.name`` or ``name``)."""
    found: list[str] = []
    if isinstance(node, ast.IndexStmt | ast.AlterTableStmt | ast.ReindexStmt | ast.ClusterStmt):
        found.extend(_range_var_name(node.relation))
    if isinstance(node, ast.VacuumStmt):
        for rel in node.rels or ():
            found.extend(_range_var_name(getattr(rel, "relation", None)))
    if isinstance(node, ast.DropStmt):
        for name_parts in node.objects or ():
            if isinstance(name_parts, tuple | list):
                found.append(".".join(getattr(p, "sval", "") for p in name_parts))
    return tuple(found)


def _range_var_name(range_var: Any) -> list[str]:
    if not isinstance(range_var, ast.RangeVar):
        return []
    if range_var.schemaname:
        return [f"{range_var.schemaname}.{range_var.relname}"]
    return [str(range_var.relname)]


class _RangeVars(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def visit_RangeVar(self, ancestors: Any, node: ast.RangeVar) -> None:  # noqa: N802
        name = f"{node.schemaname}.{node.relname}" if node.schemaname else str(node.relname)
        if name not in self.names:
            self.names.append(name)


class _WrittenRelations(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[tuple[str, ...]] = []

    def _add(self, relation: Any) -> None:
        if not isinstance(relation, ast.RangeVar) or not relation.relname:
            return
        name = (
            (relation.schemaname, relation.relname) if relation.schemaname else (relation.relname,)
        )
        if name not in self.names:
            self.names.append(tuple(str(part) for part in name))

    def visit_InsertStmt(self, ancestors: Any, node: ast.InsertStmt) -> None:  # noqa: N802
        self._add(node.relation)

    def visit_UpdateStmt(self, ancestors: Any, node: ast.UpdateStmt) -> None:  # noqa: N802
        self._add(node.relation)

    def visit_DeleteStmt(self, ancestors: Any, node: ast.DeleteStmt) -> None:  # noqa: N802
        self._add(node.relation)

    def visit_MergeStmt(self, ancestors: Any, node: ast.MergeStmt) -> None:  # noqa: N802
        self._add(node.relation)

    def visit_CopyStmt(self, ancestors: Any, node: ast.CopyStmt) -> None:  # noqa: N802
        if node.is_from:
            self._add(node.relation)


def written_relations(node: ast.Node) -> tuple[tuple[str, ...], ...]:
    """Relations a statement writes rows into (INSERT, UPDATE, DELETE, MERGE, COPY FROM —
    in CTEs and DO blocks too), as written (``(schema, name)`` or ``(name,)``): the dry-run
    checks that none is a foreign table."""
    visitor = _WrittenRelations()
    for statement in (node, *embedded_statements(node)):
        visitor(statement)
    return tuple(visitor.names)


def referenced_relations(node: ast.Node) -> tuple[str, ...]:
    """Every relation a statement mentions anywhere (FROM lists, subqueries, targets), as
    written; names of CTEs appear too and simply resolve to nothing on the target."""
    visitor = _RangeVars()
    visitor(node)
    return tuple(visitor.names)


def _without_concurrently(node: ast.Node) -> str | None:
    """The in-transaction form of CREATE/DROP INDEX and DETACH PARTITION … CONCURRENTLY.

    It has the same effect on the schema, so checks that need the migration applied (plans,
    re-runs) can apply it inside a transaction. Other statements have no such form.
    """
    if isinstance(node, ast.IndexStmt | ast.DropStmt) and node.concurrent:
        changed = _copy(node)
        changed.concurrent = False
        return str(RawStream()(changed))
    if isinstance(node, ast.AlterTableStmt) and _detaches_concurrently(node):
        changed = _copy(node)
        for cmd in changed.cmds or ():
            if isinstance(cmd.def_, ast.PartitionCmd):
                cmd.def_.concurrent = False
        return str(RawStream()(changed))
    return None


def _copy(node: Any) -> Any:
    # pglast nodes are mutable; change a copy, never the parse the report is built from.
    return copy.deepcopy(node)


def created_extensions(text: str) -> tuple[tuple[str, str | None], ...]:
    """``(name, version or None)`` of every ``CREATE EXTENSION`` in ``text``; none when the
    text does not parse (validate reports the syntax error)."""
    try:
        raw_statements = parse_sql(text) or ()
    except ParseError:
        return ()
    found = []
    for raw in raw_statements:
        node = raw.stmt
        if isinstance(node, ast.CreateExtensionStmt):
            versions = [o.arg.sval for o in node.options or () if o.defname == "new_version"]
            found.append((str(node.extname), str(versions[0]) if versions else None))
    return tuple(found)
