"""The formats a lint run is written in: text, JSON, SARIF 2.1.0, GitHub workflow commands."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from pgparity import __version__
from pgparity.lint.catalog import CATALOG, RuleInfo
from pgparity.lint.findings import AckScope, LintFinding, LintRun
from pgparity.models.report import Severity

LINT_REPORT_VERSION = 1
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"


def render(run: LintRun, output: Format) -> str:
    writers: dict[Format, Callable[[LintRun], str]] = {
        Format.TEXT: render_text,
        Format.JSON: render_json,
        Format.SARIF: render_sarif,
        Format.GITHUB: render_github,
    }
    return writers[output](run)


def summary(run: LintRun) -> str:
    return (
        f"{len(run.files)} files, {run.statements} statements: "
        f"{run.count(Severity.ERROR)} errors, {run.count(Severity.WARNING)} warnings, "
        f"{run.acknowledged} acknowledged ({run.seconds:.2f} s)"
    )


def render_text(run: LintRun) -> str:
    lines = [
        f"{f.path}:{f.line}:{f.column}: {f.severity.value} {f.rule.value}: {f.message}"
        for f in run.active
    ]
    lines.append(summary(run))
    return "\n".join(lines) + "\n"


def render_json(run: LintRun) -> str:
    document = {
        "version": LINT_REPORT_VERSION,
        "tool": {"name": "pgparity", "version": __version__},
        "files": [{"path": r.path, "statements": r.statements} for r in run.files],
        "findings": [f.to_dict() for f in run.findings],
        "summary": {
            "files": len(run.files),
            "statements": run.statements,
            "errors": run.count(Severity.ERROR),
            "warnings": run.count(Severity.WARNING),
            "acknowledged": run.acknowledged,
            "seconds": round(run.seconds, 4),
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- SARIF 2.1.0 (OASIS): one run, every rule described, acknowledgements as suppressions ----

_LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def render_sarif(run: LintRun) -> str:
    rules = list(CATALOG.values())
    index = {entry.rule: i for i, entry in enumerate(rules)}
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pgparity",
                        "version": __version__,
                        "rules": [_sarif_rule(entry) for entry in rules],
                    }
                },
                # Columns count characters (code points), as PostgreSQL's parser does.
                "columnKind": "unicodeCodePoints",
                "results": [_sarif_result(f, index[f.rule]) for f in run.findings],
            }
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _sarif_rule(entry: RuleInfo) -> dict[str, Any]:
    return {
        "id": entry.rule.value,
        "name": "".join(word.capitalize() for word in entry.rule.value.split("-")),
        "shortDescription": {"text": entry.title},
        "fullDescription": {"text": f"{entry.title} ({entry.category.value})"},
        "help": {"text": f"The unsafe form, why, and the safe pattern: {entry.docs}"},
        "defaultConfiguration": {"level": _LEVELS[entry.severity], "enabled": entry.enabled},
        "properties": {
            "category": entry.category.value,
            "squawk": list(entry.squawk),
            "eugene": list(entry.eugene),
        },
    }


def _sarif_result(finding: LintFinding, rule_index: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule.value,
        "ruleIndex": rule_index,
        "level": _LEVELS[finding.severity],
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(finding.path)},
                    "region": {
                        "startLine": finding.span.line,
                        "startColumn": finding.span.column,
                        "endLine": finding.span.end_line,
                        "endColumn": finding.span.end_column,
                    },
                }
            }
        ],
        "properties": {
            "statement": finding.statement,
            "relation": finding.relation,
            "lock": finding.lock.value if finding.lock else None,
        },
    }
    if finding.acknowledged is not None:
        kind = "external" if finding.acknowledged.scope is AckScope.CONFIG else "inSource"
        result["suppressions"] = [{"kind": kind, "justification": finding.acknowledged.reason}]
    return result


def artifact_uri(path: str) -> str:
    """A relative path stays relative (SARIF resolves it against the repository); an absolute
    one becomes a file: URI."""
    pure = PurePath(path)
    if pure.is_absolute():
        return "file://" + quote(pure.as_posix())
    return quote(pure.as_posix())


# --- GitHub Actions workflow commands --------------------------------------------------------


def render_github(run: LintRun) -> str:
    lines = [_annotation(f) for f in run.active]
    lines.append(summary(run))
    return "\n".join(lines) + "\n"


def _annotation(finding: LintFinding) -> str:
    properties = ",".join(
        f"{key}={_escape_property(str(value))}"
        for key, value in (
            ("file", finding.path),
            ("line", finding.span.line),
            ("col", finding.span.column),
            ("endLine", finding.span.end_line),
            ("endColumn", finding.span.end_column),
            ("title", f"pgparity {finding.rule.value}"),
        )
    )
    return f"::{finding.severity.value} {properties}::{_escape_data(finding.message)}"


def _escape_data(text: str) -> str:
    # The runner's escaping (actions/toolkit, command.ts): % first, then line breaks.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
