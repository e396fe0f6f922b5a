"""Durations predicted at production scale, from what each statement did on a smaller clone.

The model (README, "Scale prediction"), per statement:

- **growth**: an index build (CREATE INDEX [CONCURRENTLY], REINDEX) sorts the table's rows:
  ``n log n``. A statement that rewrote a table, or read a sizeable share of its tables' data
  blocks (a scan: UPDATE/DELETE of many rows, VALIDATE CONSTRAINT, SET NOT NULL), grows
  linearly with them. A statement that read next to none of its tables' blocks (ADD COLUMN,
  a default, a rename: catalog-only) takes as long at any size. Without buffer counts (a
  statement rehearsed outside the transaction, one that failed) a statement on a pre-existing
  table is taken to be linear: the conservative guess.
- **factor**: ``r`` = production bytes / clone bytes of the largest-growing table it worked on
  (never below 1: a clone larger than production predicts no faster run); linear → ``r``;
  ``n log n`` → ``r · log(r·n) / log(n)`` with ``n`` the clone's rows.
- **prediction** = factor × the duration the verdict uses (the slowest run).

It assumes production runs on the same hardware with the same cache state, that the data
grows uniformly (a statement touching a fixed number of rows by key does not grow, which the
block share captures), and it ignores work outside the table (fixed overheads are scaled too,
which errs on the slow side).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from pgparity.engine.margins import slowest_ms
from pgparity.engine.sql.statements import OutsideAction, Statement
from pgparity.models.report import (
    Buffers,
    Growth,
    Headroom,
    Prediction,
    ProductionSource,
    ScaledTable,
    StatementMargins,
    StatementResult,
)
from pgparity.pg.sizes import TableSize

BLOCK_SIZE = 8192
# A statement that asked the buffer manager for at least this share of its tables' blocks
# scanned them; below it, it looked rows up by key or touched the catalog only. A b-tree descent
# and a few heap pages stay under KEY_LOOKUP_BLOCKS; a table smaller than that is scanned when
# every one of its blocks was asked for.
SCAN_SHARE = 0.05
KEY_LOOKUP_BLOCKS = 32
_TABLE_KINDS = {"r", "m", "p"}
_SORTING_NODES = {"IndexStmt", "ReindexStmt"}
_SORTING_ACTIONS = {OutsideAction.INDEX_BUILD, OutsideAction.REINDEX}


@dataclass(frozen=True)
class ProductionSizes:
    """Production's tables, and where their sizes came from."""

    source: ProductionSource
    tables: Mapping[str, TableSize]


@dataclass(frozen=True)
class ScaleInputs:
    """What predicting a migration's statements needs besides the statements themselves."""

    clone: Mapping[str, TableSize]
    production: ProductionSizes
    created: frozenset[str] = frozenset()  # tables the migration created: nothing to scale


def with_predictions(
    results: Iterable[StatementResult], statements: Sequence[Statement], inputs: ScaleInputs
) -> list[StatementResult]:
    """Each executed statement with its production-scale prediction in its margins."""
    by_index = {s.index: s for s in statements}
    updated = []
    for result in results:
        statement = by_index.get(result.index)
        if result.executed and result.duration_ms is not None and statement is not None:
            prediction = predict(result, statement, inputs)
            margins = result.margins or StatementMargins(headroom=Headroom())
            result = replace(result, margins=replace(margins, prediction=prediction))
        updated.append(result)
    return updated


def predict(result: StatementResult, statement: Statement, inputs: ScaleInputs) -> Prediction:
    measured = slowest_ms(result) or 0.0
    tables = _scaled_tables(result, statement, inputs)
    growth = classify(result, statement, tables)
    ratio = max((_ratio(t) for t in tables), default=1.0)
    factor = growth_factor(growth, ratio, _clone_rows(tables, inputs.clone))
    unknown = [t.name for t in tables if t.production_bytes is None]
    return Prediction(
        growth=growth,
        factor=factor,
        measured_ms=measured,
        duration_ms=measured * factor,
        tables=tuple(tables),
        note=f"no production size for {', '.join(unknown)}: taken as the clone's"
        if unknown
        else None,
    )


def classify(
    result: StatementResult, statement: Statement, tables: Sequence[ScaledTable]
) -> Growth:
    """How the statement's duration grows with its tables (the model above)."""
    if not tables:
        return Growth.CONSTANT
    if statement.node in _SORTING_NODES or statement.action in _SORTING_ACTIONS:
        return Growth.N_LOG_N
    if any(t.name in result.rewrites for t in tables):
        return Growth.LINEAR
    blocks = _blocks_asked(result)
    if blocks is None:
        return Growth.LINEAR
    pages = sum(t.clone_bytes for t in tables) / BLOCK_SIZE
    scanned = min(pages, max(SCAN_SHARE * pages, KEY_LOOKUP_BLOCKS))
    return Growth.LINEAR if blocks >= scanned else Growth.CONSTANT


def growth_factor(growth: Growth, ratio: float, clone_rows: float) -> float:
    """How many times longer at production scale, for a size ratio ``ratio`` (≥ 1)."""
    ratio = max(ratio, 1.0)
    if growth is Growth.CONSTANT:
        return 1.0
    if growth is Growth.LINEAR:
        return ratio
    rows = max(clone_rows, 2.0)
    return ratio * math.log(ratio * rows) / math.log(rows)


def _scaled_tables(
    result: StatementResult, statement: Statement, inputs: ScaleInputs
) -> list[ScaledTable]:
    """The pre-existing tables the statement worked on, sized on the clone and production."""
    first = _first_buffers(result)
    names = {
        lock.relation
        for lock in result.locks
        if lock.locktype == "relation" and lock.relkind in _TABLE_KINDS
    } | set(first.tables if first else ())
    if not names:  # a rehearsal outside the transaction may sample no lock: the parser's names
        names = {_qualified(name) for name in statement.relations}
    tables = []
    for name in sorted(names - inputs.created):
        clone = inputs.clone.get(name)
        if clone is None or clone.bytes == 0:
            continue
        production = inputs.production.tables.get(name)
        tables.append(ScaledTable(name, clone.bytes, production.bytes if production else None))
    return tables


def _qualified(name: str) -> str:
    return name if "." in name else f"public.{name}"


def _ratio(table: ScaledTable) -> float:
    if table.production_bytes is None:
        return 1.0
    return table.production_bytes / table.clone_bytes


def _clone_rows(tables: Sequence[ScaledTable], clone: Mapping[str, TableSize]) -> float:
    """Rows of the largest table (pages where ANALYZE never ran: the sort's n up to a factor)."""
    largest = max(tables, key=lambda t: t.clone_bytes, default=None)
    if largest is None:
        return 2.0
    size = clone[largest.name]
    return size.rows if size.rows else size.bytes / BLOCK_SIZE


def _first_buffers(result: StatementResult) -> Buffers | None:
    runs = result.margins.runs if result.margins else None
    return runs.samples[0].buffers if runs and runs.samples else None


def _blocks_asked(result: StatementResult) -> int | None:
    first = _first_buffers(result)
    return None if first is None else first.hit + first.read
