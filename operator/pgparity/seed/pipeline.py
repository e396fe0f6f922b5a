"""``pgparity seed``: production into a clone at full scale, masked inside the source.

1. Check the policy against the source's catalog (default-deny) and the target (empty, or
   ``--replace``; never the source itself). Mark the target ``seed_state = incomplete``.
2. Export a snapshot from a read-only REPEATABLE READ transaction on the source; pg_dump the
   schema (pre-data and post-data sections, no data) from that snapshot and create the tables
   on the target, without indexes or constraints.
3. Copy the data: per table (big tables in ranges of pages), ``COPY (SELECT <masked
   expressions> …) TO STDOUT (FORMAT binary)`` on the source, streamed block by block into
   ``COPY … FROM STDIN (FORMAT binary)`` on the target by N workers that all import the
   snapshot. No row is parsed in Python, and no raw value leaves the source.
4. Build indexes and constraints in parallel, timing each build; set sequences; ANALYZE.
5. Mark the target ``seed_state = complete`` with the policy's hash and the source's schema
   digest. An interrupted seed stays ``incomplete``, and pgparity refuses to validate on it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from pgparity.engine.clone import database_settings, mark_clone, set_database_setting
from pgparity.engine.connection import connect, error_message
from pgparity.engine.digest import take_snapshot
from pgparity.errors import DatabaseError, UsageError
from pgparity.models.policy import Policy, RowsMode
from pgparity.seed.catalog import read_catalog
from pgparity.seed.load import SEED_APPLICATION, LoadPlan, TableCopy, load
from pgparity.seed.plan import chunk_pages_for, copy_cost, copy_jobs
from pgparity.seed.policy_check import PolicyProblem, check_policy
from pgparity.seed.postdata import (
    BuildTiming,
    PostDataStatement,
    apply_post_data,
    split_post_data,
)
from pgparity.seed.progress import SeedProgress
from pgparity.seed.tools import run_tool
from pgparity.seed.transforms import MIN_KEY_BYTES, TRANSFORMS

MIN_SERVER_FOR_TID_RANGES = 140000
# pg_dump options: schema only, no owners or grants (roles differ on clones), and never
# subscriptions (a clone must not start replicating from production).
DUMP_SCHEMA = [
    "--no-owner",
    "--no-privileges",
    "--no-subscriptions",
    "--no-publications",
    "--no-security-labels",
    "--format=plain",
]


class PolicyRejectedError(UsageError):
    """The policy does not cover the source, or does not fit it."""

    def __init__(self, problems: list[PolicyProblem]) -> None:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            f"the policy does not fit the source: {shown}{more} — "
            "`pgparity policy check` lists them all"
        )
        self.problems = problems


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
    result = SeedResult(policy_sha256=policy.sha256)
    clock = _Phases(result)
    with connect(
        source_dsn, role="source", read_only=True, application_name=SEED_APPLICATION
    ) as source:
        catalog = read_catalog(source)
        problems = check_policy(policy, catalog)
        if problems:
            raise PolicyRejectedError(problems)
        if needs_key(policy) and options.key is None:
            load_key(None, "")
        with connect(target_dsn, role="target") as target:
            _check_target(source, target)
            if check_target_empty(target, options.replace):
                progress.say("--replace: dropped everything that was in the target")
            _mark(target, state="incomplete", policy=policy)
        result.source_digest = take_snapshot(source).digest
        with clock("schema"):
            snapshot, post_data, sequences = _schema(source, source_dsn, target_dsn, progress)
        settings, statements = split_post_data(post_data)
        tables = [
            t for t in catalog.tables.values() if policy.tables[t.display].rows is RowsMode.ALL
        ]
        # Costliest first: the tail of the run is then short tables and index builds.
        tables.sort(key=lambda t: -copy_cost(t, policy.tables[t.display].columns))
        split = source.info.server_version >= MIN_SERVER_FOR_TID_RANGES
        jobs = [
            job
            for t in tables
            for job in copy_jobs(
                t,
                policy.tables[t.display].columns,
                split=split,
                chunk_pages=chunk_pages_for(t, policy.tables[t.display].columns, options.jobs),
            )
        ]
        loaded = {(t.schema, t.name) for t in tables}
        early = [s for s in statements if s.phase == 1 and s.table_key in loaded]
        builds: dict[tuple[str, str], list[PostDataStatement]] = {}
        for statement in early:
            assert statement.table_key is not None
            builds.setdefault(statement.table_key, []).append(statement)
        progress.start(sum(t.bytes for t in tables))
        progress.say(
            f"data: {len(tables)} tables in {len(jobs)} pieces, {options.jobs} workers;"
            " each table's keys and indexes are built as soon as it is loaded"
        )
        with clock("data and indexes"):
            plan = LoadPlan(source_dsn, target_dsn, snapshot, options.key, settings, jobs, builds)
            scheduler = load(plan, options.jobs, progress)
        result.tables = scheduler.tables
        source.execute("COMMIT")  # releases the exported snapshot
    with clock("post-data"):
        later = [s for s in statements if s not in early]
        result.builds = scheduler.timings + apply_post_data(
            target_dsn, settings, later, jobs=options.jobs, progress=progress.say
        )
    with clock("sequences and analyze"), connect(target_dsn, role="target") as target:
        _set_sequences(target, sequences)
        progress.say("ANALYZE")
        target.execute("ANALYZE")
        result.target_digest = take_snapshot(target).digest
        _mark(target, state="complete", policy=policy, digest=result.source_digest)
    return result


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


def _check_target(source: psycopg.Connection[Any], target: psycopg.Connection[Any]) -> None:
    mine, theirs = _identity(source), _identity(target)
    if mine[:2] == theirs[:2]:
        raise UsageError("the target is the source database itself; refusing to seed it")
    if theirs[2]:
        raise UsageError("the target is a read-only replica; seed its primary")


def check_target_empty(target: psycopg.Connection[Any], replace: bool) -> bool:
    """Refuse a target that holds relations, unless ``replace``: then drop them all.

    Returns True when something was dropped.
    """
    row = target.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
    ).fetchone()
    if not row or not row[0]:
        return False
    if not replace:
        raise UsageError(
            f"the target is not empty ({row[0]} relations); refusing to write "
            "into it (use --replace to drop everything in it first)"
        )
    _clear(target)
    return True


def _identity(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """(cluster, database, in recovery): the cluster is its system identifier when readable,
    else the server's address and port."""
    try:
        row = conn.execute(
            "SELECT system_identifier::text, current_database(), "
            "pg_is_in_recovery() FROM pg_control_system()"
        ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        row = conn.execute(
            "SELECT coalesce(inet_server_addr()::text, 'local') || ':' || "
            "inet_server_port(), current_database(), pg_is_in_recovery()"
        ).fetchone()
    assert row is not None
    return tuple(row)


def _clear(target: psycopg.Connection[Any]) -> None:
    schemas = [
        r[0]
        for r in target.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', "
            "'information_schema') AND nspname NOT LIKE 'pg\\_toast%' "
            "AND nspname NOT LIKE 'pg\\_temp%'"
        ).fetchall()
    ]
    for extension in [
        r[0]
        for r in target.execute(
            "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'"
        ).fetchall()
    ]:
        target.execute(
            sql.SQL("DROP EXTENSION IF EXISTS {} CASCADE").format(sql.Identifier(extension))
        )
    for schema in schemas:
        target.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    target.execute("CREATE SCHEMA IF NOT EXISTS public")


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
        ) from None


def _schema(
    source: psycopg.Connection[Any], source_dsn: str, target_dsn: str, progress: SeedProgress
) -> tuple[str, str, list[tuple[str, int]]]:
    """Export the snapshot, dump both schema sections from it, create the tables."""
    source.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    row = source.execute("SELECT pg_export_snapshot()").fetchone()
    assert row is not None
    snapshot = str(row[0])
    progress.say(f"schema: pg_dump pre-data and post-data from snapshot {snapshot}")
    dump = [*DUMP_SCHEMA, f"--snapshot={snapshot}"]
    pre_data = run_tool(
        "pg_dump", [*dump, "--section=pre-data"], source_dsn, what="pg_dump --section=pre-data"
    )
    post_data = run_tool(
        "pg_dump", [*dump, "--section=post-data"], source_dsn, what="pg_dump --section=post-data"
    )
    sequences = [
        (str(name), int(value))
        for name, value in source.execute(
            "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences "
            "WHERE last_value IS NOT NULL"
        ).fetchall()
    ]
    run_tool(
        "psql",
        ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"],
        target_dsn,
        what="creating the tables on the target",
        stdin=pre_data,
    )
    return snapshot, post_data.decode("utf-8"), sequences


def _set_sequences(target: psycopg.Connection[Any], sequences: list[tuple[str, int]]) -> None:
    for name, value in sequences:
        target.execute("SELECT setval(%s::regclass, %s, true)", (name, value))
