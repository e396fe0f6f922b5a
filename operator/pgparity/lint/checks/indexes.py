"""Index builds and drops, REINDEX, DETACH PARTITION, VACUUM FULL / CLUSTER, TRUNCATE."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import AlterTableType, DropBehavior, ObjectType, ReindexObjectType

from pgparity.lint.catalog import Rule
from pgparity.lint.checks.common import altered_table, takes
from pgparity.lint.findings import Hit
from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import qualified, relation_name
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState

AEL = LockMode.ACCESS_EXCLUSIVE


def create_index(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.IndexStmt)
    table = relation_name(node.relation)
    if node.concurrent or state.is_new(table):
        return
    kind = "CREATE UNIQUE INDEX" if node.unique else "CREATE INDEX"
    yield Hit(
        Rule.CREATE_INDEX_NON_CONCURRENTLY,
        f"{kind} without CONCURRENTLY {takes(LockMode.SHARE, table)} for the whole build; "
        "use CREATE INDEX CONCURRENTLY",
        relation=table,
        lock=LockMode.SHARE,
    )


def drop_index(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.DropStmt)
    if node.removeType != ObjectType.OBJECT_INDEX or node.concurrent:
        return
    for parts in node.objects or ():
        index = qualified(parts)
        if not state.is_new(index):
            yield Hit(
                Rule.DROP_INDEX_NON_CONCURRENTLY,
                f"DROP INDEX {index} without CONCURRENTLY takes ACCESS EXCLUSIVE on its table "
                "(blocks every read and write) and waits behind every reader; use DROP INDEX "
                "CONCURRENTLY",
                relation=index,
                lock=AEL,
            )


def reindex(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.ReindexStmt)
    if any(getattr(p, "defname", "") == "concurrently" for p in node.params or ()):
        return
    target = relation_name(node.relation)
    if state.is_new(target):
        return
    table_level = node.kind == ReindexObjectType.REINDEX_OBJECT_TABLE
    lock = LockMode.SHARE if table_level else AEL
    what = target or "every index of the schema or database"
    yield Hit(
        Rule.REINDEX_NON_CONCURRENTLY,
        f"REINDEX of {what} without CONCURRENTLY blocks writes to the table (and every use of "
        "the index) until it is rebuilt; use REINDEX … CONCURRENTLY",
        relation=target,
        lock=lock,
    )


def detach_partition(statement: Statement, state: FileState) -> Iterator[Hit]:
    parent, commands = altered_table(statement, state)
    for cmd in commands:
        if cmd.subtype == AlterTableType.AT_DetachPartition and not getattr(
            cmd.def_, "concurrent", False
        ):
            yield Hit(
                Rule.DETACH_PARTITION_NON_CONCURRENTLY,
                f"DETACH PARTITION without CONCURRENTLY {takes(AEL, parent)}; use DETACH "
                "PARTITION … CONCURRENTLY (PostgreSQL 14+)",
                relation=parent,
                lock=AEL,
            )


def vacuum_full(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.VacuumStmt)
    if not node.is_vacuumcmd or not any(
        getattr(o, "defname", "") == "full" for o in node.options or ()
    ):
        return
    tables = [relation_name(getattr(r, "relation", None)) for r in node.rels or ()] or [None]
    for table in tables:
        if not state.is_new(table):
            yield _rewrite_hit("VACUUM FULL", table)


def cluster(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.ClusterStmt)
    table = relation_name(node.relation)
    if not state.is_new(table):
        yield _rewrite_hit("CLUSTER", table)


def _rewrite_hit(command: str, table: str | None) -> Hit:
    return Hit(
        Rule.VACUUM_FULL_OR_CLUSTER,
        f"{command} rewrites {table or 'every table'} and {takes(AEL, None)} for the whole "
        "rewrite; use pg_repack or pg_squeeze, or REPACK … CONCURRENTLY where available",
        relation=table,
        lock=AEL,
    )


def truncate_cascade(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.TruncateStmt)
    if node.behavior != DropBehavior.DROP_CASCADE:
        return
    tables = [relation_name(r) for r in node.relations or ()]
    yield Hit(
        Rule.TRUNCATE_CASCADE,
        f"TRUNCATE {', '.join(t for t in tables if t)} CASCADE also empties every table with a "
        "foreign key to it, and those tables' referrers, under ACCESS EXCLUSIVE",
        relation=tables[0] if tables else None,
        lock=AEL,
    )
