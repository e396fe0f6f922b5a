"""``pgparity digest`` and ``pgparity drift``: the schema digest, and drift from it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pgparity.cli.common import EXIT_DRIFT, EXIT_OK, check_output_file
from pgparity.engine.validate import check_digest_syntax
from pgparity.pg.connection import connect
from pgparity.schema.digest import CatalogSnapshot, diff_snapshots, take_snapshot


def register(commands: Any) -> None:
    digest = commands.add_parser("digest", help="print the schema digest of a database")
    digest.add_argument("--dsn", required=True, help="database to read (read-only connection)")
    digest.add_argument(
        "--save",
        type=Path,
        metavar="FILE",
        help="also save the catalog snapshot, a baseline for `drift`",
    )
    digest.set_defaults(handler=cmd_digest)
    drift = commands.add_parser("drift", help="compare a database's schema with an expectation")
    drift.add_argument("--dsn", required=True, help="database to read (read-only connection)")
    expect = drift.add_mutually_exclusive_group(required=True)
    expect.add_argument("--expect", metavar="sha256:HEX", help="expected schema digest")
    expect.add_argument(
        "--baseline",
        type=Path,
        metavar="FILE",
        help="snapshot saved by `digest --save`; lists what differs",
    )
    drift.set_defaults(handler=cmd_drift)


def cmd_digest(args: argparse.Namespace) -> int:
    if args.save:
        check_output_file(args.save, "--save")
    with connect(args.dsn, role="database", read_only=True) as conn:
        snapshot = take_snapshot(conn)
    if args.save:
        snapshot.save(args.save)
    sys.stdout.write(snapshot.digest + "\n")
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    expected_digest = check_digest_syntax(args.expect) if args.expect else None
    baseline = CatalogSnapshot.load(args.baseline) if args.baseline else None
    with connect(args.dsn, role="database", read_only=True) as conn:
        current = take_snapshot(conn)
    expected = baseline.digest if baseline else expected_digest
    if current.digest == expected:
        sys.stdout.write(f"no drift: {current.digest}\n")
        return EXIT_OK
    sys.stdout.write(f"drift: schema digest is {current.digest}, expected {expected}\n")
    if baseline:
        for change in diff_snapshots(baseline, current):
            sys.stdout.write(f"  {change.describe()}\n")
    return EXIT_DRIFT
