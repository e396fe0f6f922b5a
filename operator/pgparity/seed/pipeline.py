"""``pgparity seed``: production into a clone at full scale, masked inside the source.

1. Check the policy against the source's catalog (default-deny) and prove, failing closed, that
   the target is not the source (``identity``); it must be empty, or a pgparity clone that
   ``--replace`` may clear.
2. Export a snapshot from a read-only REPEATABLE READ transaction on the source; ``pg_dump -Fc``
   the schema (pre-data and post-data sections, no rows) from that snapshot. Only then is the
   target cleared (``--replace``) and marked ``seed_state = incomplete``, and ``pg_restore``
   creates the tables there, without indexes or constraints.
3. Copy the data: per table (big tables in ranges of pages), ``COPY (SELECT <masked
   expressions> …) TO STDOUT (FORMAT binary)`` on the source, streamed block by block into
   ``COPY … FROM STDIN (FORMAT binary)`` on the target by N workers that all import the
   snapshot. No row is parsed in Python, and no raw value leaves the source.
4. Build indexes and constraints in parallel from the archive's table of contents, timing each
   build; set sequences; ANALYZE.
5. Mark the target ``seed_state = complete`` with the policy's hash and the source's schema
   digest. An interrupted seed stays ``incomplete``, and pgparity refuses to validate on it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from pgparity.errors import DatabaseError, PolicyRejectedError, UsageError
from pgparity.models.policy import Policy, RowsMode
from pgparity.pg.clone import database_settings, mark_clone, set_database_setting
from pgparity.pg.connection import connect, error_message
from pgparity.schema.digest import take_snapshot
from pgparity.seed.catalog import SourceCatalog, TableInfo, read_catalog
from pgparity.seed.identity import check_single_host, prove_not_source
from pgparity.seed.load import SEED_APPLICATION, LoadPlan, TableCopy, load
from pgparity.seed.mac import BUILTIN, Mac, choose_mac
from pgparity.seed.plan import CopyJob, chunk_pages_for, copy_jobs, copy_order
from pgparity.seed.policy_check import check_policy
from pgparity.seed.postdata import (
    BuildTiming,
    Phase,
    PostDataEntry,
    apply_post_data,
    classify_post_data,
)
from pgparity.seed.progress import SeedProgress
from pgparity.seed.schema import SchemaArchive, dump_schema, restore_section
from pgparity.seed.target import check_replaceable, clear
from pgparity.seed.transforms import MIN_KEY_BYTES, TRANSFORMS

MIN_SERVER_FOR_TID_RANGES = 140000


@dataclass(frozen=True)
class SeedOptions:
    jobs: int = 2
    replace: bool = False
    key: bytes | None = None


@dataclass
class SeedResult:
    tables: list[TableCopy] = field(default_factory=list)
    builds: list[BuildTiming] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    source_digest: str = ""
    target_digest: str = ""
    policy_sha256: str = ""

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "index_builds": [b.to_dict() for b in self.builds],
            "phases_seconds": {k: round(v, 3) for k, v in self.phases.items()},
            "rows": self.rows,
            "bytes": self.bytes,
            "source_digest": self.source_digest,
            "target_digest": self.target_digest,
            "policy_sha256": self.policy_sha256,
        }


def load_key(data: bytes | None, where: str) -> bytes:
    if data is None:
        raise UsageError(
            "the policy uses keyed transforms: give the masking key with "
            "--key-file FILE or the environment variable PGPARITY_MASKING_KEY"
        )
    key = data.strip()
    if len(key) < MIN_KEY_BYTES:
        raise UsageError(
            f"the masking key from {where} is too short (at least {MIN_KEY_BYTES} bytes)"
        )
    return key


def needs_key(policy: Policy) -> bool:
    return any(
        TRANSFORMS[rule.transform].keyed
        for table in policy.tables.values()
        for rule in table.columns.values()
        if rule.transform in TRANSFORMS
    )


def seed(
    source_dsn: str, target_dsn: str, policy: Policy, options: SeedOptions, progress: SeedProgress
) -> SeedResult:
    check_single_host(target_dsn, "target")
    result = SeedResult(policy_sha256=policy.sha256)
    clock = _Phases(result)
    with (
        connect(
            source_dsn, role="source", read_only=True, application_name=SEED_APPLICATION
        ) as source,
        tempfile.TemporaryDirectory(prefix="pgparity-seed-") as workdir,
    ):
        catalog = _checked_catalog(source, policy, options)
        mac = choose_mac(source, options.key) if needs_key(policy) else BUILTIN
        if needs_key(policy):
            progress.say(f"keyed transforms: HMAC-SHA256 by {mac.describe()}")
        with connect(target_dsn, role="target") as target:
            proof = prove_not_source(source, target, target_dsn)
            progress.say(f"the target is not the source: {proof.value}")
            replacing = check_replaceable(target, options.replace)
            result.source_digest = take_snapshot(source).digest
            with clock("schema"):
                schema = _dump_schema(source, source_dsn, Path(workdir))
                if replacing:
                    clear(target)
                    progress.say(f"--replace: dropped the {replacing} relations in the target")
                _mark(target, state="incomplete", policy=policy)
                progress.say(f"schema: pg_restore --section=pre-data (snapshot {schema.snapshot})")
                restore_section(schema.archive, target_dsn, "pre-data")
        tables, jobs = _copy_plan(catalog, policy, options.jobs, source.info.server_version, mac)
        loaded = {(t.schema, t.name) for t in tables}
        early = [e for e in schema.entries if e.phase is Phase.KEYS and e.table_key in loaded]
        progress.start(sum(t.bytes for t in tables))
        progress.say(
            f"data: {len(tables)} tables in {len(jobs)} pieces, {options.jobs} workers;"
            " each table's keys and indexes are built as soon as it is loaded"
        )
        with clock("data and indexes"):
            plan = LoadPlan(
                source_dsn, target_dsn, schema.snapshot, options.key, mac, schema.archive, jobs,
                _by_table(early),
            )  # fmt: skip
            scheduler = load(plan, options.jobs, progress)
        result.tables = scheduler.tables
        source.execute("COMMIT")  # releases the exported snapshot
        with clock("post-data"):
            later = [e for e in schema.entries if e not in early]
            result.builds = scheduler.timings + apply_post_data(
                target_dsn, schema.archive, later, jobs=options.jobs, progress=progress.say
            )
    with clock("sequences and analyze"), connect(target_dsn, role="target") as target:
        _set_sequences(target, schema.sequences)
        progress.say("ANALYZE")
        target.execute("ANALYZE")
        result.target_digest = take_snapshot(target).digest
        _mark(target, state="complete", policy=policy, digest=result.source_digest)
    return result


def _checked_catalog(
    source: psycopg.Connection[Any], policy: Policy, options: SeedOptions
) -> SourceCatalog:
    """The source's catalog, once the policy fits it and the key it needs is there."""
    catalog = read_catalog(source)
    problems = check_policy(policy, catalog)
    if problems:
        raise PolicyRejectedError(problems)
    if needs_key(policy) and options.key is None:
        load_key(None, "")
    return catalog


def _copy_plan(
    catalog: SourceCatalog, policy: Policy, workers: int, server_version: int, mac: Mac
) -> tuple[list[TableInfo], list[CopyJob]]:
    """The tables whose rows are copied, in the order that keeps the run's tail short, and the
    pieces they are copied in."""
    copied = [t for t in catalog.tables.values() if policy.tables[t.display].rows is RowsMode.ALL]
    tables = copy_order(copied, policy)
    split = server_version >= MIN_SERVER_FOR_TID_RANGES
    jobs = [
        job
        for t in tables
        for job in copy_jobs(
            t,
            policy.tables[t.display].columns,
            split=split,
            chunk_pages=chunk_pages_for(t, policy.tables[t.display].columns, workers),
            mac=mac,
        )
    ]
    return tables, jobs


def _by_table(entries: list[PostDataEntry]) -> dict[tuple[str, str], list[PostDataEntry]]:
    builds: dict[tuple[str, str], list[PostDataEntry]] = {}
    for entry in entries:
        assert entry.table_key is not None
        builds.setdefault(entry.table_key, []).append(entry)
    return builds


class _Phases:
    def __init__(self, result: SeedResult) -> None:
        self._result = result

    def __call__(self, name: str) -> _Phase:
        return _Phase(self._result, name)


class _Phase:
    def __init__(self, result: SeedResult, name: str) -> None:
        self._result, self._name = result, name

    def __enter__(self) -> None:
        self._started = time.perf_counter()

    def __exit__(self, *exc_info: object) -> None:
        self._result.phases[self._name] = time.perf_counter() - self._started


def _mark(
    target: psycopg.Connection[Any], *, state: str, policy: Policy, digest: str | None = None
) -> None:
    try:
        mark_clone(target, database_settings(target).get("clone") or "seeded")
        set_database_setting(target, "seed_state", state)
        set_database_setting(target, "policy_sha256", policy.sha256)
        if digest:
            set_database_setting(target, "source_digest", digest)
            set_database_setting(
                target, "seeded_at", datetime.now(UTC).isoformat(timespec="seconds")
            )
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot record the seed state on the target (pgparity needs to "
            f"own it or be superuser there): {error_message(exc)}"
        ) from exc


@dataclass(frozen=True)
class _Schema:
    snapshot: str
    archive: SchemaArchive
    entries: list[PostDataEntry]
    sequences: list[tuple[str, int]]


def _dump_schema(source: psycopg.Connection[Any], source_dsn: str, workdir: Path) -> _Schema:
    """Export the snapshot; dump the schema, classify its post-data entries and read the
    sequences, all as of that snapshot."""
    source.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    row = source.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
    assert row is not None
    snapshot = str(row[0])
    archive = dump_schema(source_dsn, snapshot, workdir)
    sequences = [
        (str(name), int(value))
        for name, value in source.execute(
            "SELECT format('%I.%I', schemaname, sequencename), last_value "
            "FROM pg_catalog.pg_sequences WHERE last_value IS NOT NULL"
        ).fetchall()
    ]
    return _Schema(snapshot, archive, classify_post_data(source, archive), sequences)


def _set_sequences(target: psycopg.Connection[Any], sequences: list[tuple[str, int]]) -> None:
    for name, value in sequences:
        target.execute("SELECT setval(%s::regclass, %s, true)", (name, value))
