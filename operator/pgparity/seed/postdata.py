"""Apply the schema archive's post-data entries (indexes, constraints, triggers …), timing builds.

The time each index takes to build on the clone is a parity result: production's index builds
take about as long on production-scale data. So every index and key is applied by its own
``pg_restore -L`` (timed), in the order pg_restore itself would need: indexes and primary-key,
unique, exclusion and check constraints first (in parallel), then foreign keys (in parallel;
they need the referenced keys), then everything else in the archive's order in one run (index
attachments, triggers, rules, comments, materialized view refreshes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any

import psycopg

from pgparity.models.progress import Progress, quiet
from pgparity.seed.schema import SchemaArchive, TocEntry, restore_entries
from pgparity.seed.tools import ChildProcesses

# Bootstrap catalogs have fixed oids (src/include/catalog/pg_class.h, pg_constraint.h).
PG_CLASS = 1259
PG_CONSTRAINT = 2606

_INDEXES = """
SELECT ic.oid::int8, ic.relname, n.nspname, t.relname, format('%%I.%%I', n.nspname, t.relname)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE i.indexrelid = ANY (%s)
"""

_CONSTRAINTS = """
SELECT c.oid::int8, c.conname, c.contype::text, n.nspname, t.relname,
       format('%%I.%%I', n.nspname, t.relname)
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
WHERE c.oid = ANY (%s)
"""


class Phase(IntEnum):
    KEYS = 1  # indexes and non-foreign-key constraints: as soon as their table is loaded
    FOREIGN_KEYS = 2
    REST = 3


class BuildKind(StrEnum):
    INDEX = "index"
    PRIMARY_KEY = "primary key"
    UNIQUE = "unique constraint"
    EXCLUSION = "exclusion constraint"
    CHECK = "check constraint"
    FOREIGN_KEY = "foreign key"
    CONSTRAINT = "constraint"
    OTHER = "other"


_CONSTRAINT_KINDS = {
    "p": BuildKind.PRIMARY_KEY,
    "u": BuildKind.UNIQUE,
    "x": BuildKind.EXCLUSION,
    "c": BuildKind.CHECK,
    "f": BuildKind.FOREIGN_KEY,
}


@dataclass(frozen=True)
class PostDataEntry:
    toc: TocEntry
    phase: Phase
    kind: BuildKind = BuildKind.OTHER
    name: str = ""
    table: str = ""
    table_key: tuple[str, str] | None = None  # (schema, name), unquoted


@dataclass(frozen=True)
class BuildTiming:
    kind: BuildKind
    name: str
    table: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "name": self.name,
            "table": self.table,
            "seconds": round(self.seconds, 3),
        }


def classify_post_data(
    source: psycopg.Connection[Any], archive: SchemaArchive
) -> list[PostDataEntry]:
    """Each post-data entry with its phase and what it builds on which table.

    ``source`` must be in the transaction whose snapshot the archive was dumped from, so the
    oids in the TOC name the same objects.
    """
    entries = archive.post_data
    found: dict[tuple[int, int], _Built] = {}
    for oid, name, schema, relname, display in source.execute(
        _INDEXES, ([e.oid for e in entries if e.catalog == PG_CLASS],)
    ).fetchall():
        found[PG_CLASS, int(oid)] = _Built(
            Phase.KEYS, BuildKind.INDEX, str(name), str(display), (str(schema), str(relname))
        )
    for oid, name, contype, schema, relname, display in source.execute(
        _CONSTRAINTS, ([e.oid for e in entries if e.catalog == PG_CONSTRAINT],)
    ).fetchall():
        kind = _CONSTRAINT_KINDS.get(str(contype), BuildKind.CONSTRAINT)
        phase = Phase.FOREIGN_KEYS if kind is BuildKind.FOREIGN_KEY else Phase.KEYS
        found[PG_CONSTRAINT, int(oid)] = _Built(
            phase, kind, str(name), str(display), (str(schema), str(relname))
        )
    return [_entry(toc, found.get((toc.catalog, toc.oid))) for toc in entries]


@dataclass(frozen=True)
class _Built:
    phase: Phase
    kind: BuildKind
    name: str
    table: str
    table_key: tuple[str, str]


def _entry(toc: TocEntry, built: _Built | None) -> PostDataEntry:
    if built is None:
        return PostDataEntry(toc, Phase.REST)
    return PostDataEntry(toc, built.phase, built.kind, built.name, built.table, built.table_key)


def apply_post_data(
    target_dsn: str,
    archive: SchemaArchive,
    entries: Sequence[PostDataEntry],
    *,
    jobs: int,
    progress: Progress = quiet,
    children: ChildProcesses | None = None,
) -> list[BuildTiming]:
    """Apply entries in pg_restore's order: keys and indexes, foreign keys, the rest."""
    children = children or ChildProcesses()
    timings: list[BuildTiming] = []
    for phase in (Phase.KEYS, Phase.FOREIGN_KEYS):
        batch = [e for e in entries if e.phase is phase]
        if batch:
            progress(
                f"post-data: {len(batch)} "
                f"{'indexes and keys' if phase is Phase.KEYS else 'foreign keys'} with {jobs} jobs"
            )
            timings += _parallel(target_dsn, archive, batch, jobs, progress, children)
    rest = [e.toc for e in entries if e.phase is Phase.REST]
    if rest:
        progress(f"post-data: {len(rest)} more entries (attachments, triggers, comments, …)")
        restore_entries(archive, target_dsn, rest, what="post-data", children=children)
    return timings


def _parallel(
    target_dsn: str,
    archive: SchemaArchive,
    batch: Sequence[PostDataEntry],
    jobs: int,
    progress: Progress,
    children: ChildProcesses,
) -> list[BuildTiming]:
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        try:
            return list(
                pool.map(lambda e: build(target_dsn, archive, e, progress, children), batch)
            )
        except BaseException:
            # Ctrl-C or a failed build: stop the running pg_restores instead of waiting for them.
            children.stop()
            pool.shutdown(cancel_futures=True)
            raise


def build(
    target_dsn: str,
    archive: SchemaArchive,
    entry: PostDataEntry,
    progress: Progress,
    children: ChildProcesses | None = None,
) -> BuildTiming:
    """Apply one entry with its own pg_restore, timed."""
    started = time.perf_counter()
    restore_entries(
        archive,
        target_dsn,
        [entry.toc],
        what=f"post-data {entry.kind.value} {entry.name} on {entry.table}",
        children=children,
    )
    timing = BuildTiming(entry.kind, entry.name, entry.table, time.perf_counter() - started)
    progress(f"built {timing.kind.value} {timing.name} on {timing.table} in {timing.seconds:.2f} s")
    return timing
