"""Anonymized archives: a seeded clone written to a directory, and restored into another clone.

``snapshot`` refuses any database that is not a completed pgparity seed — an archive must never
hold raw production data — and writes a parallel ``pg_dump`` directory archive (written and
read only by pg_dump and pg_restore: no SQL text is edited) plus
``manifest.json`` (schema digest, the source's digest, the policy hash, exact rows per table,
a checksum of the archive's table of contents). The manifest is written last: an interrupted
snapshot has none, and ``restore`` refuses it. ``restore`` loads the archive with parallel
``pg_restore`` into a target that is a writable primary named by one host, and empty — or, with
``--replace``, a pgparity clone it clears first — and verifies the rows and the digest against
the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgparity import __version__
from pgparity.errors import DatabaseError, UsageError
from pgparity.inputs import BASELINE, read_text
from pgparity.pg.clone import database_settings, mark_clone, set_database_setting
from pgparity.pg.connection import connect, error_message
from pgparity.schema.digest import take_snapshot
from pgparity.seed.identity import check_single_host, check_writable, read_facts
from pgparity.seed.schema import DUMP_OPTIONS, RESTORE_OPTIONS, target_dbname
from pgparity.seed.target import check_replaceable, clear
from pgparity.seed.tools import run_tool

MANIFEST = "manifest.json"
DATA_DIR = "data"
MANIFEST_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    created_at: str
    schema_digest: str
    source_digest: str
    policy_sha256: str
    rows: dict[str, int]
    toc_sha256: str
    server_version: str
    pgparity_version: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "created_at": self.created_at,
            "schema_digest": self.schema_digest,
            "source_digest": self.source_digest,
            "policy_sha256": self.policy_sha256,
            "rows": self.rows,
            "toc_sha256": self.toc_sha256,
            "server_version": self.server_version,
            "pgparity_version": self.pgparity_version,
            "archive": DATA_DIR,
        }

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.exists():
            raise UsageError(
                f"{directory} has no {MANIFEST}: not a pgparity archive, or its "
                "snapshot did not finish"
            )
        try:
            # Bounded and regular files only: a FIFO or a huge file is refused, not read.
            doc = json.loads(read_text(path, BASELINE))
        except ValueError as exc:
            raise UsageError(f"{path} cannot be read: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
            raise UsageError(f"{path}: unsupported manifest (expected version {MANIFEST_VERSION})")
        try:
            return cls(
                created_at=str(doc["created_at"]),
                schema_digest=str(doc["schema_digest"]),
                source_digest=str(doc["source_digest"]),
                policy_sha256=str(doc["policy_sha256"]),
                rows={str(k): int(v) for k, v in dict(doc["rows"]).items()},
                toc_sha256=str(doc["toc_sha256"]),
                server_version=str(doc["server_version"]),
                pgparity_version=str(doc["pgparity_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"{path}: missing or malformed field {exc}") from None


def snapshot(dsn: str, output: Path, *, jobs: int) -> Manifest:
    if output.exists() and any(output.iterdir()):
        raise UsageError(f"{output} exists and is not empty")
    with connect(dsn, role="clone", read_only=True) as conn:
        settings = database_settings(conn)
        if settings.get("seed_state") != "complete" or not settings.get("policy_sha256"):
            raise UsageError(
                "refusing to snapshot a database that is not a completed pgparity "
                f"seed (seed_state={settings.get('seed_state', 'none')}): it could "
                "hold raw production data"
            )
        rows = _count_rows(conn)
        digest = take_snapshot(conn)
    output.mkdir(parents=True, exist_ok=True)
    run_tool(
        "pg_dump",
        [*DUMP_OPTIONS, "--format=directory", f"--jobs={jobs}", f"--file={output / DATA_DIR}"],
        dsn,
        what="pg_dump of the clone",
    )
    manifest = Manifest(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        schema_digest=digest.digest,
        source_digest=settings.get("source_digest", ""),
        policy_sha256=settings["policy_sha256"],
        rows=rows,
        toc_sha256=_sha256(output / DATA_DIR / "toc.dat"),
        server_version=digest.server_version,
        pgparity_version=__version__,
    )
    tmp = output / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, output / MANIFEST)
    return manifest


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    rows: dict[str, int]
    schema_digest: str

    @property
    def problems(self) -> list[str]:
        found = []
        if self.schema_digest != self.manifest.schema_digest:
            found.append(
                f"schema digest {self.schema_digest} differs from the manifest's "
                f"{self.manifest.schema_digest}"
            )
        for table, expected in sorted(self.manifest.rows.items()):
            got = self.rows.get(table)
            if got != expected:
                found.append(f"{table}: {got} rows, the manifest says {expected}")
        return found


def restore(archive: Path, target_dsn: str, *, jobs: int, replace: bool) -> RestoreResult:
    manifest = Manifest.read(archive)
    toc = archive / DATA_DIR / "toc.dat"
    if not toc.is_file() or _sha256(toc) != manifest.toc_sha256:
        raise UsageError(f"{archive}: the archive does not match its manifest (toc.dat)")
    check_single_host(target_dsn, "target")
    with connect(target_dsn, role="target") as conn:
        check_writable(read_facts(conn), "target")
        if check_replaceable(conn, replace):
            clear(conn)
        _record(conn, "incomplete", manifest)
    run_tool(
        "pg_restore",
        [
            *RESTORE_OPTIONS,
            f"--jobs={jobs}",
            f"--dbname={target_dbname(target_dsn)}",
            str(archive / DATA_DIR),
        ],
        target_dsn,
        what="pg_restore of the archive",
    )
    with connect(target_dsn, role="target") as conn:
        conn.execute("ANALYZE")
        result = RestoreResult(manifest, _count_rows(conn), take_snapshot(conn).digest)
        if not result.problems:
            _record(conn, "complete", manifest)
    return result


def _record(conn: psycopg.Connection[Any], state: str, manifest: Manifest) -> None:
    try:
        mark_clone(conn, database_settings(conn).get("clone") or "restored")
        set_database_setting(conn, "seed_state", state)
        set_database_setting(conn, "policy_sha256", manifest.policy_sha256)
        set_database_setting(conn, "source_digest", manifest.source_digest)
        set_database_setting(conn, "seeded_at", manifest.created_at)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot record the restore on the target: {error_message(exc)}"
        ) from None


def _count_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    tables = conn.execute(
        "SELECT n.nspname, c.relname, format('%I.%I', n.nspname, c.relname) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
    ).fetchall()
    counts = {}
    for schema, name, display in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name))
        ).fetchone()
        counts[str(display)] = int(row[0]) if row else 0
    return counts


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return ""
