"""Plan the copy: which masked SELECT feeds which COPY, in how many pieces. Pure functions.

Large tables are split into ranges of heap blocks (``ctid`` ranges, which PostgreSQL 14+ scans
directly), so several workers copy one table at the same time; every piece reads from the same
exported snapshot, so together they are one consistent copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from psycopg import sql

from pgparity.models.policy import ColumnRule, Policy
from pgparity.seed.catalog import TableInfo
from pgparity.seed.mac import BUILTIN, Mac
from pgparity.seed.transforms import TRANSFORMS, Context, digest_source

CHUNK_PAGES = 16384  # 128 MB of heap per piece
MIN_CHUNK_PAGES = 1024  # 8 MB


@dataclass(frozen=True)
class CopyJob:
    table: TableInfo
    select: sql.Composable
    columns: tuple[str, ...]
    first_page: int | None = None
    end_page: int | None = None
    text_format: bool = False

    @property
    def label(self) -> str:
        if self.first_page is None:
            return self.table.display
        return f"{self.table.display} [pages {self.first_page}–{self.end_page}]"

    def copy_out(self) -> sql.Composed:
        fmt = sql.SQL("text") if self.text_format else sql.SQL("binary")
        return sql.SQL("COPY ({}) TO STDOUT (FORMAT {})").format(self.select, fmt)

    def copy_in(self) -> sql.Composed:
        fmt = sql.SQL("text") if self.text_format else sql.SQL("binary")
        return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
            sql.Identifier(self.table.schema, self.table.name),
            sql.SQL(", ").join(sql.Identifier(c) for c in self.columns),
            fmt,
        )


def masked_select(
    table: TableInfo,
    rules: Mapping[str, ColumnRule],
    pages: tuple[int, int] | None = None,
    mac: Mac = BUILTIN,
) -> sql.Composable:
    """``SELECT <masked expressions> FROM ONLY t AS src [steps] [WHERE ctid range]``.

    A transform whose output depends on the value alone is computed in a LATERAL subquery
    that reads only that value: PostgreSQL's Memoize then runs it once per distinct value
    where the statistics say values repeat (dates, names, foreign keys), caching by the
    value's bytes (LATERAL cache keys are compared in binary mode), and the planner leaves
    the cache out for unique columns.
    """
    context = Context(row_key=_row_key(table), mac=mac)
    expressions: list[sql.Composable] = []
    from_items: list[sql.Composable] = []
    for column in table.copied_columns:
        rule = rules[column.name]
        transform = TRANSFORMS[rule.transform]
        masked = transform.build(column, rule.params, context)
        if transform.value_only:
            step = sql.Identifier(f"pgparity_m_{column.attnum}")
            source = digest_source(column, mac) if transform.digest else masked.value_source
            from_items.append(_per_value_step(masked.expression, source, step))
            expressions.append(sql.SQL("{}.v").format(step))
        else:
            expressions.append(masked.expression)
            from_items.extend(masked.from_items)
    where: sql.Composable = sql.SQL("")
    if pages is not None:
        where = sql.SQL(" WHERE src.ctid >= {}::tid AND src.ctid < {}::tid").format(
            sql.Literal(f"({pages[0]},0)"), sql.Literal(f"({pages[1]},0)")
        )
    return sql.SQL("SELECT {} FROM ONLY {} AS src {}{}").format(
        sql.SQL(", ").join(expressions),
        sql.Identifier(table.schema, table.name),
        sql.SQL(" ").join(from_items),
        where,
    )


def _row_key(table: TableInfo) -> sql.Composable | None:
    if not table.primary_key:
        return None
    return sql.SQL("concat_ws(',', {})").format(
        sql.SQL(", ").join(
            sql.SQL("{}::text").format(sql.Identifier("src", c)) for c in table.primary_key
        )
    )


def _per_value_step(
    expression: sql.Composable, source: sql.Composable | None, step: sql.Identifier
) -> sql.Composable:
    # OFFSET 0 keeps the subquery from being folded into the row's query, where it could
    # neither be cached nor keep its digest computed once.
    reads = sql.SQL(" FROM {}").format(source) if source is not None else sql.SQL("")
    return sql.SQL("CROSS JOIN LATERAL (SELECT {} AS v{} OFFSET 0) AS {}").format(
        expression, reads, step
    )


def copy_jobs(
    table: TableInfo,
    rules: Mapping[str, ColumnRule],
    *,
    split: bool,
    chunk_pages: int = CHUNK_PAGES,
    mac: Mac = BUILTIN,
) -> list[CopyJob]:
    """One job, or one per range of ``chunk_pages`` heap pages for big tables."""
    columns = tuple(c.name for c in table.copied_columns)
    if not split or table.pages <= chunk_pages:
        select = masked_select(table, rules, mac=mac)
        return [CopyJob(table, select, columns, text_format=table.needs_text_copy)]
    jobs = []
    for first in range(0, table.pages, chunk_pages):
        # The last range is open-ended: pages added since the statistics were taken count too.
        end = first + chunk_pages if first + chunk_pages < table.pages else 2**32 - 1
        jobs.append(
            CopyJob(
                table,
                masked_select(table, rules, (first, end), mac),
                columns,
                first,
                end,
                text_format=table.needs_text_copy,
            )
        )
    return jobs


def masking_columns(table: TableInfo, rules: Mapping[str, ColumnRule]) -> int:
    """How many columns of ``table`` are computed with keyed hashes (the CPU-heavy part)."""
    return sum(1 for c in table.copied_columns if TRANSFORMS[rules[c.name].transform].keyed)


def chunk_pages_for(table: TableInfo, rules: Mapping[str, ColumnRule], workers: int) -> int:
    """Masked tables cost CPU on the source, so they are cut finer: every worker gets a share."""
    if not masking_columns(table, rules):
        return CHUNK_PAGES
    return max(MIN_CHUNK_PAGES, min(CHUNK_PAGES, table.pages // (2 * max(1, workers)) + 1))


def copy_cost(table: TableInfo, rules: Mapping[str, ColumnRule]) -> float:
    """A rough relative cost: bytes, weighted up by the keyed hashing per row."""
    return table.bytes * (1 + 3 * masking_columns(table, rules))


def copy_order(tables: Sequence[TableInfo], policy: Policy) -> list[TableInfo]:
    """The order that keeps the run's tail short: Johnson's rule for a two-stage flow shop.

    Each table is copied, then its indexes are built (once its last piece is in); a table's
    builds overlap the copies of the tables after it, so what runs after the last copy is the
    last tables' builds. Tables whose builds cost more than their copy go first, cheapest copy
    first; then the others, the costliest builds first — so the last table copied is one whose
    builds are short. Build cost is the bytes of the table's indexes on the source.
    """

    def copy(table: TableInfo) -> float:
        return copy_cost(table, policy.tables[table.display].columns)

    build_heavy = sorted((t for t in tables if copy(t) < t.index_bytes), key=copy)
    copy_heavy = sorted(
        (t for t in tables if copy(t) >= t.index_bytes), key=lambda t: -t.index_bytes
    )
    return build_heavy + copy_heavy
