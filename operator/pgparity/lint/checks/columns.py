"""Columns: type changes, columns whose addition rewrites the table or fails on rows, drops,
and the types a column is given."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.visitors import Visitor

from pgparity.lint.catalog import Rule
from pgparity.lint.checks.common import altered_table, takes
from pgparity.lint.findings import Hit
from pgparity.lint.locks import LockMode
from pgparity.lint.nodes import (
    NewColumn,
    function_name,
    has_typmods,
    is_builtin_type,
    is_serial,
    new_columns,
    type_name,
)
from pgparity.lint.nodes import (
    column_types as defined_types,
)
from pgparity.lint.source import Statement
from pgparity.lint.state import FileState

AEL = LockMode.ACCESS_EXCLUSIVE

# Functions whose result changes per row (pg_proc.provolatile = 'v'): a DEFAULT calling one is
# evaluated for every existing row, so ADD COLUMN rewrites the table.
VOLATILE = {
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "gen_random_bytes",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
}
# Common built-ins that are STABLE or IMMUTABLE: the default is evaluated once, no rewrite.
NON_VOLATILE = {
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "lower",
    "upper",
    "btrim",
    "concat",
    "nullif",
    "greatest",
    "least",
    "to_char",
    "to_timestamp",
    "to_date",
    "date_trunc",
    "timezone",
    "make_interval",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "to_jsonb",
    "array_fill",
    "md5",
    "length",
}


def column_changes(statement: Statement, state: FileState) -> Iterator[Hit]:
    table, commands = altered_table(statement, state)
    for cmd in commands:
        if cmd.subtype == AlterTableType.AT_AlterColumnType:
            new_type = type_name(getattr(cmd.def_, "typeName", None))
            yield Hit(
                Rule.COLUMN_TYPE_CHANGE,
                f"changing the type of {cmd.name} to {new_type} rewrites the table and its "
                f"indexes while it {takes(AEL, table)} — unless the change is binary-coercible "
                "(varchar → text, a wider varchar); add a new column, backfill, switch",
                relation=table,
                lock=AEL,
            )
        elif cmd.subtype == AlterTableType.AT_DropColumn:
            yield Hit(
                Rule.DROP_COLUMN,
                f"dropping column {cmd.name} of {table} breaks every client that still reads or "
                "writes it; stop using it in a deploy first",
                relation=table,
                lock=AEL,
            )
        elif cmd.subtype == AlterTableType.AT_DropNotNull:
            yield Hit(
                Rule.DROP_NOT_NULL,
                f"dropping NOT NULL on {cmd.name} of {table} lets NULLs reach code that "
                "assumes there are none",
                relation=table,
                lock=AEL,
            )


def added_columns(statement: Statement, state: FileState) -> Iterator[Hit]:
    for column in new_columns(statement.node):
        if state.is_new(column.table):
            continue
        why = _rewrite_reason(column)
        if why is not None:
            yield Hit(
                Rule.ADD_COLUMN_REWRITE,
                f"adding column {column.name} {why}, which rewrites every row of the table "
                f"while the ALTER TABLE {takes(AEL, column.table)}; add it without the default "
                "and backfill in batches",
                column.location,
                column.table,
                AEL,
            )
        elif _required(column):
            yield Hit(
                Rule.ADD_REQUIRED_COLUMN,
                f"adding NOT NULL column {column.name} without a DEFAULT fails as soon as "
                f"{column.table} has a row, and breaks inserts of the running application",
                column.location,
                column.table,
                AEL,
            )


def _rewrite_reason(column: NewColumn) -> str | None:
    if column.has(ConstrType.CONSTR_GENERATED):
        return "as GENERATED … STORED computes it for every row"
    if column.has(ConstrType.CONSTR_IDENTITY):
        return "as an identity column fills it for every row"
    if is_serial(column.column.typeName):
        return "as serial fills it from a sequence (a volatile default) for every row"
    default = column.default()
    if default is None:
        return None
    function = volatile_call(default)
    if function is None:
        return None
    if function in VOLATILE:
        return f"with DEFAULT {function}(), a volatile function evaluated for every row,"
    return (
        f"with DEFAULT {function}(), which may be volatile (pgparity cannot know a function's "
        "volatility without the database; the trace can),"
    )


def _required(column: NewColumn) -> bool:
    not_null = column.column.is_not_null or column.has(
        ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY
    )
    return bool(not_null) and column.default() is None


class _Calls(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def visit_FuncCall(self, ancestors: Any, node: ast.FuncCall) -> None:  # noqa: N802
        self.names.append(function_name(node))


def volatile_call(expression: Any) -> str | None:
    """The first function in a DEFAULT that is, or may be, volatile; None when it has none."""
    if not isinstance(expression, ast.Node):
        return None
    calls = _Calls()
    calls(expression)
    return next((name for name in calls.names if name not in NON_VOLATILE), None)


# --- the types columns are given ----------------------------------------------------------

_TYPE_RULES: dict[str, tuple[Rule, str]] = {
    "int4": (Rule.PREFER_BIGINT, "integer runs out at 2^31; use bigint"),
    "int2": (Rule.PREFER_BIGINT, "smallint runs out at 2^15; use bigint"),
    "serial": (Rule.PREFER_BIGINT, "serial is a 32-bit integer; use bigint"),
    "serial4": (Rule.PREFER_BIGINT, "serial4 is a 32-bit integer; use bigint"),
    "smallserial": (Rule.PREFER_BIGINT, "smallserial is a 16-bit integer; use bigint"),
    "serial2": (Rule.PREFER_BIGINT, "serial2 is a 16-bit integer; use bigint"),
    "timestamp": (
        Rule.PREFER_TIMESTAMPTZ,
        "timestamp without time zone drops the offset; use timestamptz",
    ),
    "json": (
        Rule.JSON_COLUMN,
        "json has no equality operator (DISTINCT, GROUP BY, UNION fail); use jsonb",
    ),
    "bpchar": (Rule.CHAR_COLUMN, "char(n) pads with spaces and is no faster; use text or varchar"),
}


def column_types(statement: Statement, state: FileState) -> Iterator[Hit]:
    for column, type_, location in defined_types(statement.node):
        if not is_builtin_type(type_):
            continue
        name = type_name(type_)
        found = _TYPE_RULES.get(name)
        if found is not None:
            rule, why = found
            yield Hit(rule, f"column {column}: {why}", location)
        if is_serial(type_):
            yield Hit(
                Rule.PREFER_IDENTITY,
                f"column {column}: {name} makes a sequence the column does not own for "
                "permissions and dumps; use GENERATED BY DEFAULT AS IDENTITY",
                location,
            )
        if name == "varchar" and has_typmods(type_):
            yield Hit(
                Rule.PREFER_TEXT,
                f"column {column}: widening varchar(n) later is a type change; use text with "
                "a CHECK (length(…) <= n), which can be replaced NOT VALID",
                location,
            )


def duplicate_columns(statement: Statement, state: FileState) -> Iterator[Hit]:
    for kind, names in _assigned_columns(statement.node):
        twice = sorted(name for name, count in Counter(names).items() if count > 1)
        if twice:
            yield Hit(
                Rule.DUPLICATE_COLUMN_ASSIGNMENT,
                f"{kind} names {', '.join(twice)} more than once; PostgreSQL rejects it",
            )


def _assigned_columns(node: ast.Node) -> Iterator[tuple[str, list[str]]]:
    if isinstance(node, ast.CreateStmt | ast.AlterTableStmt):
        columns = [c.name for c in new_columns(node)]
        yield ("CREATE TABLE" if isinstance(node, ast.CreateStmt) else "ALTER TABLE"), columns
    elif isinstance(node, ast.UpdateStmt):
        yield "UPDATE … SET", _target_names(node.targetList)
    elif isinstance(node, ast.InsertStmt):
        yield "INSERT", _target_names(node.cols)
        conflict = node.onConflictClause
        if conflict is not None:
            yield "ON CONFLICT DO UPDATE SET", _target_names(conflict.targetList)


def _target_names(targets: Any) -> list[str]:
    return [str(t.name) for t in targets or () if isinstance(t, ast.ResTarget) and t.name]
