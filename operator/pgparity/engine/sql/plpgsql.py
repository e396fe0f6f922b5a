"""The SQL inside a ``DO`` block, read with PL/pgSQL's own parser (pglast's libpg_query).

A DO block runs statements the migration's own statement list does not show. pglast parses the
body into PL/pgSQL's tree, whose expressions and statements are SQL text again; this module
turns them back into parse trees so the classifiers can look inside. What it cannot see — SQL
built at run time (``EXECUTE format(…)``), functions that already exist in the database — the
checks made while the migration runs still catch where they can.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError, parse_plpgsql_json

# PLpgSQL_expr.parseMode (PostgreSQL's RawParseMode): 0 is a whole statement; 2 an expression;
# 3–5 an assignment ``target := expression``.
_STATEMENT_MODE = 0
_EXPRESSION_MODE = 2
_DYNAMIC_STATEMENTS = ("PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors", "PLpgSQL_stmt_open")
# Each level of EXECUTE 'literal' nesting parses once more; deeper nesting is not followed.
_MAX_DEPTH = 4


def do_block_tree(node: ast.DoStmt) -> Any | None:
    """The PL/pgSQL tree of a DO block's body, or None (another language, or it does not
    parse — then the server reports the body's error when the statement runs)."""
    options = {d.defname: d.arg for d in node.args or () if isinstance(d, ast.DefElem)}
    language = getattr(options.get("language"), "sval", "plpgsql")
    body = getattr(options.get("as"), "sval", "")
    if language != "plpgsql" or not body:
        return None
    wrapper = (
        "CREATE FUNCTION pgparity_do_block() RETURNS void LANGUAGE plpgsql AS "
        f"$pgparity_body${body}$pgparity_body$"
    )
    try:
        return json.loads(parse_plpgsql_json(wrapper))
    except (ParseError, ValueError):
        return None


def tree_keys(tree: Any) -> Iterator[str]:
    """Every key of a PL/pgSQL tree (node names such as ``PLpgSQL_stmt_commit``)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield key
            yield from tree_keys(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from tree_keys(item)


def embedded_statements(node: ast.Node, depth: int = 0) -> list[ast.Node]:
    """The SQL statements a DO block runs (its queries, expressions as SELECTs, and the
    constant strings it EXECUTEs), parsed; nested DO blocks are followed."""
    if not isinstance(node, ast.DoStmt) or depth >= _MAX_DEPTH:
        return []
    tree = do_block_tree(node)
    found: list[ast.Node] = []
    for dynamic, expr in _expressions(tree):
        for parsed in _parse_expression(expr):
            found.append(parsed)
            found.extend(embedded_statements(parsed, depth + 1))
            if dynamic:
                found.extend(_executed_literal(parsed, depth))
    return found


def _expressions(tree: Any, dynamic: bool = False) -> Iterator[tuple[bool, dict[str, Any]]]:
    """Every PLpgSQL_expr, and whether it is the SQL text an EXECUTE / OPEN … EXECUTE runs."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "PLpgSQL_expr" and isinstance(value, dict):
                yield dynamic, value
            elif key in _DYNAMIC_STATEMENTS and isinstance(value, dict):
                for field, child in value.items():
                    yield from _expressions(child, field in ("query", "dynquery"))
            else:
                yield from _expressions(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _expressions(item)


def _parse_expression(expr: dict[str, Any]) -> list[ast.Node]:
    text = str(expr.get("query", ""))
    mode = expr.get("parseMode", _STATEMENT_MODE)
    if mode != _STATEMENT_MODE:
        _, assigned, value = text.partition(":=")
        text = "SELECT " + (value if assigned and mode != _EXPRESSION_MODE else text)
    try:
        return [raw.stmt for raw in parse_sql(text) or () if raw.stmt is not None]
    except ParseError:
        return []


def _executed_literal(parsed: ast.Node, depth: int) -> list[ast.Node]:
    """``EXECUTE 'COPY … TO PROGRAM …'``: the string is SQL too; parse it as such."""
    if not isinstance(parsed, ast.SelectStmt):
        return []
    targets = parsed.targetList or ()
    if len(targets) != 1 or not isinstance(targets[0].val, ast.A_Const):
        return []
    text = getattr(targets[0].val.val, "sval", None)
    if not text:
        return []
    try:
        statements = [raw.stmt for raw in parse_sql(text) or () if raw.stmt is not None]
    except ParseError:
        return []
    nested = [n for s in statements for n in embedded_statements(s, depth + 1)]
    return [*statements, *nested]
