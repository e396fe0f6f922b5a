"""Compensation plans computed from two catalog snapshots."""

from __future__ import annotations

from pgparity.schema.compensation import concurrent_index_definition, plan_compensation
from pgparity.schema.digest import CatalogSnapshot

INDEX = {
    "schema": "public",
    "name": "orders_customer_idx",
    "table": "public.orders",
    "definition": "CREATE INDEX orders_customer_idx ON public.orders USING btree (customer)",
    "valid": True,
}
TABLE = {
    "schema": "public",
    "name": "events_2025",
    "kind": "r",
    "columns": [{"name": "id"}],
    "partition_of": {"schema": "public", "name": "events"},
    "partition_bound": "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')",
}


def _statements(before: dict, after: dict) -> list[str]:  # type: ignore[type-arg]
    plan = plan_compensation(CatalogSnapshot(before), CatalogSnapshot(after))
    assert plan.unplannable == ()
    return [step.statement.as_string(None) for step in plan.steps]


def test_added_index_is_dropped_concurrently() -> None:
    assert _statements({}, {"index:public.orders_customer_idx": INDEX}) == [
        'DROP INDEX CONCURRENTLY IF EXISTS "public"."orders_customer_idx"'
    ]


def test_removed_index_is_rebuilt_concurrently() -> None:
    assert _statements({"index:public.orders_customer_idx": INDEX}, {}) == [
        "CREATE INDEX CONCURRENTLY orders_customer_idx ON public.orders USING btree (customer)"
    ]


def test_changed_index_is_dropped_and_rebuilt() -> None:
    invalid = {**INDEX, "valid": False}
    statements = _statements(
        {"index:public.orders_customer_idx": INDEX}, {"index:public.orders_customer_idx": invalid}
    )
    assert statements[0].startswith("DROP INDEX CONCURRENTLY")
    assert statements[1].startswith("CREATE INDEX CONCURRENTLY")


def test_detached_partition_is_reattached() -> None:
    detached = {k: v for k, v in TABLE.items() if k not in ("partition_of", "partition_bound")}
    assert _statements(
        {"table:public.events_2025": TABLE}, {"table:public.events_2025": detached}
    ) == [
        'ALTER TABLE "public"."events" ATTACH PARTITION "public"."events_2025" '
        "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')"
    ]


def test_constraint_changes_are_undone() -> None:
    check = {
        "schema": "public",
        "name": "positive",
        "on": "orders",
        "on_kind": "table",
        "type": "c",
        "definition": "CHECK (total > 0)",
    }
    assert _statements({}, {"constraint:public.orders.positive": check}) == [
        'ALTER TABLE "public"."orders" DROP CONSTRAINT IF EXISTS "positive"'
    ]
    assert _statements({"constraint:public.orders.positive": check}, {}) == [
        'ALTER TABLE "public"."orders" ADD CONSTRAINT "positive" CHECK (total > 0)'
    ]


def test_anything_else_is_unplannable() -> None:
    plan = plan_compensation(CatalogSnapshot({}), CatalogSnapshot({"table:public.x": TABLE}))
    assert plan.steps == ()
    assert [c.key for c in plan.unplannable] == ["table:public.x"]


def test_unique_index_definition() -> None:
    assert (
        concurrent_index_definition("CREATE UNIQUE INDEX a ON t USING btree (x)")
        == "CREATE UNIQUE INDEX CONCURRENTLY a ON t USING btree (x)"
    )
