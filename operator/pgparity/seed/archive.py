"""Anonymized archives: a seeded clone streamed into an object store (or a local directory), and
restored from there into another clone.

An archive is a prefix (``s3://bucket/orders/20261129T030000Z.pgparity/``, or a directory)
holding:

- ``schema.dump``: ``pg_dump -Fc`` of the pre-data and post-data sections (no rows), applied
  by ``pg_restore`` — schema objects never travel as edited SQL text;
- ``data/NNNNNN.copy.gz``: one table's rows each, ``COPY … TO STDOUT (FORMAT binary)``
  compressed with gzip, streamed from the clone into a multipart upload as they are read: no
  table ever lands on the local disk or wholly in memory, whatever its size;
- ``manifest.json``, written last: schema digest, the source's digest, the policy hash, exact
  rows per table, the server's major version, and every file's sha256 and size.

All tables are read in one exported snapshot (``pg_export_snapshot``), by ``--jobs`` workers.
``snapshot`` refuses any database that is not a completed pgparity seed: an archive must never
hold raw production data.

``restore`` reads the manifest, checks the target's major version and every file's size before
it touches the target, verifies ``schema.dump``'s sha256 before ``pg_restore`` reads it, and
loads each table in its own transaction whose COMMIT waits for the file's sha256: a truncated or
tampered file is never committed (its bytes are data to COPY, never SQL). The target is marked
``seed_state = incomplete`` until the rows and the digest match the manifest.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql

from pgparity import __version__
from pgparity.errors import ArchiveMismatchError, DatabaseError, UsageError
from pgparity.models.progress import Progress
from pgparity.pg.clone import database_settings, mark_clone, set_database_setting
from pgparity.pg.connection import connect, error_message
from pgparity.pg.schemas import user_schema
from pgparity.schema.digest import take_snapshot
from pgparity.seed.archives import check_empty, read_manifest, remove
from pgparity.seed.identity import check_single_host, check_writable, read_facts
from pgparity.seed.load import TARGET_SESSION
from pgparity.seed.manifest import (
    MANIFEST,
    SCHEMA_FILE,
    ArchiveFile,
    Manifest,
    SequenceValue,
    TableData,
    data_file,
)
from pgparity.seed.schema import RESTORE_OPTIONS, dump_schema, target_dbname
from pgparity.seed.target import check_replaceable, clear
from pgparity.seed.tools import run_tool
from pgparity.storage.location import Location
from pgparity.storage.store import MAX_PARTS, MIB, Bucket

T = TypeVar("T")
COMPRESSION_LEVEL = 1  # zlib's fastest: most of the size gain, a fraction of the CPU
GZIP = 31  # zlib wbits for a gzip container: each data file is a plain .gz
BLOCK = MIB
# Bytes a decompressor may produce from one chunk: bounds memory even for a forged file
# that inflates a thousandfold.
INFLATE_LIMIT = 4 * MIB

_TABLES = f"""
SELECT n.nspname, c.relname, pg_catalog.pg_table_size(c.oid),
       array(SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attgenerated = '' ORDER BY a.attnum)::text[]
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND {user_schema("n.nspname")}
ORDER BY pg_catalog.pg_table_size(c.oid) DESC, n.nspname, c.relname
"""
_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename), last_value
FROM pg_catalog.pg_sequences WHERE last_value IS NOT NULL
"""


@dataclass(frozen=True)
class ArchiveOptions:
    jobs: int = 2
    part_size: int = 16 * MIB


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    columns: tuple[str, ...]
    size: int  # on disk: sizes the upload's parts


# --- snapshot ---------------------------------------------------------------------------------


def snapshot(
    dsn: str, bucket: Bucket, archive: Location, options: ArchiveOptions, progress: Progress
) -> Manifest:
    check_empty(bucket, archive)
    started = datetime.now(UTC).isoformat(timespec="microseconds")
    with connect(dsn, role="clone", read_only=True) as conn:
        settings = _seeded_settings(conn)
        digest = take_snapshot(conn)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
        assert row is not None
        exported = str(row[0])
        tables = _read_tables(conn)
        sequences = tuple(SequenceValue(str(n), int(v), True) for n, v in conn.execute(_SEQUENCES))
        try:
            schema_file, uploaded = _upload_all(
                dsn, exported, bucket, archive, tables, options, progress
            )
            manifest = Manifest(
                created_at=started,
                schema_digest=digest.digest,
                source_digest=settings.get("source_digest", ""),
                policy_sha256=settings["policy_sha256"],
                server_version=digest.server_version,
                server_major=conn.info.server_version // 10000,
                pgparity_version=__version__,
                tables=tuple(
                    TableData(t.schema, t.name, t.columns, rows, file.path)
                    for t, (file, rows) in zip(tables, uploaded, strict=True)
                ),
                sequences=sequences,
                files=(schema_file, *(file for file, _ in uploaded)),
            )
            # Last: until this object exists, nothing takes the prefix for an archive.
            bucket.put_bytes(archive.child(MANIFEST), manifest.to_json())
        except BaseException:
            remove(bucket, archive, progress)
            raise
        conn.execute("COMMIT")
    return manifest


def _seeded_settings(conn: psycopg.Connection[Any]) -> dict[str, str]:
    settings = database_settings(conn)
    if settings.get("seed_state") != "complete" or not settings.get("policy_sha256"):
        raise UsageError(
            "refusing to snapshot a database that is not a completed pgparity "
            f"seed (seed_state={settings.get('seed_state', 'none')}): it could "
            "hold raw production data"
        )
    return settings


def _read_tables(conn: psycopg.Connection[Any]) -> list[_Table]:
    return [
        _Table(str(schema), str(name), tuple(columns), int(size or 0))
        for schema, name, size, columns in conn.execute(_TABLES).fetchall()
    ]


def _upload_all(
    dsn: str,
    exported: str,
    bucket: Bucket,
    archive: Location,
    tables: Sequence[_Table],
    options: ArchiveOptions,
    progress: Progress,
) -> tuple[ArchiveFile, list[tuple[ArchiveFile, int]]]:
    """The schema's file, and each table's file and exact row count (read by ``jobs``
    workers, each in the exported snapshot)."""
    with tempfile.TemporaryDirectory(prefix="pgparity-snapshot-") as workdir:
        schema = dump_schema(dsn, exported, Path(workdir))
        schema_file = _upload_file(bucket, archive, schema.path)
        progress(f"schema: {SCHEMA_FILE} ({schema_file.bytes:,} bytes)")
    stop = threading.Event()

    def upload(index: int) -> tuple[ArchiveFile, int]:
        table = tables[index]
        file, rows = _upload_table(dsn, exported, bucket, archive, table, index + 1, options, stop)
        progress(f"{table.schema}.{table.name}: {rows:,} rows, {file.bytes:,} bytes → {file.path}")
        return file, rows

    return schema_file, _in_parallel(upload, range(len(tables)), options.jobs, stop)


def _upload_file(bucket: Bucket, archive: Location, path: Path) -> ArchiveFile:
    check = _Checksum()

    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            while block := handle.read(BLOCK):
                check.update(block)
                yield block

    bucket.put_stream(archive.child(SCHEMA_FILE), chunks(), bucket.options.part_size)
    return ArchiveFile(SCHEMA_FILE, check.hexdigest(), check.bytes)


def _upload_table(
    dsn: str,
    exported: str,
    bucket: Bucket,
    archive: Location,
    table: _Table,
    number: int,
    options: ArchiveOptions,
    stop: threading.Event,
) -> tuple[ArchiveFile, int]:
    """The table's file, uploaded, and its exact row count, both as of the snapshot."""
    path = data_file(number)
    check = _Checksum()
    with connect(dsn, role="clone", read_only=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(exported)))
        rows = _count(conn, table.schema, table.name)
        stream = _compressed_rows(conn, table, check, stop)
        bucket.put_stream(archive.child(path), stream, _part_size(table.size, options.part_size))
        conn.execute("COMMIT")
    return ArchiveFile(path, check.hexdigest(), check.bytes), rows


def _count(conn: psycopg.Connection[Any], schema: str, name: str) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, name))
    ).fetchone()
    return int(row[0]) if row else 0


def _part_size(table_bytes: int, configured: int) -> int:
    """``configured``, raised so that a table of ``table_bytes`` fits S3's 10,000 parts (the
    compressed stream is rarely larger than the table; a tenth more covers gzip's worst case)."""
    needed = math.ceil(table_bytes * 1.1 / (MAX_PARTS - 1000))
    return max(configured, math.ceil(needed / MIB) * MIB)


def _compressed_rows(
    conn: psycopg.Connection[Any], table: _Table, check: _Checksum, stop: threading.Event
) -> Iterator[bytes]:
    """The table's binary COPY, gzip'd, in blocks of about a MiB, summed as they go."""
    statement = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(
        sql.Identifier(table.schema, table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in table.columns),
    )
    compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, GZIP)
    raw = bytearray()  # COPY sends a message per row: compress them a MiB at a time
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for block in copy:
            raw += block
            if len(raw) < BLOCK:
                continue
            if stop.is_set():
                raise _StoppedError
            compressed = compressor.compress(raw)
            raw.clear()
            if compressed:
                check.update(compressed)
                yield compressed
    compressed = compressor.compress(raw) + compressor.flush()
    check.update(compressed)
    yield compressed


# --- restore ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    rows: dict[tuple[str, str], int]
    schema_digest: str

    @property
    def problems(self) -> list[str]:
        found = []
        if self.schema_digest != self.manifest.schema_digest:
            found.append(
                f"schema digest {self.schema_digest} differs from the manifest's "
                f"{self.manifest.schema_digest}"
            )
        for table in self.manifest.tables:
            got = self.rows.get((table.schema, table.name))
            if got != table.rows:
                found.append(f"{table.display}: {got} rows, the manifest says {table.rows}")
        return found


def restore(
    bucket: Bucket,
    archive: Location,
    target_dsn: str,
    *,
    options: ArchiveOptions,
    replace: bool,
    progress: Progress,
) -> RestoreResult:
    manifest = read_manifest(bucket, archive)
    check_sizes(bucket, archive, manifest)
    check_single_host(target_dsn, "target")
    with tempfile.TemporaryDirectory(prefix="pgparity-restore-") as workdir:
        schema = Path(workdir) / SCHEMA_FILE
        with connect(target_dsn, role="target") as conn:
            check_writable(read_facts(conn), "target")
            _check_major(manifest, conn.info.server_version // 10000)
            replacing = check_replaceable(conn, replace)
            _download_verified(bucket, archive, manifest.file(SCHEMA_FILE), schema)
            if replacing:
                clear(conn)
            _record(conn, "incomplete", manifest)
        progress(f"schema: pg_restore --section=pre-data ({manifest.server_version})")
        _pg_restore(schema, target_dsn, "pre-data", jobs=1)
        _load_all(bucket, archive, manifest, target_dsn, options.jobs, progress)
        progress(f"indexes and constraints: pg_restore --section=post-data --jobs={options.jobs}")
        _pg_restore(schema, target_dsn, "post-data", jobs=options.jobs)
    with connect(target_dsn, role="target") as conn:
        for sequence in manifest.sequences:
            conn.execute(
                "SELECT pg_catalog.setval(%s::regclass, %s, %s)",
                (sequence.name, sequence.value, sequence.called),
            )
        conn.execute("ANALYZE")
        result = RestoreResult(manifest, _count_rows(conn), take_snapshot(conn).digest)
        if not result.problems:
            _record(conn, "complete", manifest)
    return result


def check_sizes(bucket: Bucket, archive: Location, manifest: Manifest) -> None:
    """Every file the manifest lists is there, at its size — before the target is touched."""
    sizes = {o.key: o.size for o in bucket.objects(archive)}
    for entry in manifest.files:
        size = sizes.get(archive.child(entry.path).key)
        if size is None:
            raise ArchiveMismatchError(f"{archive}: {entry.path} is missing (truncated archive)")
        if size != entry.bytes:
            raise ArchiveMismatchError(
                f"{archive}: {entry.path} is {size:,} bytes, the manifest says {entry.bytes:,} "
                "(truncated or tampered)"
            )


def _check_major(manifest: Manifest, target_major: int) -> None:
    if manifest.server_major != target_major:
        raise UsageError(
            f"the archive was taken from PostgreSQL {manifest.server_major} and the target runs "
            f"PostgreSQL {target_major}: restore it into a clone of version "
            f"{manifest.server_major} (spec.postgres.version)"
        )


def _download_verified(bucket: Bucket, archive: Location, entry: ArchiveFile, path: Path) -> None:
    check = _Checksum()
    with path.open("wb") as out:
        for chunk in bucket.stream(archive.child(entry.path)):
            check.update(chunk)
            if check.bytes > entry.bytes:
                break
            out.write(chunk)
    check.verify(archive, entry)


def _pg_restore(schema: Path, target_dsn: str, section: str, *, jobs: int) -> None:
    run_tool(
        "pg_restore",
        [
            *RESTORE_OPTIONS,
            f"--section={section}",
            f"--jobs={jobs}",
            f"--dbname={target_dbname(target_dsn)}",
            str(schema),
        ],
        target_dsn,
        what=f"pg_restore --section={section} of the archive",
    )


def _load_all(
    bucket: Bucket,
    archive: Location,
    manifest: Manifest,
    target_dsn: str,
    jobs: int,
    progress: Progress,
) -> None:
    stop = threading.Event()

    def load(table: TableData) -> None:
        entry = manifest.file(table.file)
        _load_table(bucket, archive, entry, table, target_dsn, stop)
        progress(f"{table.display}: {table.rows:,} rows ({entry.bytes:,} bytes verified)")

    _in_parallel(load, manifest.tables, jobs, stop)


def _load_table(
    bucket: Bucket,
    archive: Location,
    entry: ArchiveFile,
    table: TableData,
    target_dsn: str,
    stop: threading.Event,
) -> None:
    """COPY the file into the table in one transaction that commits only once every byte
    read matches the manifest's sha256 and size."""
    check = _Checksum()
    chunks = bucket.stream(archive.child(entry.path))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
        sql.Identifier(table.schema, table.name),
        sql.SQL(", ").join(sql.Identifier(c) for c in table.columns),
    )
    with connect(target_dsn, role="target", session_options=TARGET_SESSION) as conn:
        try:
            with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
                for data in _inflated(_counted(chunks, check, entry, archive, stop)):
                    copy.write(data)
                check.verify(archive, entry)
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError, zlib.error) as exc:
            # Rows COPY refuses, or bytes gzip cannot read: a file that does not match its
            # manifest is reported as such, not as whatever they made of it. Read the rest to
            # know (other failures — a lost connection — are reported at once).
            for chunk in chunks:
                check.update(chunk)
            check.verify(archive, entry)
            if isinstance(exc, zlib.error):
                raise ArchiveMismatchError(f"{archive}: {entry.path} is not gzip data") from exc
            raise _load_failed(table, entry, exc) from exc
        except psycopg.Error as exc:
            raise _load_failed(table, entry, exc) from exc


def _load_failed(table: TableData, entry: ArchiveFile, exc: psycopg.Error) -> DatabaseError:
    return DatabaseError(f"loading {table.display} from {entry.path} failed: {error_message(exc)}")


def _counted(
    chunks: Iterator[bytes],
    check: _Checksum,
    entry: ArchiveFile,
    archive: Location,
    stop: threading.Event,
) -> Iterator[bytes]:
    for chunk in chunks:
        if stop.is_set():
            raise _StoppedError
        check.update(chunk)
        if check.bytes > entry.bytes:
            check.verify(archive, entry)
        yield chunk


def _inflated(chunks: Iterator[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj(GZIP)
    for chunk in chunks:
        data = chunk
        while data:
            yield inflater.decompress(data, INFLATE_LIMIT)
            data = inflater.unconsumed_tail
    tail = inflater.flush()
    if tail:
        yield tail
    if not inflater.eof or inflater.unused_data:
        raise zlib.error("the gzip stream is incomplete or has trailing data")


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
        ) from exc


def _count_rows(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], int]:
    return {(t.schema, t.name): _count(conn, t.schema, t.name) for t in _read_tables(conn)}


# --- shared -----------------------------------------------------------------------------------


class _StoppedError(Exception):
    """Another worker failed: this one stops at its next block."""


class _Checksum:
    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.bytes = 0

    def update(self, data: bytes | bytearray) -> None:
        self._hash.update(data)
        self.bytes += len(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def verify(self, archive: Location, entry: ArchiveFile) -> None:
        if self.bytes != entry.bytes or self.hexdigest() != entry.sha256:
            raise ArchiveMismatchError(
                f"{archive}: {entry.path} does not match the manifest's sha256 and size "
                "(tampered or truncated); nothing of it was committed"
            )


def _in_parallel(
    work: Callable[[Any], T], items: Sequence[Any] | range, jobs: int, stop: threading.Event
) -> list[T]:
    """``work`` over ``items`` on ``jobs`` threads, results in order. The first failure (or
    Ctrl-C) cancels what has not started and stops the rest at their next block (they check
    ``stop``); it is raised once every worker has returned."""
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="archive") as pool:
        futures: list[Future[T]] = [pool.submit(work, item) for item in items]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            failed = [f for f in futures if f.done() and not f.cancelled() and f.exception()]
            if failed or not all(f.done() for f in futures):
                stop.set()
                for future in futures:
                    future.cancel()
                wait(futures)
        # The failure that stopped the others, not one of theirs.
        errors = [e for f in failed if (e := f.exception()) is not None]
        if errors:
            raise next((e for e in errors if not isinstance(e, _StoppedError)), errors[0])
    return [f.result() for f in futures]
