"""The schema digest: a canonical hash of the catalog, and the differences between two snapshots.

A digest is ``sha256:`` over the canonical JSON of every user object (see ``catalog_sql``), not
over pg_dump text: it does not depend on OIDs, creation order or the server it was read from.
A snapshot keeps the objects themselves, so a saved baseline can say *what* drifted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import psycopg

from pgparity.errors import DatabaseError, UsageError
from pgparity.inputs import BASELINE, read_text
from pgparity.pg.connection import first_line
from pgparity.schema import catalog_sql

SNAPSHOT_VERSION = 1
# Part of what is hashed, so a change to the canonical form changes every digest at once.
DIGEST_FORMAT = "pgparity-schema-digest/1"


@dataclass(frozen=True)
class CatalogSnapshot:
    """Every user object of one database: ``key -> definition`` (plain JSON values)."""

    objects: Mapping[str, Any]
    server_version: str = ""

    @property
    def digest(self) -> str:
        return digest_of(self.objects)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION,
            "digest": self.digest,
            "server_version": self.server_version,
            "objects": {k: self.objects[k] for k in sorted(self.objects)},
        }

    def save(self, path: Path) -> None:
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CatalogSnapshot:
        text = read_text(path, BASELINE)
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise UsageError(f"baseline file {path} is not a pgparity snapshot: {exc}") from exc
        if (
            not isinstance(doc, dict)
            or doc.get("version") != SNAPSHOT_VERSION
            or not isinstance(doc.get("objects"), dict)
        ):
            raise UsageError(
                f"baseline file {path} is not a version-{SNAPSHOT_VERSION} "
                "pgparity snapshot (write one with `pgparity digest --save`)"
            )
        return cls(objects=doc["objects"], server_version=str(doc.get("server_version", "")))


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class ObjectChange:
    key: str
    kind: ChangeKind
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        kind, _, name = self.key.partition(":")
        return f"{self.kind.value} {kind} {name}"


def digest_of(objects: Mapping[str, Any]) -> str:
    canonical = json.dumps(
        {"format": DIGEST_FORMAT, "objects": objects},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def take_snapshot(conn: psycopg.Connection[Any]) -> CatalogSnapshot:
    """Read the catalog in its own read-only transaction with a qualifying search_path.

    Works on a primary or a replica and never writes. ``conn`` must be idle (autocommit, no
    transaction open): ``SET LOCAL search_path`` must not leak into anybody's transaction.
    """
    objects: dict[str, Any] = {}
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            # pg_temp last: a temporary table called pg_class cannot stand in for the catalog.
            cur.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            for query in catalog_sql.ALL_OBJECT_QUERIES:
                cur.execute(query)
                for key, definition in cur.fetchall():
                    objects[str(key)] = _strip_nulls(definition)
            cur.execute("SELECT current_setting('server_version')")
            row = cur.fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the catalog: {first_line(str(exc))}") from exc
    return CatalogSnapshot(objects=objects, server_version=str(row[0]) if row else "")


def diff_snapshots(before: CatalogSnapshot, after: CatalogSnapshot) -> list[ObjectChange]:
    """Objects added, removed or changed from ``before`` to ``after``, ordered by key."""
    changes: list[ObjectChange] = []
    for key in sorted(set(before.objects) | set(after.objects)):
        old, new = before.objects.get(key), after.objects.get(key)
        if key not in after.objects:
            changes.append(ObjectChange(key, ChangeKind.REMOVED, before=old))
        elif key not in before.objects:
            changes.append(ObjectChange(key, ChangeKind.ADDED, after=new))
        elif old != new:
            changes.append(ObjectChange(key, ChangeKind.CHANGED, before=old, after=new))
    return changes


def _strip_nulls(value: Any) -> Any:
    """Drop null members so optional attributes absent on one server don't change the hash."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value
