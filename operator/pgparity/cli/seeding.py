"""``pgparity policy init|check`` and ``pgparity seed``: anonymized copies of production."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pgparity.cli.common import (
    EXIT_OK,
    EXIT_REJECTED,
    Parser,
    check_output_directory,
    check_output_file,
    int_in_range,
    load_yaml,
    progress_printer,
    write_atomically,
)
from pgparity.errors import SpecError, UsageError
from pgparity.inputs import KEY_FILE, read_bytes
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.policy import Policy
from pgparity.parity.data import ParityReport, compare, plan_checks, read_side, with_checks
from pgparity.parity.data import render_text as render_parity
from pgparity.pg.connection import connect, describe_dsn
from pgparity.redaction import sanitize
from pgparity.seed.archive import ArchiveOptions, restore, snapshot
from pgparity.seed.archives import ArchiveEntry, archive_name, list_archives, prune, resolve
from pgparity.seed.catalog import read_catalog
from pgparity.seed.pipeline import SeedOptions, SeedResult, load_key, needs_key, seed
from pgparity.seed.policy_check import check_policy, suggested_policy_text
from pgparity.seed.progress import SeedProgress
from pgparity.storage.location import Location, Scheme, names_collection, parse_location
from pgparity.storage.store import DEFAULT_PART_SIZE, MIB, MIN_PART_SIZE, Bucket, StoreOptions

KEY_ENVIRONMENT = "PGPARITY_MASKING_KEY"
MAX_JOBS = 64
MIN_PART_MIB = MIN_PART_SIZE // MIB
MAX_PART_MIB = 5 * 1024  # S3's largest part
MAX_KEEP = 10_000
jobs_argument = int_in_range(1, MAX_JOBS)


def register(commands: Any) -> None:
    policy = commands.add_parser("policy", help="write or check an anonymization policy")
    actions = policy.add_subparsers(dest="policy_command", required=True, parser_class=Parser)
    init = actions.add_parser("init", help="write a starting policy from the catalog")
    init.add_argument("--dsn", required=True, help="source database (read-only connection)")
    init.add_argument("--policy", required=True, type=Path, metavar="FILE")
    init.add_argument("--force", action="store_true", help="overwrite an existing FILE")
    init.set_defaults(handler=cmd_policy_init)
    check = actions.add_parser("check", help="check a policy against the source's catalog")
    check.add_argument("--dsn", required=True, help="source database (read-only connection)")
    check.add_argument("--policy", required=True, type=Path, metavar="FILE")
    check.set_defaults(handler=cmd_policy_check)

    parser = commands.add_parser(
        "seed",
        help="copy production into a clone, masked by a policy",
        description="Copy every table from the source into an empty target at full scale, "
        "masking every column as the policy says inside the source database.",
    )
    parser.add_argument(
        "--source-dsn", help="production, read-only (default: $PGPARITY_SOURCE_DSN)"
    )
    parser.add_argument(
        "--target-dsn", help="the clone's primary, empty (default: $PGPARITY_TARGET_DSN)"
    )
    parser.add_argument("--policy", required=True, type=Path, metavar="FILE")
    parser.add_argument(
        "--jobs",
        type=jobs_argument,
        default=2,
        metavar="N",
        help=f"parallel copy and index-build workers (default 2, at most {MAX_JOBS})",
    )
    parser.add_argument(
        "--key-file",
        type=Path,
        metavar="FILE",
        help=f"masking key (else the environment variable {KEY_ENVIRONMENT})",
    )
    parser.add_argument(
        "--replace", action="store_true", help="drop everything in the target first"
    )
    parser.add_argument(
        "--no-parity",
        dest="parity",
        action="store_false",
        help="skip the data parity report after seeding",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(handler=cmd_seed)

    register_archives(commands)


def register_archives(commands: Any) -> None:
    snap = commands.add_parser(
        "snapshot",
        help="write an anonymized archive of a seeded clone (s3://, gs://, az://, a directory)",
        description="Stream a seeded clone into an archive: URL/ names a collection (the "
        "archive is named by its UTC time inside it), anything else the archive itself.",
    )
    snap.add_argument("--dsn", required=True, help="a clone seeded by pgparity")
    snap.add_argument("--output", required=True, metavar="URL")
    snap.add_argument("--jobs", type=jobs_argument, default=2, metavar="N")
    snap.add_argument(
        "--part-size",
        type=int_in_range(MIN_PART_MIB, MAX_PART_MIB),
        default=DEFAULT_PART_SIZE // MIB,
        metavar="MIB",
        help=f"multipart upload part size in MiB (default {DEFAULT_PART_SIZE // MIB}; "
        "raised for tables too big for 10,000 parts)",
    )
    snap.add_argument(
        "--keep",
        type=int_in_range(1, MAX_KEEP),
        metavar="N",
        help="then remove all but the newest N complete archives beside it",
    )
    _store_arguments(snap)
    snap.set_defaults(handler=cmd_snapshot)
    back = commands.add_parser(
        "restore",
        help="restore an anonymized archive into a clone",
        description="URL may end in /latest: the newest complete archive beside it.",
    )
    back.add_argument("--archive", required=True, metavar="URL")
    back.add_argument("--target-dsn", help="the clone's primary (default: $PGPARITY_TARGET_DSN)")
    back.add_argument("--jobs", type=jobs_argument, default=2, metavar="N")
    back.add_argument("--replace", action="store_true", help="drop everything in the target first")
    _store_arguments(back)
    back.set_defaults(handler=cmd_restore)

    archives = commands.add_parser("archives", help="list or prune the archives of a collection")
    actions = archives.add_subparsers(dest="archives_command", required=True, parser_class=Parser)
    listing = actions.add_parser("list", help="the archives under URL, newest first")
    listing.add_argument("url", metavar="URL")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    _store_arguments(listing)
    listing.set_defaults(handler=cmd_archives_list)
    prune_parser = actions.add_parser(
        "prune", help="remove all but the newest N complete archives under URL"
    )
    prune_parser.add_argument("url", metavar="URL")
    prune_parser.add_argument("--keep", type=int_in_range(1, MAX_KEEP), required=True, metavar="N")
    _store_arguments(prune_parser)
    prune_parser.set_defaults(handler=cmd_archives_prune)


def _store_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an S3-compatible store's endpoint, addressed path-style (default: "
        "$AWS_ENDPOINT_URL, else AWS)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def read_policy(path: Path) -> Policy:
    document = load_yaml(path, "--policy")
    try:
        return Policy.parse(document)
    except SpecError as exc:
        raise UsageError(f"policy file {path}: {exc}") from exc


def read_key(path: Path | None) -> bytes | None:
    """The masking key: from ``--key-file``, else the environment; never printed."""
    if path is not None:
        return load_key(read_bytes(path, KEY_FILE), f"--key-file {path}")
    value = os.environ.get(KEY_ENVIRONMENT)
    return load_key(value.encode(), KEY_ENVIRONMENT) if value else None


def cmd_policy_init(args: argparse.Namespace) -> int:
    if args.policy.exists() and not args.force:
        raise UsageError(f"{args.policy} exists; use --force to overwrite it")
    check_output_file(args.policy, "--policy")
    with connect(args.dsn, role="source", read_only=True) as conn:
        catalog = read_catalog(conn)
    text = suggested_policy_text(catalog, describe_dsn(args.dsn))
    write_atomically(args.policy, text)
    columns = sum(len(t.copied_columns) for t in catalog.tables.values())
    reviews = text.count("# REVIEW")
    sys.stdout.write(
        f"wrote {args.policy}: {len(catalog.tables)} tables, {columns} columns; "
        f"{reviews} suggested transforms to review\n"
    )
    return EXIT_OK


def cmd_policy_check(args: argparse.Namespace) -> int:
    policy = read_policy(args.policy)
    with connect(args.dsn, role="source", read_only=True) as conn:
        catalog = read_catalog(conn)
    problems = check_policy(policy, catalog)
    for problem in problems:
        sys.stdout.write(f"{problem}\n")
    if problems:
        sys.stdout.write(
            f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {args.policy}\n"
        )
        return EXIT_REJECTED
    columns = sum(len(t.copied_columns) for t in catalog.tables.values())
    sys.stdout.write(
        f"{args.policy} classifies all {columns} columns of {len(catalog.tables)} tables\n"
    )
    return EXIT_OK


def dsn_argument(args: argparse.Namespace, name: str) -> str:
    """A ``--NAME-dsn`` flag, else ``$PGPARITY_NAME_DSN`` (how Jobs pass Secrets)."""
    value = getattr(args, f"{name}_dsn", None) or os.environ.get(f"PGPARITY_{name.upper()}_DSN")
    if not value:
        raise UsageError(f"--{name}-dsn is required (or $PGPARITY_{name.upper()}_DSN)")
    setattr(args, f"{name}_dsn", value)
    return str(value)


def cmd_seed(args: argparse.Namespace) -> int:
    dsn_argument(args, "source")
    dsn_argument(args, "target")
    policy = read_policy(args.policy)
    key = read_key(args.key_file)
    if needs_key(policy) and key is None:
        load_key(None, "")
    progress = SeedProgress(
        lambda text: _stderr(text, args.quiet), terminal=sys.stderr.isatty() and not args.quiet
    )
    result = seed(
        args.source_dsn,
        args.target_dsn,
        policy,
        SeedOptions(jobs=args.jobs, replace=args.replace, key=key),
        progress,
    )
    report = None
    if args.parity:
        progress.say("data parity: counting rows and comparing statistics")
        report = data_parity(args.source_dsn, args.target_dsn, policy)
    if args.format == "json":
        document = {**result.to_dict(), "parity": report.to_dict() if report else None}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(seed_summary(result))
        if report is not None:
            sys.stdout.write(render_parity(report))
    return EXIT_OK if report is None or report.ok else EXIT_REJECTED


def data_parity(
    production_dsn: str,
    staging_dsn: str,
    policy: Policy | None,
    queries: Sequence[ExplainQuery] = (),
) -> ParityReport:
    with (
        connect(production_dsn, role="production", read_only=True, user_sql=True) as production,
        connect(staging_dsn, role="staging", user_sql=True) as staging,
    ):
        report = compare(read_side(production), read_side(staging), policy=policy)
        return with_checks(report, plan_checks(production, staging, queries))


def _bucket(args: argparse.Namespace, location: Location) -> Bucket:
    part_size = getattr(args, "part_size", DEFAULT_PART_SIZE // MIB) * MIB
    return Bucket(location, StoreOptions(endpoint_url=args.endpoint_url, part_size=part_size))


def cmd_snapshot(args: argparse.Namespace) -> int:
    output = parse_location(args.output, "--output")
    archive = (
        output.child(archive_name(datetime.now(UTC))) if names_collection(args.output) else output
    )
    if archive.is_latest:
        raise UsageError(
            "--output: 'latest' names the newest archive on restore; not a name to write"
        )
    if archive.scheme is Scheme.FILE:
        check_output_directory(Path(str(archive)), "--output")
    bucket = _bucket(args, archive)
    progress = progress_printer(args.quiet)
    options = ArchiveOptions(jobs=args.jobs, part_size=args.part_size * MIB)
    manifest = snapshot(args.dsn, bucket, archive, options, progress)
    sys.stdout.write(
        f"wrote {archive}: {len(manifest.tables)} tables, "
        f"{sum(manifest.rows.values()):,} rows, {manifest.size:,} bytes, schema "
        f"{manifest.schema_digest}, policy {manifest.policy_sha256[:12]}\n"
    )
    if args.keep:
        for entry in prune(bucket, archive.parent, args.keep, progress, datetime.now(UTC)):
            sys.stdout.write(
                f"removed {entry.location} ({'complete' if entry.complete else 'incomplete'})\n"
            )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    dsn_argument(args, "target")
    location = parse_location(args.archive, "--archive")
    bucket = _bucket(args, location)
    archive = resolve(bucket, location)
    progress = progress_printer(args.quiet)
    if archive != location:
        progress(f"{location.name} is {archive}")
    result = restore(
        bucket,
        archive,
        args.target_dsn,
        options=ArchiveOptions(jobs=args.jobs),
        replace=args.replace,
        progress=progress,
    )
    for problem in result.problems:
        sys.stdout.write(f"{problem}\n")
    if result.problems:
        sys.stdout.write("restore does not match the manifest; the target is marked incomplete\n")
        return EXIT_REJECTED
    sys.stdout.write(
        f"restored {archive}: {len(result.rows)} tables, {sum(result.rows.values()):,} rows; "
        f"schema {result.schema_digest} matches the manifest\n"
    )
    return EXIT_OK


def cmd_archives_list(args: argparse.Namespace) -> int:
    collection = parse_location(args.url, "URL")
    entries = list_archives(_bucket(args, collection), collection)
    if args.format == "json":
        sys.stdout.write(json.dumps([_listed(e) for e in entries], indent=2) + "\n")
        return EXIT_OK
    sys.stdout.write(render_archives(entries))
    return EXIT_OK


def cmd_archives_prune(args: argparse.Namespace) -> int:
    collection = parse_location(args.url, "URL")
    removed = prune(
        _bucket(args, collection),
        collection,
        args.keep,
        progress_printer(args.quiet),
        datetime.now(UTC),
    )
    for entry in removed:
        sys.stdout.write(
            f"removed {entry.location} ({'complete' if entry.complete else 'incomplete'})\n"
        )
    sys.stdout.write(f"{len(removed)} archive{'s' if len(removed) != 1 else ''} removed\n")
    return EXIT_OK


def _listed(entry: ArchiveEntry) -> dict[str, Any]:
    manifest = entry.manifest
    return {
        "name": entry.location.name,
        "url": str(entry.location),
        "status": "complete" if entry.complete else "incomplete",
        "created": entry.created,
        "source_digest": manifest.source_digest if manifest else None,
        "schema_digest": manifest.schema_digest if manifest else None,
        "policy_sha256": manifest.policy_sha256 if manifest else None,
        "bytes": entry.bytes,
        "rows": sum(manifest.rows.values()) if manifest else None,
        "server_version": manifest.server_version if manifest else None,
        "problem": entry.problem or None,
    }


def render_archives(entries: Sequence[ArchiveEntry]) -> str:
    header = ("NAME", "STATUS", "CREATED", "ROWS", "SIZE", "SOURCE DIGEST", "POLICY")
    rows = [header]
    for entry in entries:
        manifest = entry.manifest
        rows.append(
            (
                entry.location.name,
                "complete" if entry.complete else "incomplete",
                entry.created,
                f"{sum(manifest.rows.values()):,}" if manifest else "-",
                _size(entry.bytes),
                manifest.source_digest[:19] if manifest else "-",
                manifest.policy_sha256[:12] if manifest else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if not entries:
        lines.append("(no archives)")
    return "\n".join(lines) + "\n"


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count:.1f} TiB"


def _stderr(text: str, quiet: bool) -> None:
    if not quiet:
        sys.stderr.write(sanitize(text))
        sys.stderr.flush()


def seed_summary(result: SeedResult) -> str:
    total = sum(result.phases.values())
    lines = [
        f"seeded {len(result.tables)} tables, {result.rows:,} rows "
        f"({result.bytes / 1024**2:.1f} MB) in {total:.1f} s — "
        + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in result.phases.items())
    ]
    slowest = sorted(result.builds, key=lambda b: -b.seconds)[:10]
    if slowest:
        lines.append("slowest index and constraint builds (a parity result):")
        lines += [f"  {b.seconds:8.2f} s  {b.kind} {b.name} on {b.table}" for b in slowest]
    lines.append(
        f"schema digest: source {result.source_digest}, target {result.target_digest}"
        + (" (equal)" if result.source_digest == result.target_digest else "")
    )
    lines.append(f"policy sha256: {result.policy_sha256}")
    return "\n".join(lines) + "\n"
