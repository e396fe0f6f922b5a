"""``pgparity lint``: the static rules, on files and directories, with no database."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pgparity.cli.common import EXIT_OK, EXIT_REJECTED, check_output_file, write_atomically
from pgparity.errors import UsageError
from pgparity.lint import CATALOG, LintConfig, find_config, lint_paths, load_config
from pgparity.lint.formats import Format, render


def register(commands: Any) -> None:
    lint = commands.add_parser(
        "lint",
        help="check migrations with static rules (no database); exit 1 on errors",
        description="Static rules over migration files (PostgreSQL's parser, no database). "
        "Acknowledge a finding with '-- pgparity: allow RULE because REASON' before the "
        "statement, or '-- pgparity: allow-file RULE because REASON'. Rules: docs/rules/.",
    )
    lint.add_argument(
        "paths", nargs="*", type=Path, metavar="FILE|DIR", help="files, or directories of *.sql"
    )
    lint.add_argument(
        "--format", choices=[f.value for f in Format], default=Format.TEXT.value, dest="fmt"
    )
    lint.add_argument("--output", type=Path, metavar="FILE", help="write the report here")
    lint.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="pgparity.toml or pyproject.toml (default: the nearest one from here up)",
    )
    lint.add_argument(
        "--assume-in-transaction",
        action="store_true",
        help="the migration tool runs each file in a transaction (as diesel, flyway, alembic do)",
    )
    lint.add_argument("--list-rules", action="store_true", help="print the rule catalogue and exit")
    lint.set_defaults(handler=cmd_lint)


def cmd_lint(args: argparse.Namespace) -> int:
    if args.list_rules:
        sys.stdout.write(_rule_list(Format(args.fmt)))
        return EXIT_OK
    if not args.paths:
        raise UsageError("lint needs at least one FILE or DIR (or --list-rules)")
    if args.output:
        check_output_file(args.output, "--output")
    config = _config(args)
    run = lint_paths(args.paths, config)
    text = render(run, Format(args.fmt))
    if args.output:
        write_atomically(args.output, text)
    else:
        sys.stdout.write(text)
    return EXIT_REJECTED if run.failed else EXIT_OK


def _config(args: argparse.Namespace) -> LintConfig:
    path = args.config if args.config else find_config(Path.cwd())
    config = load_config(path)
    if args.assume_in_transaction and not config.assume_in_transaction:
        config = replace(config, assume_in_transaction=True)
    return config


def _rule_list(output: Format) -> str:
    if output is Format.JSON:
        entries = [
            {
                "id": e.rule.value,
                "category": e.category.value,
                "severity": e.severity.value,
                "enabled": e.enabled,
                "title": e.title,
                "squawk": list(e.squawk),
                "eugene": list(e.eugene),
                "lock": e.lock.value if e.lock else None,
                "docs": e.docs,
            }
            for e in CATALOG.values()
        ]
        return json.dumps(entries, indent=2) + "\n"
    lines = []
    for e in CATALOG.values():
        others = ", ".join([*e.squawk, *e.eugene]) or "—"
        off = " (off by default)" if not e.enabled else ""
        lines.append(f"{e.rule.value:36} {e.severity.value:7} {others}{off}\n    {e.title}")
    return "\n".join(lines) + "\n"
