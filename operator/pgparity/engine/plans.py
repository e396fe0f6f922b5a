"""EXPLAIN the application's queries before and after a migration, and compare the plans.

A migration can change plans without touching the queries: a dropped or rebuilt index, a new
column's statistics, a type change. Plans are compared by shape — node types, indexes used,
the order in which relations are joined — and checked against expectations (``uses_index``,
``no_seq_scan_on``, ``max_total_cost``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pglast import ast, parse_sql
from pglast.parser import ParseError

from pgparity.engine.connection import error_message
from pgparity.engine.effects import classify
from pgparity.engine.sqlexec import LexingChangedError, execute_one
from pgparity.errors import UsageError
from pgparity.models.migration_validation import ExplainQuery

# What EXPLAIN accepts and pgparity explains (PostgreSQL 15's ExplainableStmt minus the ones
# that create objects or run prepared statements: CREATE TABLE AS, DECLARE, EXECUTE, REFRESH).
EXPLAINABLE = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)


@dataclass(frozen=True)
class PlanShape:
    nodes: tuple[str, ...]
    indexes: frozenset[str]
    seq_scans: frozenset[str]
    join_order: tuple[str, ...]
    total_cost: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": list(self.nodes),
            "indexes": sorted(self.indexes),
            "seq_scans": sorted(self.seq_scans),
            "join_order": list(self.join_order),
            "total_cost": self.total_cost,
        }


@dataclass(frozen=True)
class PlanOutcome:
    """A query's plan, or why it could not be explained."""

    shape: PlanShape | None = None
    error: str | None = None


@dataclass(frozen=True)
class PlanComparison:
    query: ExplainQuery
    before: PlanOutcome
    after: PlanOutcome
    changes: tuple[str, ...] = ()
    violations: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        def side(outcome: PlanOutcome) -> Any:
            return outcome.shape.to_dict() if outcome.shape else {"error": outcome.error}

        return {
            "name": self.query.name,
            "sql": self.query.sql,
            "before": side(self.before),
            "after": side(self.after),
            "changed": bool(self.changes),
            "changes": list(self.changes),
            "violations": list(self.violations),
        }


def explain_all(
    conn: psycopg.Connection[Any], queries: Sequence[ExplainQuery], *, analyze: bool = False
) -> dict[str, PlanOutcome]:
    """EXPLAIN each query, each rolled back on its own so one does not change the next."""
    return {q.name: explain(conn, q.sql, analyze=analyze) for q in queries}


def explain(conn: psycopg.Connection[Any], query: str, *, analyze: bool = False) -> PlanOutcome:
    """EXPLAIN one query (checked by ``check_explain_query``) and roll back what it did.

    On an idle connection that is a transaction of its own, inside one a savepoint: with
    ANALYZE the query really runs, and it may be DML.
    """
    options = "FORMAT JSON, VERBOSE, COSTS" + (", ANALYZE, BUFFERS" if analyze else "")
    try:
        with conn.transaction(force_rollback=True):
            row = execute_one(conn, f"EXPLAIN ({options}) {query}").fetchone()
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError) and conn.closed:
            raise
        return PlanOutcome(error=f"{exc.sqlstate or ''} {error_message(exc)}".strip())
    except LexingChangedError as exc:
        return PlanOutcome(error=str(exc))
    assert row is not None
    document = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return PlanOutcome(shape=plan_shape(document[0]["Plan"]))


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


def plan_shape(plan: Mapping[str, Any]) -> PlanShape:
    nodes, indexes, seq_scans, order = [], set(), set(), []
    for node in _walk(plan):
        relation = _relation(node)
        index = node.get("Index Name")
        label = str(node.get("Node Type"))
        if index:
            label += f" using {index}"
            indexes.add(str(index))
        if relation:
            label += f" on {relation}"
            order.append(relation)
        if node.get("Node Type") == "Seq Scan" and relation:
            seq_scans.add(relation)
        nodes.append(label)
    return PlanShape(
        nodes=tuple(nodes),
        indexes=frozenset(indexes),
        seq_scans=frozenset(seq_scans),
        join_order=tuple(order),
        total_cost=float(plan.get("Total Cost", 0.0)),
    )


def _walk(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


def _relation(node: Mapping[str, Any]) -> str | None:
    name = node.get("Relation Name")
    if not name:
        return None
    return f"{node['Schema']}.{name}" if node.get("Schema") else str(name)


def compare(query: ExplainQuery, before: PlanOutcome, after: PlanOutcome) -> PlanComparison:
    changes: list[str] = []
    if before.shape and after.shape:
        changes = plan_changes(before.shape, after.shape)
    violations = expectation_violations(query, after)
    return PlanComparison(
        query=query,
        before=before,
        after=after,
        changes=tuple(changes),
        violations=tuple(violations),
    )


def plan_changes(before: PlanShape, after: PlanShape) -> list[str]:
    changes = []
    if before.nodes != after.nodes:
        changes.append(f"plan {' → '.join(before.nodes)}  became  {' → '.join(after.nodes)}")
    for index in sorted(before.indexes - after.indexes):
        changes.append(f"no longer uses index {index}")
    for index in sorted(after.indexes - before.indexes):
        changes.append(f"now uses index {index}")
    for relation in sorted(after.seq_scans - before.seq_scans):
        changes.append(f"now scans {relation} sequentially")
    if before.join_order != after.join_order and set(before.join_order) == set(after.join_order):
        changes.append(
            f"join order {', '.join(before.join_order)} became {', '.join(after.join_order)}"
        )
    return changes


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
