"""Dropping and renaming tables, views, databases and other objects; enums."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.enums import ObjectType

from pgparity.lint.catalog import Rule
from pgparity.lint.findings import Hit
from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import RELATION_KINDS, qualified, relation_name
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState

AEL = LockMode.ACCESS_EXCLUSIVE
_DROPS = {
    ObjectType.OBJECT_TABLE: (Rule.DROP_TABLE, "table"),
    ObjectType.OBJECT_VIEW: (Rule.DROP_VIEW, "view"),
    ObjectType.OBJECT_MATVIEW: (Rule.DROP_VIEW, "materialized view"),
}


def drop_relation(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.DropStmt)
    found = _DROPS.get(node.removeType) if node.removeType is not None else None
    if found is None:
        return
    rule, kind = found
    for parts in node.objects or ():
        name = qualified(parts)
        if not state.is_new(name):
            yield Hit(
                rule,
                f"dropping {kind} {name} breaks every client that still uses it; stop using it "
                "in a deploy first, drop it in a later one",
                relation=name,
                lock=AEL,
            )


def drop_database(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.DropdbStmt)
    yield Hit(Rule.DROP_DATABASE, f"DROP DATABASE {node.dbname} destroys every object in it")


def rename(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.RenameStmt)
    relation = relation_name(node.relation)
    if state.is_new(relation):
        return
    if node.renameType == ObjectType.OBJECT_COLUMN:
        yield Hit(
            Rule.RENAME_COLUMN,
            f"renaming column {node.subname} of {relation} to {node.newname} breaks the running "
            "application between the migration and its deploy; add the new column, write "
            "both, switch reads, drop the old one",
            relation=relation,
            lock=AEL,
        )
    elif node.renameType == ObjectType.OBJECT_TABLE:
        yield Hit(
            Rule.RENAME_TABLE,
            f"renaming table {relation} to {node.newname} breaks the running application "
            "between the migration and its deploy; rename and leave a view with the old name",
            relation=relation,
            lock=AEL,
        )
    else:
        kind = _kind_name(node.renameType)
        name = node.subname or relation or _object_name(node.object)
        on = f" on {relation}" if node.subname and relation else ""
        yield Hit(
            Rule.RENAME_OBJECT,
            f"renaming {kind} {name}{on} to {node.newname} breaks code that names it (error "
            "handlers match constraint names, queries name views and functions)",
            relation=relation,
        )


def _object_name(target: object) -> str:
    names = getattr(target, "names", None) or getattr(target, "objname", None)
    if isinstance(target, tuple | list):
        names = target
    return qualified(names) if names else (str(getattr(target, "sval", "")) or "?")


def _kind_name(kind: ObjectType | None) -> str:
    if kind is None:
        return "object"
    if kind == ObjectType.OBJECT_TABCONSTRAINT:
        return "constraint"
    return kind.name.removeprefix("OBJECT_").replace("_", " ").lower()


def create_enum(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.CreateEnumStmt)
    yield Hit(
        Rule.CREATE_ENUM,
        f"enum {qualified(node.typeName)}: values cannot be removed or reordered later, and "
        "nothing else can be attached to them; a lookup table with a foreign key can",
    )


def alter_enum(statement: Statement, state: FileState) -> Iterator[Hit]:
    node = statement.node
    assert isinstance(node, ast.AlterEnumStmt)
    enum = qualified(node.typeName)
    if node.oldVal:
        yield Hit(
            Rule.ENUM_VALUE_RENAME,
            f"renaming value {node.oldVal!r} of {enum} to {node.newVal!r} breaks code that "
            "still writes or compares the old label",
        )
    elif node.newVal and not node.newValNeighbor:
        yield Hit(
            Rule.ENUM_VALUE_ORDER,
            f"ADD VALUE {node.newVal!r} to {enum} without BEFORE or AFTER puts it last in the "
            "sort order; say where it belongs",
        )


# Where a DDL statement names the relation it creates or changes (temporary ones live in
# pg_temp whatever the search_path, so they are left alone).
_DDL_TARGETS: dict[type, str] = {
    ast.CreateStmt: "relation",
    ast.IndexStmt: "relation",
    ast.AlterTableStmt: "relation",
    ast.ViewStmt: "view",
    ast.RenameStmt: "relation",
}


def unqualified_names(statement: Statement, state: FileState) -> Iterator[Hit]:
    """squawk's require-table-schema: the relation a DDL statement creates, changes or drops
    is named with its schema."""
    for name, location in _ddl_names(statement.node):
        yield Hit(
            Rule.UNQUALIFIED_NAME,
            f"{name} is named without a schema: it is whatever search_path finds first, which "
            "the migration runner's role may set differently; write the schema",
            location,
        )


def _ddl_names(node: ast.Node) -> Iterator[tuple[str, int | None]]:
    if isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
        yield from _unqualified(node.into.rel)
    elif isinstance(node, ast.DropStmt) and node.removeType in RELATION_KINDS:
        for parts in node.objects or ():
            names = [str(getattr(p, "sval", p)) for p in parts]
            if len(names) == 1:
                yield names[0], None
    elif isinstance(node, ast.TruncateStmt):
        for relation in node.relations or ():
            yield from _unqualified(relation)
    elif type(node) in _DDL_TARGETS:
        yield from _unqualified(getattr(node, _DDL_TARGETS[type(node)]))


def _unqualified(relation: object) -> Iterator[tuple[str, int | None]]:
    if not isinstance(relation, ast.RangeVar) or not relation.relname or relation.schemaname:
        return
    if relation.relpersistence == "t":
        return
    yield relation.relname, relation.location
