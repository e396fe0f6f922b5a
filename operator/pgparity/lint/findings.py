"""What the linter reports: typed findings, per file and per run, until a format writes them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pgparity.lint.catalog import Rule, info
from pgparity.lint.locks import LockMode
from pgparity.models.report import Severity


@dataclass(frozen=True)
class Hit:
    """A rule firing on a statement; ``offset`` points inside it (None: its first token)."""

    rule: Rule
    message: str
    offset: int | None = None
    relation: str | None = None
    lock: LockMode | None = None


class AckScope(StrEnum):
    STATEMENT = "statement"
    FILE = "file"
    CONFIG = "config"


@dataclass(frozen=True)
class Acknowledgement:
    """Why a finding is accepted: the reason someone wrote, and where they wrote it."""

    scope: AckScope
    reason: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope.value, "reason": self.reason, "line": self.line}


@dataclass(frozen=True)
class Span:
    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class LintFinding:
    rule: Rule
    severity: Severity
    message: str
    path: str
    span: Span
    statement: int | None = None  # 1-based among the file's statements
    statement_start: tuple[int, int] | None = None  # (line, column) of its first token
    relation: str | None = None
    lock: LockMode | None = None
    acknowledged: Acknowledgement | None = None

    @property
    def active(self) -> bool:
        return self.acknowledged is None

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def to_dict(self) -> dict[str, Any]:
        entry = info(self.rule)
        return {
            "rule": self.rule.value,
            "severity": self.severity.value,
            "path": self.path,
            "statement": self.statement,
            "line": self.span.line,
            "column": self.span.column,
            "end_line": self.span.end_line,
            "end_column": self.span.end_column,
            "message": self.message,
            "relation": self.relation,
            "lock": self.lock.value if self.lock else None,
            "squawk": list(entry.squawk),
            "eugene": list(entry.eugene),
            "docs": entry.docs,
            "acknowledged": self.acknowledged.to_dict() if self.acknowledged else None,
        }


@dataclass(frozen=True)
class FileReport:
    path: str
    statements: int
    findings: tuple[LintFinding, ...]


@dataclass(frozen=True)
class LintRun:
    files: tuple[FileReport, ...]
    seconds: float = 0.0

    @property
    def findings(self) -> tuple[LintFinding, ...]:
        return tuple(f for report in self.files for f in report.findings)

    @property
    def active(self) -> tuple[LintFinding, ...]:
        return tuple(f for f in self.findings if f.active)

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.active if f.severity is severity)

    @property
    def acknowledged(self) -> int:
        return sum(1 for f in self.findings if not f.active)

    @property
    def statements(self) -> int:
        return sum(report.statements for report in self.files)

    @property
    def failed(self) -> bool:
        """Exit 1: an error-severity finding nobody acknowledged."""
        return self.count(Severity.ERROR) > 0
