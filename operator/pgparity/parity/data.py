"""Data parity: does the clone hold what production holds, in the ways the planner sees it?

Compared per table: exact row counts and heap size; per index: size; per column: the
``pg_stats`` the planner uses — ``null_frac``, ``n_distinct``, ``avg_width`` and
``correlation`` — within tolerances. A column masked by a transform is checked only on the
statistics that transform keeps (a name-like mask reduces distinct values by design). Reading
is in ``read_side``; the comparison is the pure ``compare``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.policy import ALL_STATISTICS, Policy, kept_statistics
from pgparity.pg.explain import explain, plan_changes
from pgparity.pg.schemas import user_schema

_TABLES = f"""
SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
       pg_relation_size(c.oid)::int8, greatest(c.reltuples, 0)::float8
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {user_schema("n.nspname")}
"""
_INDEXES = f"""
SELECT format('%I.%I', n.nspname, c.relname), format('%I.%I', tn.nspname, t.relname),
       pg_relation_size(c.oid)::int8
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE {user_schema("tn.nspname")}
"""
_STATS = f"""
SELECT format('%I.%I', schemaname, tablename), attname, null_frac::float8,
       n_distinct::float8, avg_width, correlation::float8
FROM pg_stats
WHERE {user_schema("schemaname")} AND NOT inherited
"""


@dataclass(frozen=True)
class Tolerances:
    null_frac: float = 0.05  # absolute difference
    n_distinct: float = 0.25  # relative difference
    avg_width: float = 0.25  # relative difference
    correlation: float = 0.25  # absolute difference
    size: float = 1.0  # target/source within [1/(1+x), 1+x]


@dataclass(frozen=True)
class ColumnStats:
    null_frac: float
    n_distinct: float
    avg_width: float
    correlation: float | None


@dataclass
class Side:
    rows: dict[str, int] = field(default_factory=dict)
    table_bytes: dict[str, int] = field(default_factory=dict)
    estimated_rows: dict[str, float] = field(default_factory=dict)
    index_bytes: dict[str, tuple[str, int]] = field(default_factory=dict)
    stats: dict[tuple[str, str], ColumnStats] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    kind: str  # rows, table-size, index-size, null_frac, n_distinct, avg_width, correlation
    subject: str
    source: float | None
    target: float | None
    ok: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "kind": self.kind,
            "subject": self.subject,
            "source": r(self.source),
            "target": r(self.target),
            "ok": self.ok,
            "note": self.note,
        }


@dataclass(frozen=True)
class ParityReport:
    checks: tuple[Check, ...]

    @property
    def problems(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": len(self.problems),
            "checks": [c.to_dict() for c in self.checks],
        }


def read_side(conn: psycopg.Connection[Any], *, count_rows: bool = True) -> Side:
    side = Side()
    for schema, name, display, size, estimate in conn.execute(_TABLES).fetchall():
        side.table_bytes[display] = int(size)
        side.estimated_rows[display] = float(estimate)
        if count_rows:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name))
            ).fetchone()
            side.rows[display] = int(row[0]) if row else 0
    for index, table, size in conn.execute(_INDEXES).fetchall():
        side.index_bytes[str(index)] = (str(table), int(size))
    for table, column, null_frac, n_distinct, avg_width, correlation in conn.execute(
        _STATS
    ).fetchall():
        side.stats[(str(table), str(column))] = ColumnStats(
            float(null_frac),
            float(n_distinct),
            float(avg_width),
            None if correlation is None else float(correlation),
        )
    return side


def compare(
    source: Side,
    target: Side,
    *,
    policy: Policy | None = None,
    tolerances: Tolerances | None = None,
) -> ParityReport:
    limits = tolerances or Tolerances()
    checks: list[Check] = []
    for table in sorted(source.table_bytes):
        checks += _table_checks(table, source, target, limits, policy)
    for index, (_table, size) in sorted(source.index_bytes.items()):
        other = target.index_bytes.get(index)
        checks.append(
            _size_check("index-size", index, size, other[1] if other else None, limits.size)
        )
    for (table, column), stats in sorted(source.stats.items()):
        if (
            policy is not None
            and table in policy.tables
            and policy.tables[table].rows.value == "none"
        ):
            continue  # no rows copied: no statistics to compare
        checks += _column_checks(
            table, column, stats, source, target, limits, _kept_metrics(policy, table, column)
        )
    return ParityReport(tuple(checks))


def _table_checks(
    table: str, source: Side, target: Side, limits: Tolerances, policy: Policy | None
) -> list[Check]:
    copied = (
        policy is None or table not in policy.tables or policy.tables[table].rows.value == "all"
    )
    checks = []
    if table in source.rows:
        mine, theirs = source.rows[table], target.rows.get(table)
        expected = mine if copied else 0
        checks.append(
            Check(
                "rows",
                table,
                mine,
                theirs,
                theirs == expected,
                "" if copied else "rows: none in the policy",
            )
        )
    if copied:
        checks.append(
            _size_check(
                "table-size",
                table,
                source.table_bytes[table],
                target.table_bytes.get(table),
                limits.size,
            )
        )
    return checks


def _size_check(
    kind: str, subject: str, source: int, target: int | None, tolerance: float
) -> Check:
    if target is None:
        return Check(kind, subject, source, None, False, "missing on the target")
    if source == 0 or target == 0:
        return Check(kind, subject, source, target, source == target)
    ratio = target / source
    return Check(
        kind,
        subject,
        source,
        target,
        1 / (1 + tolerance) <= ratio <= 1 + tolerance,
        f"ratio {ratio:.2f}",
    )


def _kept_metrics(policy: Policy | None, table: str, column: str) -> frozenset[str]:
    rule = policy.rule(table, column) if policy else None
    return ALL_STATISTICS if rule is None else kept_statistics(rule.transform)


def _column_checks(
    table: str,
    column: str,
    stats: ColumnStats,
    source: Side,
    target: Side,
    limits: Tolerances,
    kept: frozenset[str],
) -> list[Check]:
    subject = f"{table}.{column}"
    other = target.stats.get((table, column))
    if other is None:
        return [
            Check(
                "stats", subject, None, None, not kept, "no statistics on the target (run ANALYZE)"
            )
        ]
    checks = []
    rows = (source.estimated_rows.get(table, 0.0), target.estimated_rows.get(table, 0.0))
    values = {
        "null_frac": (stats.null_frac, other.null_frac),
        "n_distinct": (_distinct(stats.n_distinct, rows[0]), _distinct(other.n_distinct, rows[1])),
        "avg_width": (stats.avg_width, other.avg_width),
        "correlation": (stats.correlation, other.correlation),
    }
    for metric, (mine, theirs) in values.items():
        if mine is None or theirs is None:
            continue
        if metric not in kept:
            checks.append(Check(metric, subject, mine, theirs, True, "changed by the mask"))
            continue
        checks.append(Check(metric, subject, mine, theirs, _within(metric, mine, theirs, limits)))
    return checks


def _distinct(n_distinct: float, rows: float) -> float:
    """pg_stats gives a negative fraction of the rows when distinct values scale with them."""
    return -n_distinct * rows if n_distinct < 0 else n_distinct


def _within(metric: str, mine: float, theirs: float, limits: Tolerances) -> bool:
    if metric in ("null_frac", "correlation"):
        limit = limits.null_frac if metric == "null_frac" else limits.correlation
        return abs(mine - theirs) <= limit
    tolerance = limits.n_distinct if metric == "n_distinct" else limits.avg_width
    if mine == 0:
        return theirs == 0
    return abs(theirs - mine) / abs(mine) <= tolerance


def render_text(report: ParityReport, *, all_checks: bool = False) -> str:
    shown = report.checks if all_checks else report.problems
    lines = [f"{'check':<12} {'subject':<44} {'source':>14} {'target':>14}  result"]
    for check in shown:
        lines.append(
            f"{check.kind:<12} {check.subject[:44]:<44} {_fmt(check.source):>14} "
            f"{_fmt(check.target):>14}  {'ok' if check.ok else 'OUT OF TOLERANCE'}"
            + (f" ({check.note})" if check.note else "")
        )
    counts = _counts(report)
    lines.append(
        f"data parity: {'ok' if report.ok else 'FAILED'} — {len(report.checks)} checks"
        f", {len(report.problems)} out of tolerance ({counts})"
    )
    return "\n".join(lines) + "\n"


def _counts(report: ParityReport) -> str:
    kinds: dict[str, int] = {}
    for check in report.checks:
        kinds[check.kind] = kinds.get(check.kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def plan_checks(
    production: psycopg.Connection[Any],
    staging: psycopg.Connection[Any],
    queries: Sequence[ExplainQuery],
) -> list[Check]:
    """The same query should get the same plan shape on the clone as on production."""
    checks = []
    for query in queries:
        mine, theirs = explain(production, query.sql), explain(staging, query.sql)
        if mine.shape is None or theirs.shape is None:
            checks.append(
                Check(
                    "plan",
                    query.name,
                    None,
                    None,
                    False,
                    mine.error or theirs.error or "not explained",
                )
            )
            continue
        changes = plan_changes(mine.shape, theirs.shape)
        checks.append(
            Check(
                "plan",
                query.name,
                mine.shape.total_cost,
                theirs.shape.total_cost,
                not changes,
                "; ".join(changes) or "same shape",
            )
        )
    return checks


def with_checks(report: ParityReport, extra: Sequence[Check]) -> ParityReport:
    return ParityReport((*report.checks, *extra))
