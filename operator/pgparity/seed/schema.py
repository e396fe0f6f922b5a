"""The source's schema as a pg_dump custom archive, applied to the target through its TOC.

Schema objects never travel as edited SQL text: ``pg_dump -Fc`` writes the pre-data and
post-data sections (no rows) from the exported snapshot, ``pg_restore -l`` lists the archive's
table of contents, and ``pg_restore -L`` applies exactly the entries pgparity selects, by dump
id. pg_restore sends each entry's SQL as pg_dump wrote it, so names and comments holding
newlines, quotes, backslashes or ``$$`` arrive exactly as they left the source.

A TOC line reads ``<dump id>; <catalog oid> <object oid> <type> <schema> <name> <owner>``, with
newlines in names printed as spaces, and a type of one or more words: only the dump id and the two
oids are read. What an entry is (an index, which constraint, on which table) comes from the
source's catalog, queried by those oids in the same snapshot.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from psycopg import conninfo

from pgparity.pg.connection import parse_dsn
from pgparity.seed.tools import ChildProcesses, run_tool

# pg_dump options shared by seeding and archives: no owners or grants (roles differ on clones),
# and never subscriptions or publications (a clone must not replicate from or to production).
DUMP_OPTIONS = (
    "--no-owner",
    "--no-privileges",
    "--no-subscriptions",
    "--no-publications",
    "--no-security-labels",
)
RESTORE_OPTIONS = ("--no-owner", "--no-privileges", "--exit-on-error")
ARCHIVE_NAME = "schema.dump"
_TOC_LINE = re.compile(r"^(\d+); (\d+) (\d+) ")


@dataclass(frozen=True)
class TocEntry:
    dump_id: int
    catalog: int  # the oid of the system catalog holding the object (pg_class, …), or 0
    oid: int
    listing: str  # pg_restore's line for it (names sanitized): for messages only


@dataclass(frozen=True)
class SchemaArchive:
    path: Path
    post_data: tuple[TocEntry, ...]


def dump_schema(source_dsn: str, snapshot: str, workdir: Path) -> SchemaArchive:
    """``pg_dump -Fc`` of both schema sections as of ``snapshot``, and its post-data TOC."""
    path = workdir / ARCHIVE_NAME
    run_tool(
        "pg_dump",
        [
            *DUMP_OPTIONS,
            "--format=custom",
            "--section=pre-data",
            "--section=post-data",
            f"--snapshot={snapshot}",
            f"--file={path}",
        ],
        source_dsn,
        what="pg_dump of the schema",
    )
    listing = run_tool(
        "pg_restore",
        ["--list", "--section=post-data", str(path)],
        source_dsn,
        what="pg_restore --list of the schema",
    )
    return SchemaArchive(path, tuple(parse_toc(listing.decode("utf-8", "replace"))))


def parse_toc(listing: str) -> list[TocEntry]:
    """The entries of ``pg_restore --list`` output, in archive order (comment lines skipped)."""
    entries = []
    for line in listing.splitlines():
        match = _TOC_LINE.match(line)
        if match:
            dump_id, catalog, oid = (int(group) for group in match.groups())
            entries.append(TocEntry(dump_id, catalog, oid, line[match.end() :]))
    return entries


def target_dbname(dsn: str) -> str:
    """``--dbname`` for pg_restore: only the database name, quoted as a conninfo string (the
    rest of the DSN, password included, travels in ``PG*`` variables, never in argv)."""
    params = parse_dsn(dsn)
    return conninfo.make_conninfo(dbname=params.get("dbname") or params.get("user") or "")


def restore_section(archive: SchemaArchive, target_dsn: str, section: str) -> None:
    run_tool(
        "pg_restore",
        [
            *RESTORE_OPTIONS,
            f"--section={section}",
            f"--dbname={target_dbname(target_dsn)}",
            str(archive.path),
        ],
        target_dsn,
        what=f"pg_restore --section={section} on the target",
    )


def restore_entries(
    archive: SchemaArchive,
    target_dsn: str,
    entries: Sequence[TocEntry],
    *,
    what: str,
    children: ChildProcesses | None = None,
) -> None:
    """Apply exactly ``entries``, in the order given (``pg_restore -L`` follows the list)."""
    if not entries:
        return
    handle, name = tempfile.mkstemp(suffix=".list", dir=archive.path.parent)
    listing = Path(name)
    with os.fdopen(handle, "w", encoding="ascii") as out:
        out.write("".join(f"{entry.dump_id}\n" for entry in entries))
    try:
        run_tool(
            "pg_restore",
            [
                *RESTORE_OPTIONS,
                f"--use-list={listing}",
                f"--dbname={target_dbname(target_dsn)}",
                str(archive.path),
            ],
            target_dsn,
            what=what,
            children=children,
        )
    finally:
        listing.unlink(missing_ok=True)
