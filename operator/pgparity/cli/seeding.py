"""``pgparity policy init|check`` and ``pgparity seed``: anonymized copies of production."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
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
    write_atomically,
)
from pgparity.cli.validate import explain_file
from pgparity.errors import SpecError, UsageError
from pgparity.inputs import KEY_FILE, read_bytes
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.policy import Policy
from pgparity.parity.data import ParityReport, compare, plan_checks, read_side, with_checks
from pgparity.parity.data import render_text as render_parity
from pgparity.pg.connection import connect, describe_dsn
from pgparity.redaction import sanitize
from pgparity.seed.archive import restore, snapshot
from pgparity.seed.catalog import read_catalog
from pgparity.seed.pipeline import SeedOptions, SeedResult, load_key, needs_key, seed
from pgparity.seed.policy_check import check_policy, suggested_policy_text
from pgparity.seed.progress import SeedProgress

KEY_ENVIRONMENT = "PGPARITY_MASKING_KEY"
MAX_JOBS = 64
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

    parity = commands.add_parser(
        "parity", help="compare a clone's data with production's (rows, sizes, statistics)"
    )
    parity.add_argument("--production-dsn", required=True, help="read-only connection")
    parity.add_argument("--staging-dsn", required=True)
    parity.add_argument(
        "--policy",
        type=Path,
        metavar="FILE",
        help="the policy the clone was seeded with: masked columns are checked "
        "only on the statistics their transform keeps",
    )
    parity.add_argument(
        "--queries",
        type=Path,
        metavar="FILE",
        help="queries (the --explain file format) whose plans must have the same shape on the "
        "clone as on production",
    )
    parity.add_argument(
        "--all", action="store_true", help="print every check, not only those out of tolerance"
    )
    parity.add_argument("--format", choices=("text", "json"), default="text")
    parity.set_defaults(handler=cmd_parity)

    snap = commands.add_parser("snapshot", help="write an anonymized archive of a seeded clone")
    snap.add_argument("--dsn", required=True, help="a clone seeded by pgparity")
    snap.add_argument("--output", required=True, type=Path, metavar="DIR")
    snap.add_argument("--jobs", type=jobs_argument, default=2, metavar="N")
    snap.set_defaults(handler=cmd_snapshot)
    back = commands.add_parser("restore", help="restore an anonymized archive into a clone")
    back.add_argument("--archive", required=True, type=Path, metavar="DIR")
    back.add_argument("--target-dsn", help="the clone's primary (default: $PGPARITY_TARGET_DSN)")
    back.add_argument("--jobs", type=jobs_argument, default=2, metavar="N")
    back.add_argument("--replace", action="store_true", help="drop everything in the target first")
    back.set_defaults(handler=cmd_restore)


def read_policy(path: Path) -> Policy:
    document = load_yaml(path, "--policy")
    try:
        return Policy.parse(document)
    except SpecError as exc:
        raise UsageError(f"policy file {path}: {exc}") from None


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
        report = _parity(args.source_dsn, args.target_dsn, policy)
    if args.format == "json":
        document = {**result.to_dict(), "parity": report.to_dict() if report else None}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        sys.stdout.write(seed_summary(result))
        if report is not None:
            sys.stdout.write(render_parity(report))
    return EXIT_OK if report is None or report.ok else EXIT_REJECTED


def _parity(
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


def cmd_parity(args: argparse.Namespace) -> int:
    policy = read_policy(args.policy) if args.policy else None
    queries = explain_file(args.queries, "--queries").queries if args.queries else ()
    report = _parity(args.production_dsn, args.staging_dsn, policy, queries)
    if args.format == "json":
        sys.stdout.write(json.dumps(report.to_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(render_parity(report, all_checks=args.all))
    return EXIT_OK if report.ok else EXIT_REJECTED


def cmd_snapshot(args: argparse.Namespace) -> int:
    check_output_directory(args.output, "--output")
    manifest = snapshot(args.dsn, args.output, jobs=args.jobs)
    sys.stdout.write(
        f"wrote {args.output}: {len(manifest.rows)} tables, "
        f"{sum(manifest.rows.values()):,} rows, schema {manifest.schema_digest}, "
        f"policy {manifest.policy_sha256[:12]}\n"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    dsn_argument(args, "target")
    result = restore(args.archive, args.target_dsn, jobs=args.jobs, replace=args.replace)
    for problem in result.problems:
        sys.stdout.write(f"{problem}\n")
    if result.problems:
        sys.stdout.write("restore does not match the manifest; the target is marked incomplete\n")
        return EXIT_REJECTED
    sys.stdout.write(
        f"restored {len(result.rows)} tables, {sum(result.rows.values()):,} rows; "
        f"schema {result.schema_digest} matches the manifest\n"
    )
    return EXIT_OK


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
