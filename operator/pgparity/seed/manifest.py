"""``manifest.json``: what an archive holds, and the sha256 and size of every file in it.

The manifest is written last: an archive without one is incomplete (interrupted, or still being
written), and nothing reads it as an archive. Its file paths are checked against the only shapes
pgparity writes (``schema.dump``, ``data/NNNNNN.copy.gz``), so a manifest cannot point a restore
anywhere else in the store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pgparity.errors import UsageError

MANIFEST = "manifest.json"
SCHEMA_FILE = "schema.dump"
MANIFEST_VERSION = 2
MAX_MANIFEST_BYTES = 64 << 20
_FILE_PATH = re.compile(r"^(schema\.dump|data/[0-9]{6}\.copy\.gz)$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def data_file(index: int) -> str:
    return f"data/{index:06d}.copy.gz"


@dataclass(frozen=True)
class ArchiveFile:
    path: str  # relative to the archive
    sha256: str
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True)
class TableData:
    """One table's rows: a gzip'd ``COPY … (FORMAT binary)`` stream of ``columns``."""

    schema: str
    name: str
    columns: tuple[str, ...]
    rows: int
    file: str

    @property
    def display(self) -> str:
        return f"{_ident(self.schema)}.{_ident(self.name)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "name": self.name,
            "columns": list(self.columns),
            "rows": self.rows,
            "file": self.file,
        }


@dataclass(frozen=True)
class SequenceValue:
    name: str  # schema-qualified, quoted as format('%I.%I') quotes it
    value: int
    called: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "called": self.called}


@dataclass(frozen=True)
class Manifest:
    created_at: str
    schema_digest: str
    source_digest: str
    policy_sha256: str
    server_version: str
    server_major: int
    pgparity_version: str
    tables: tuple[TableData, ...]
    sequences: tuple[SequenceValue, ...]
    files: tuple[ArchiveFile, ...]

    @property
    def rows(self) -> dict[str, int]:
        return {table.display: table.rows for table in self.tables}

    @property
    def size(self) -> int:
        return sum(f.bytes for f in self.files)

    def file(self, path: str) -> ArchiveFile:
        return next(f for f in self.files if f.path == path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": MANIFEST_VERSION,
            "created_at": self.created_at,
            "schema_digest": self.schema_digest,
            "source_digest": self.source_digest,
            "policy_sha256": self.policy_sha256,
            "server_version": self.server_version,
            "server_major": self.server_major,
            "pgparity_version": self.pgparity_version,
            "rows": self.rows,
            "bytes": self.size,
            "tables": [t.to_dict() for t in self.tables],
            "sequences": [s.to_dict() for s in self.sequences],
            "files": [f.to_dict() for f in self.files],
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode()


def parse_manifest(data: bytes, where: str) -> Manifest:
    """A manifest read from ``where``; anything malformed is a UsageError naming it."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"{where} cannot be read: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("version") != MANIFEST_VERSION:
        raise UsageError(
            f"{where}: unsupported manifest (expected version {MANIFEST_VERSION}; an archive "
            "from another pgparity release is restored by that release)"
        )
    try:
        manifest = _manifest(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{where}: missing or malformed field {exc}") from exc
    _check_files(manifest, where)
    return manifest


def _manifest(doc: dict[str, Any]) -> Manifest:
    return Manifest(
        created_at=_text(doc["created_at"]),
        schema_digest=_text(doc["schema_digest"]),
        source_digest=_text(doc["source_digest"]),
        policy_sha256=_text(doc["policy_sha256"]),
        server_version=_text(doc["server_version"]),
        server_major=_count(doc["server_major"]),
        pgparity_version=_text(doc["pgparity_version"]),
        tables=tuple(
            TableData(
                schema=_text(t["schema"]),
                name=_text(t["name"]),
                columns=tuple(_text(c) for c in t["columns"]),
                rows=_count(t["rows"]),
                file=_text(t["file"]),
            )
            for t in doc["tables"]
        ),
        sequences=tuple(
            SequenceValue(_text(s["name"]), int(s["value"]), bool(s["called"]))
            for s in doc["sequences"]
        ),
        files=tuple(
            ArchiveFile(_text(f["path"]), _text(f["sha256"]), _count(f["bytes"]))
            for f in doc["files"]
        ),
    )


def _check_files(manifest: Manifest, where: str) -> None:
    paths = [f.path for f in manifest.files]
    for entry in manifest.files:
        if not _FILE_PATH.match(entry.path) or not _SHA256.match(entry.sha256):
            raise UsageError(f"{where}: malformed file entry {entry.path!r}")
    if len(set(paths)) != len(paths) or SCHEMA_FILE not in paths:
        raise UsageError(f"{where}: the file list is malformed (duplicates, or no {SCHEMA_FILE})")
    missing = [t.display for t in manifest.tables if t.file not in paths or t.file == SCHEMA_FILE]
    if missing:
        raise UsageError(f"{where}: no data file listed for {', '.join(missing[:3])}")


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number ≥ 0, got {value!r}")
    return value


def _ident(name: str) -> str:
    """An identifier as ``format('%I')`` shows it (quoted unless plain lower case)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'
