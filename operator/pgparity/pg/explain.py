"""EXPLAIN a query, rolled back, and read its plan's shape; compare two shapes.

A plan is compared by shape — node types, indexes used, the order in which relations are
joined — never by cost alone. The validation engine explains the application's queries before
and after a migration; the data parity check explains them on production and on the clone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import psycopg

from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.report import PlanOutcome, PlanShape
from pgparity.pg.connection import error_message
from pgparity.pg.sqlexec import LexingChangedError, execute_one


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
