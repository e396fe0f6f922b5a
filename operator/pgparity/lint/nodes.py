"""Small readers over pglast's parse tree: names, types, columns, constraints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS

DEFAULT_SCHEMA = "public"
# Object types whose DROP names relations (and takes ACCESS EXCLUSIVE on each).
RELATION_KINDS = frozenset(
    {
        ObjectType.OBJECT_TABLE,
        ObjectType.OBJECT_VIEW,
        ObjectType.OBJECT_MATVIEW,
        ObjectType.OBJECT_INDEX,
        ObjectType.OBJECT_SEQUENCE,
        ObjectType.OBJECT_FOREIGN_TABLE,
    }
)


def relation_name(range_var: Any) -> str | None:
    """``schema.name`` of a RangeVar; unqualified names are taken to be in ``public``."""
    if not isinstance(range_var, ast.RangeVar) or not range_var.relname:
        return None
    return qualified([range_var.schemaname or DEFAULT_SCHEMA, range_var.relname])


def qualified(parts: Any) -> str:
    """``schema.name`` of a name list (``(String, String)``); a bare name gets ``public``.
    Spelt as the server's ``format('%I.%I')`` spells it, as the trace names relations."""
    names = [str(getattr(p, "sval", p)) for p in (parts or ())]
    if len(names) == 1:
        names.insert(0, DEFAULT_SCHEMA)
    return ".".join(quote_ident(name) for name in names[-2:])


_SAFE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_QUOTED_KEYWORDS = RESERVED_KEYWORDS | COL_NAME_KEYWORDS | TYPE_FUNC_NAME_KEYWORDS


def quote_ident(name: str) -> str:
    """PostgreSQL's quote_ident: quotes unless lower-case, plain and not a keyword."""
    if _SAFE.match(name) and name not in _QUOTED_KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def type_name(type_: Any) -> str:
    """The type's own name, lower case, without ``pg_catalog`` (``int4``, ``varchar``, …)."""
    if not isinstance(type_, ast.TypeName) or not type_.names:
        return ""
    return str(type_.names[-1].sval).lower()


def is_builtin_type(type_: Any) -> bool:
    """Written with SQL's keyword syntax (``integer``, ``char(3)``), which the grammar turns
    into ``pg_catalog.…``, or an unqualified name such as ``int4`` or ``serial``."""
    names = list(getattr(type_, "names", None) or ())
    return len(names) == 1 or (len(names) > 1 and str(names[0].sval) == "pg_catalog")


SERIALS = {"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"}


def is_serial(type_: Any) -> bool:
    """``serial`` and friends are not types but shorthand, and only unqualified."""
    names = list(getattr(type_, "names", None) or ())
    return len(names) == 1 and str(names[0].sval).lower() in SERIALS


def function_name(call: ast.FuncCall) -> str:
    names = list(call.funcname or ())
    return str(names[-1].sval).lower() if names else ""


def has_typmods(type_: Any) -> bool:
    return bool(getattr(type_, "typmods", None))


@dataclass(frozen=True)
class NewColumn:
    """A column defined by CREATE TABLE or ALTER TABLE … ADD COLUMN."""

    table: str
    column: ast.ColumnDef
    added: bool  # ADD COLUMN to a table (rather than CREATE TABLE)

    @property
    def name(self) -> str:
        return str(self.column.colname or "")

    @property
    def constraints(self) -> tuple[ast.Constraint, ...]:
        return tuple(c for c in self.column.constraints or () if isinstance(c, ast.Constraint))

    def has(self, *kinds: ConstrType) -> bool:
        return any(c.contype in kinds for c in self.constraints)

    def default(self) -> Any:
        for c in self.constraints:
            if c.contype == ConstrType.CONSTR_DEFAULT:
                return c.raw_expr
        return None

    @property
    def location(self) -> int | None:
        return _location(self.column)


def alter_commands(node: ast.AlterTableStmt) -> Iterator[ast.AlterTableCmd]:
    for cmd in node.cmds or ():
        if isinstance(cmd, ast.AlterTableCmd):
            yield cmd


def new_columns(node: ast.Node) -> Iterator[NewColumn]:
    """Columns a CREATE TABLE or ALTER TABLE … ADD COLUMN defines."""
    if isinstance(node, ast.CreateStmt):
        table = relation_name(node.relation) or ""
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                yield NewColumn(table, element, added=False)
    elif isinstance(node, ast.AlterTableStmt):
        table = relation_name(node.relation) or ""
        for cmd in alter_commands(node):
            if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
                yield NewColumn(table, cmd.def_, added=True)


def column_types(node: ast.Node) -> Iterator[tuple[str, Any, int | None]]:
    """(column, TypeName, location) for every column a statement defines or retypes."""
    for column in new_columns(node):
        yield column.name, column.column.typeName, column.location
    if isinstance(node, ast.AlterTableStmt):
        for cmd in alter_commands(node):
            if cmd.subtype == AlterTableType.AT_AlterColumnType and isinstance(
                cmd.def_, ast.ColumnDef
            ):
                yield str(cmd.name or ""), cmd.def_.typeName, _location(cmd.def_)


def added_constraints(node: ast.AlterTableStmt) -> Iterator[tuple[ast.Constraint, str | None]]:
    """Constraints an ALTER TABLE adds — by ADD CONSTRAINT, or inline in ADD COLUMN (eugene#110:
    ``ADD COLUMN … CHECK`` validates the table just the same) — with the column it came with."""
    for cmd in alter_commands(node):
        if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            yield cmd.def_, None
        elif cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            for c in cmd.def_.constraints or ():
                if isinstance(c, ast.Constraint):
                    yield c, str(cmd.def_.colname or "")


def constraint_location(constraint: ast.Constraint) -> int | None:
    return _location(constraint)


def _location(node: Any) -> int | None:
    location = getattr(node, "location", None)
    return location if isinstance(location, int) and location >= 0 else None


def string_value(node: Any) -> str | None:
    """The text of a constant (``'1s'``, ``0``, ``on``) as SET and set_config see it."""
    if isinstance(node, ast.A_Const) and not node.isnull and node.val is not None:
        value = node.val
        for attribute in ("sval", "ival", "fval", "boolval"):
            if hasattr(value, attribute):
                return str(getattr(value, attribute))
    if isinstance(node, ast.TypeCast):
        return string_value(node.arg)
    return None
