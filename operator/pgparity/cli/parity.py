"""``pgparity parity``: the parity floor and data parity of a clone against production.

Production is only read, in a read-only session. ``--emit`` prints what brings a clone to
parity; ``--apply`` runs it on the clone, only on a database marked as a pgparity clone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from pgparity.cli.common import EXIT_OK, EXIT_REJECTED
from pgparity.cli.seeding import data_parity, read_policy
from pgparity.cli.validate import explain_file
from pgparity.engine.sql.statements import created_extensions
from pgparity.errors import UsageError
from pgparity.inputs import MIGRATION, read_text
from pgparity.parity.data import ParityReport
from pgparity.parity.data import render_text as render_data
from pgparity.parity.facts import Facts, read_facts
from pgparity.parity.floor import FloorReport, MigrationExtension, compare_floor, render_floor
from pgparity.parity.remedy import apply_statements, clone_parameters, parity_statements
from pgparity.parity.settings import SettingsList, load_settings_list
from pgparity.pg.connection import connect

MAX_ROLE_NAME = 63  # NAMEDATALEN - 1


def register(commands: Any) -> None:
    parity = commands.add_parser(
        "parity",
        help="check that a clone predicts production: the parity floor and data parity",
        description="Compare a clone with production: server (version, encoding, locale, "
        "collation versions), configuration at server, database and role level, extensions, "
        "topology, schema digest, and data (rows, sizes, statistics, plans).",
    )
    parity.add_argument(
        "--production-dsn",
        help="read-only connection (default: $PGPARITY_PRODUCTION_DSN)",
    )
    parity.add_argument("--staging-dsn", help="the clone (default: $PGPARITY_STAGING_DSN)")
    parity.add_argument("--role", type=_role_name, help="the role migrations run as")
    parity.add_argument(
        "--settings", type=Path, metavar="FILE", help="YAML: change the compared settings"
    )
    parity.add_argument(
        "--migration",
        type=Path,
        metavar="FILE",
        help="extensions it creates must be available on the clone at production's version",
    )
    parity.add_argument(
        "--floor-only", action="store_true", help="skip data parity (no row counts, no pg_stats)"
    )
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
        "--emit",
        choices=("parameters", "sql"),
        help="print the StagingClone spec.postgres.parameters, or the ALTER … SET statements "
        "that bring the clone to parity",
    )
    parity.add_argument(
        "--apply",
        action="store_true",
        help="with --emit sql: run the statements on the clone (a marked pgparity clone only)",
    )
    parity.add_argument(
        "--report-configmap",
        metavar="NAME",
        help="also write the JSON document into this ConfigMap (namespace: --report-namespace "
        "or $POD_NAMESPACE); the exit code is then 0 whenever it was delivered",
    )
    parity.add_argument("--report-namespace", metavar="NS")
    parity.add_argument("--all", action="store_true", help="print passing checks too")
    parity.add_argument("--format", choices=("text", "json"), default="text")
    parity.set_defaults(handler=cmd_parity)


def _role_name(text: str) -> str:
    if not text or len(text.encode()) > MAX_ROLE_NAME or not text.isprintable():
        raise argparse.ArgumentTypeError("a role name is 1 to 63 printable bytes")
    return text


def cmd_parity(args: argparse.Namespace) -> int:
    _dsns_from_environment(args)
    if args.apply and args.emit != "sql":
        raise UsageError("--apply goes with --emit sql")
    if args.report_configmap and args.emit == "sql":
        raise UsageError("--report-configmap delivers the checks or the parameters, not SQL")
    settings = load_settings_list(args.settings)
    if args.emit == "parameters":
        return _emit_parameters(args, settings)
    creates = _migration_extensions(args.migration) if args.migration else ()
    policy = read_policy(args.policy) if args.policy else None
    queries = explain_file(args.queries, "--queries").queries if args.queries else ()
    production, staging = read_both(args, [c.name for c in creates])
    if args.emit:
        return _emit_sql(args, production, staging, settings)
    floor = compare_floor(production, staging, settings, creates)
    data = (
        None
        if args.floor_only
        else data_parity(args.production_dsn, args.staging_dsn, policy, queries)
    )
    _print(floor, data, args)
    if args.report_configmap:
        return _deliver(json.dumps(_document(floor, data)), args)
    return EXIT_OK if floor.ok and (data is None or data.ok) else EXIT_REJECTED


def _dsns_from_environment(args: argparse.Namespace) -> None:
    """The DSNs from the environment (how Jobs pass Secrets), never required on argv."""
    args.production_dsn = args.production_dsn or os.environ.get("PGPARITY_PRODUCTION_DSN")
    args.staging_dsn = args.staging_dsn or os.environ.get("PGPARITY_STAGING_DSN")
    needed = [("--production-dsn", args.production_dsn)]
    if args.emit != "parameters":  # production's values alone
        needed.append(("--staging-dsn", args.staging_dsn))
    for flag, value in needed:
        if not value:
            variable = "PGPARITY_" + flag[2:].replace("-", "_").upper()
            raise UsageError(f"the argument {flag} is required (or ${variable})")


def _deliver(document: str, args: argparse.Namespace) -> int:
    """Hand the checks to the operator through its ConfigMap (a parity Job's way out)."""
    from pgparity.kube.reports import write_report

    namespace = args.report_namespace or os.environ.get("POD_NAMESPACE")
    if not namespace:
        raise UsageError("--report-configmap needs --report-namespace or $POD_NAMESPACE")
    write_report(namespace, args.report_configmap, document)
    sys.stderr.write(f"pgparity: parity written to ConfigMap {namespace}/{args.report_configmap}\n")
    return EXIT_OK


def read_both(args: argparse.Namespace, extensions: list[str]) -> tuple[Facts, Facts]:
    with (
        connect(args.production_dsn, role="production", read_only=True) as production,
        connect(args.staging_dsn, role="staging", read_only=True) as staging,
    ):
        return (
            read_facts(production, role=args.role, extensions=extensions),
            read_facts(staging, role=args.role, extensions=extensions),
        )


def _migration_extensions(path: Path) -> tuple[MigrationExtension, ...]:
    text = read_text(path, MIGRATION)
    return tuple(MigrationExtension(n, v) for n, v in created_extensions(text))


def _emit_parameters(args: argparse.Namespace, settings: SettingsList) -> int:
    """Production's effective values as a StagingClone's ``spec.postgres.parameters``."""
    with connect(args.production_dsn, role="production", read_only=True) as production:
        facts = read_facts(production, role=args.role)
    block = {"parameters": clone_parameters(facts, settings)}
    header = "# StagingClone spec.postgres.parameters: production's effective values"
    sys.stdout.write(header + "\n" + yaml.safe_dump(block, sort_keys=True, allow_unicode=False))
    if args.report_configmap:
        return _deliver(json.dumps(block), args)
    return EXIT_OK


def _emit_sql(
    args: argparse.Namespace, production: Facts, staging: Facts, settings: SettingsList
) -> int:
    plan = parity_statements(production, staging, settings)
    sys.stdout.write(plan.text())
    if not args.apply:
        return EXIT_OK
    with connect(args.staging_dsn, role="staging") as conn:
        apply_statements(conn, plan.statements)
    sys.stderr.write(f"pgparity: applied {len(plan.statements)} statements to the clone\n")
    after = compare_floor(*read_both(args, []), settings)
    sys.stdout.write(render_floor(after))
    return EXIT_OK if after.ok else EXIT_REJECTED


def _print(floor: FloorReport, data: ParityReport | None, args: argparse.Namespace) -> None:
    if args.format == "json":
        sys.stdout.write(json.dumps(_document(floor, data), indent=2) + "\n")
        return
    sys.stdout.write(render_floor(floor, all_checks=args.all))
    if data is not None:
        sys.stdout.write(render_data(data, all_checks=args.all))


def _document(floor: FloorReport, data: ParityReport | None) -> dict[str, Any]:
    """The JSON document: ``floor``, and data parity's keys as before (``problems``,
    ``checks``) with ``data`` holding its whole report."""
    document: dict[str, Any] = {
        "ok": floor.ok and (data is None or data.ok),
        "floor": floor.to_dict(),
    }
    if data is not None:
        document.update(
            problems=len(data.problems), checks=data.to_dict()["checks"], data=data.to_dict()
        )
    return document
