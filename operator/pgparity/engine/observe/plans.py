"""The application's queries explained before and after a migration, compared and judged.

A migration can change plans without touching the queries: a dropped or rebuilt index, a new
column's statistics, a type change. Plans are compared by shape (``pg.explain``) and checked
against expectations (``uses_index``, ``no_seq_scan_on``, ``max_total_cost``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pglast import ast, parse_sql
from pglast.parser import ParseError

from pgparity.engine.sql.effects import classify
from pgparity.errors import UsageError
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.report import PlanComparison, PlanOutcome
from pgparity.pg.explain import plan_changes

# What EXPLAIN accepts and pgparity explains (PostgreSQL 15's ExplainableStmt minus the ones
# that create objects or run prepared statements: CREATE TABLE AS, DECLARE, EXECUTE, REFRESH).
EXPLAINABLE = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


def check_explain_queries(queries: Sequence[ExplainQuery]) -> None:
    """Every query must be exactly one SELECT, VALUES, INSERT, UPDATE, DELETE or MERGE with no
    effect ROLLBACK cannot undo; else it is bad input, named, before anything runs."""
    for query in queries:
        problem = explain_query_problem(query.sql)
        if problem:
            raise UsageError(f"explain query {query.name!r}: {problem}")


def explain_query_problem(text: str) -> str | None:
    try:
        raw = [r.stmt for r in parse_sql(text) or () if r.stmt is not None]
    except ParseError as exc:
        return f"does not parse: {exc.args[0] if exc.args else exc}"
    if len(raw) != 1:
        return f"must be exactly one statement, not {len(raw)}"
    node = raw[0]
    if not isinstance(node, EXPLAINABLE):
        return (
            "must be a SELECT, VALUES, INSERT, UPDATE, DELETE or MERGE, "
            f"not {type(node).__name__.removesuffix('Stmt')}"
        )
    if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
        return "SELECT … INTO creates a table; write the SELECT alone"
    refused = [e for e in classify(node) if e.refused]
    return refused[0].message if refused else None


def compare(query: ExplainQuery, before: PlanOutcome, after: PlanOutcome) -> PlanComparison:
    changes: list[str] = []
    if before.shape and after.shape:
        changes = plan_changes(before.shape, after.shape)
    violations = expectation_violations(query, after)
    return PlanComparison(
        name=query.name,
        sql=query.sql,
        before=before,
        after=after,
        changed=bool(changes),
        changes=tuple(changes),
        violations=tuple(violations),
    )


def expectation_violations(query: ExplainQuery, after: PlanOutcome) -> list[str]:
    if after.shape is None:
        return [f"could not be explained after the migration: {after.error}"]
    shape = after.shape
    found = []
    if query.uses_index and not _matches_any(query.uses_index, shape.indexes):
        used = ", ".join(sorted(shape.indexes)) or "no index"
        found.append(f"expected to use index {query.uses_index}, uses {used}")
    for table in query.no_seq_scan_on:
        if _matches_any(table, shape.seq_scans):
            found.append(f"scans {table} sequentially")
    if query.max_total_cost is not None and shape.total_cost > query.max_total_cost:
        found.append(f"total cost {shape.total_cost:.1f} exceeds {query.max_total_cost:g}")
    return found


def _matches_any(name: str, candidates: frozenset[str]) -> bool:
    """``orders`` matches ``public.orders``; ``public.orders`` matches only itself."""
    return any(name == c or ("." not in name and c.rpartition(".")[2] == name) for c in candidates)
