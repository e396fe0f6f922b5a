"""Plan the copy: which masked SELECT feeds which COPY, in how many pieces. Pure functions.

Large tables are split into ranges of heap blocks (``ctid`` ranges, which PostgreSQL 14+ scans
directly), so several workers copy one table at the same time; every piece reads from the same
exported snapshot, so together they are one consistent copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from psycopg import sql

from pgparity.models.policy import ColumnRule
from pgparity.seed.catalog import TableInfo
from pgparity.seed.transforms import (
    KEY_ALIAS,
    TRANSFORMS,
    Context,
    digest_name,
    key_cte,
    key_join,
    value_digest,
)

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
    table: TableInfo, rules: Mapping[str, ColumnRule], pages: tuple[int, int] | None = None
) -> sql.Composable:
    """``SELECT <masked expressions> FROM ONLY t AS src [key] [steps] [WHERE ctid range]``."""
    row_key = None
    if table.primary_key:
        row_key = sql.SQL("concat_ws(',', {})").format(
            sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier("src", c)) for c in table.primary_key
            )
        )
    context = Context(row_key=row_key)
    expressions: list[sql.Composable] = []
    from_items: list[sql.Composable] = []
    keyed = names = False
    for column in table.copied_columns:
        rule = rules[column.name]
        transform = TRANSFORMS[rule.transform]
        masked = transform.build(column, rule.params, context)
        expressions.append(masked.expression)
        from_items.extend(masked.from_items)
        keyed |= transform.keyed
        names |= transform.name == "name"
    with_key: sql.Composable = key_cte(with_names=names) if keyed else sql.SQL("")
    joins = [key_join()] if keyed else []
    where: sql.Composable = sql.SQL("")
    if pages is not None:
        where = sql.SQL(" WHERE src.ctid >= {}::tid AND src.ctid < {}::tid").format(
            sql.Literal(f"({pages[0]},0)"), sql.Literal(f"({pages[1]},0)")
        )
    source: sql.Composable = sql.SQL("ONLY {} AS src").format(
        sql.Identifier(table.schema, table.name)
    )
    digests = [
        sql.SQL("{} AS {}").format(value_digest(c), sql.Identifier(digest_name(c)))
        for c in table.copied_columns
        if TRANSFORMS[rules[c.name].transform].digest
    ]
    if digests:
        # Each column's digest once per row; OFFSET 0 keeps PostgreSQL from folding this
        # subquery into the outer one (which would compute the digest at every use again).
        source = sql.SQL("(SELECT src.*, {} FROM {} CROSS JOIN {}{} OFFSET 0) AS src").format(
            sql.SQL(", ").join(digests), source, sql.Identifier(KEY_ALIAS), where
        )
        where = sql.SQL("")
    return sql.SQL("{}SELECT {} FROM {} {}{}").format(
        with_key,
        sql.SQL(", ").join(expressions),
        source,
        sql.SQL(" ").join([*joins, *from_items]),
        where,
    )


def copy_jobs(
    table: TableInfo,
    rules: Mapping[str, ColumnRule],
    *,
    split: bool,
    chunk_pages: int = CHUNK_PAGES,
) -> list[CopyJob]:
    """One job, or one per range of ``chunk_pages`` heap pages for big tables."""
    columns = tuple(c.name for c in table.copied_columns)
    if not split or table.pages <= chunk_pages:
        return [
            CopyJob(table, masked_select(table, rules), columns, text_format=table.needs_text_copy)
        ]
    jobs = []
    for first in range(0, table.pages, chunk_pages):
        # The last range is open-ended: pages added since the statistics were taken count too.
        end = first + chunk_pages if first + chunk_pages < table.pages else 2**32 - 1
        jobs.append(
            CopyJob(
                table,
                masked_select(table, rules, (first, end)),
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
