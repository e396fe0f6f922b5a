"""Archives side by side under one prefix (a collection): listed, ``latest`` resolved, pruned.

A collection is a prefix such as ``s3://acme-pgparity/orders/``; each archive in it is a
prefix one level down (``orders/20261129T030000Z.pgparity/``). An archive is complete once its
``manifest.json`` exists (written last); one without is listed as incomplete — interrupted, or
still being written — and is never resolved as ``latest`` nor counted by ``--keep``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pgparity.errors import ObjectMissingError, UsageError
from pgparity.models.progress import Progress
from pgparity.seed.manifest import MANIFEST, MAX_MANIFEST_BYTES, Manifest, parse_manifest
from pgparity.storage.location import Location, Scheme
from pgparity.storage.store import Bucket, ObjectInfo

ARCHIVE_SUFFIX = ".pgparity"
# An incomplete archive younger than this may be a snapshot still uploading a big table (its
# objects appear only as each file completes): pruning leaves it alone.
INCOMPLETE_GRACE = timedelta(hours=6)


@dataclass(frozen=True)
class ArchiveEntry:
    location: Location
    manifest: Manifest | None  # None: incomplete (no manifest, or one that cannot be read)
    bytes: int  # of every object under the prefix
    modified: datetime  # the newest object's
    problem: str = ""  # why a manifest that exists cannot be used

    @property
    def complete(self) -> bool:
        return self.manifest is not None

    @property
    def created(self) -> str:
        if self.manifest is not None:
            return self.manifest.created_at
        return self.modified.astimezone(UTC).isoformat(timespec="microseconds")


def archive_name(now: datetime) -> str:
    """The name ``snapshot`` gives an archive in a collection: its UTC time, sortable."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + ARCHIVE_SUFFIX


def check_empty(bucket: Bucket, archive: Location) -> None:
    if bucket.objects(archive):
        raise UsageError(f"{archive} exists and is not empty: an archive is never overwritten")


def read_manifest(bucket: Bucket, archive: Location) -> Manifest:
    where = archive.child(MANIFEST)
    try:
        data = bucket.get_bytes(where, MAX_MANIFEST_BYTES)
    except ObjectMissingError as exc:
        raise UsageError(
            f"{archive} has no {MANIFEST}: not a pgparity archive, or its snapshot did not finish"
        ) from exc
    return parse_manifest(data, str(where))


def resolve(bucket: Bucket, archive: Location) -> Location:
    """``archive``, or — for ``…/latest`` — the newest complete archive beside it."""
    if not archive.is_latest:
        return archive
    complete = [entry for entry in list_archives(bucket, archive.parent) if entry.complete]
    if not complete:
        raise UsageError(f"no complete archive in {archive.parent} for {archive.name!r}")
    return complete[0].location


def list_archives(bucket: Bucket, collection: Location) -> list[ArchiveEntry]:
    """The archives under ``collection``, newest first (complete ones by their manifest's time,
    incomplete ones by their newest object's)."""
    groups: dict[str, list[ObjectInfo]] = {}
    base = f"{collection.key}/" if collection.key else ""
    for info in bucket.objects(collection):
        name, _, rest = info.key.removeprefix(base).partition("/")
        if rest:  # objects directly in the collection are not archives
            groups.setdefault(name, []).append(info)
    entries = [_entry(bucket, collection.child(name), found) for name, found in groups.items()]
    return sorted(entries, key=lambda e: (e.created, e.location.name), reverse=True)


def _entry(bucket: Bucket, archive: Location, found: list[ObjectInfo]) -> ArchiveEntry:
    size = sum(o.size for o in found)
    modified = max(o.modified for o in found)
    if not any(o.key == archive.child(MANIFEST).key for o in found):
        return ArchiveEntry(archive, None, size, modified)
    try:
        return ArchiveEntry(archive, read_manifest(bucket, archive), size, modified)
    except UsageError as exc:
        return ArchiveEntry(archive, None, size, modified, problem=str(exc))


def prune(
    bucket: Bucket, collection: Location, keep: int, progress: Progress, now: datetime
) -> list[ArchiveEntry]:
    """Remove all but the newest ``keep`` complete archives, and the incomplete ones left by
    runs that died: untouched since before the newest complete archive was started, and for
    longer than ``INCOMPLETE_GRACE`` (a snapshot still writing is left alone)."""
    entries = list_archives(bucket, collection)
    complete = [e for e in entries if e.complete]
    newest = complete[0].created if complete else ""
    doomed = complete[keep:] + [
        e
        for e in entries
        if not e.complete and e.created < newest and e.modified < now - INCOMPLETE_GRACE
    ]
    for entry in doomed:
        remove(bucket, entry.location, progress, directory=True)
    return doomed


def remove(
    bucket: Bucket, archive: Location, progress: Progress, *, directory: bool = False
) -> None:
    """Delete an archive: its manifest first, so that a removal cut short leaves an incomplete
    archive, never one that looks complete with files missing. In a local directory, the
    subdirectories go too (and the archive's own, with ``directory``)."""
    keys = [o.key for o in bucket.objects(archive)]
    manifest = archive.child(MANIFEST).key
    if manifest in keys:
        bucket.delete([manifest])
    bucket.delete([k for k in keys if k != manifest])
    if archive.scheme is Scheme.FILE:
        _remove_empty_directories(Path(str(archive)), directory)
    if keys:
        progress(f"removed {archive} ({len(keys)} objects)")


def _remove_empty_directories(root: Path, itself: bool) -> None:
    if not root.is_dir():
        return
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    if itself and not any(root.iterdir()):
        root.rmdir()
