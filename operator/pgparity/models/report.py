"""The validation report: the versioned contract between the engine, the CLI and the operator.

``ValidationReport.to_dict()`` produces the JSON documented in DESIGN.md (version 1);
``ValidationReport.parse()`` reads it back (the operator reads reports written by Jobs), naming
the bad field path when a document does not match. Fields may be added; none may be renamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from pgparity.errors import SpecError
from pgparity.models.reader import Reader

REPORT_VERSION = 1


class Verdict(StrEnum):
    VALIDATED = "VALIDATED"
    REJECTED = "REJECTED"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Phase(StrEnum):
    """Where a statement ran: inside the rolled-back transaction, or on its own."""

    TRANSACTION = "transaction"
    OUTSIDE_TRANSACTION = "outside-transaction"


@dataclass(frozen=True)
class LockRecord:
    """A lock a statement newly acquired, by pg_locks' mode name."""

    relation: str
    mode: str
    locktype: str = "relation"
    held_ms: float | None = None
    relkind: str | None = None  # pg_class.relkind: r table, p partitioned, i index, …

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "mode": self.mode,
            "locktype": self.locktype,
            "relkind": self.relkind,
            "held_ms": _round(self.held_ms),
        }


@dataclass(frozen=True)
class StatementError:
    sqlstate: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"sqlstate": self.sqlstate, "message": self.message}


@dataclass(frozen=True)
class BlockingEdge:
    """Sessions of one kind (``waiter``) waited for a lock held or queued by ``blocker``."""

    waiter: str
    blocker: str
    relation: str | None
    mode: str | None
    sessions: int
    max_wait_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "waiter": self.waiter,
            "blocker": self.blocker,
            "relation": self.relation,
            "mode": self.mode,
            "sessions": self.sessions,
            "max_wait_seconds": round(self.max_wait_seconds, 3),
        }


@dataclass(frozen=True)
class StatementObservation:
    """What other sessions and the replica went through while one statement ran.

    None is "could not be observed" (the report's ``observation_gaps`` say why), never 0.
    """

    max_blocked_sessions: int | None = 0
    max_lock_wait_seconds: float | None = 0.0
    own_lock_wait_seconds: float | None = 0.0
    max_replication_lag_bytes: int | None = 0
    max_replication_lag_seconds: float | None = 0.0
    blocking: tuple[BlockingEdge, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_blocked_sessions": self.max_blocked_sessions,
            "max_lock_wait_seconds": _round(self.max_lock_wait_seconds),
            "own_lock_wait_seconds": _round(self.own_lock_wait_seconds),
            "max_replication_lag_bytes": self.max_replication_lag_bytes,
            "max_replication_lag_seconds": _round(self.max_replication_lag_seconds),
            "blocking": [edge.to_dict() for edge in self.blocking],
        }


@dataclass(frozen=True)
class StatementResult:
    index: int
    line: int
    sql: str
    transactional: bool
    executed: bool
    duration_ms: float | None = None
    wal_bytes: int | None = None
    locks: tuple[LockRecord, ...] = ()
    rewrites: tuple[str, ...] = ()
    error: StatementError | None = None
    phase: Phase = Phase.TRANSACTION
    not_executed_reason: str | None = None
    settings_in_effect: Mapping[str, str] = field(default_factory=dict)
    compensation: tuple[str, ...] = ()
    observed: StatementObservation | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "sql": self.sql,
            "transactional": self.transactional,
            "executed": self.executed,
            "duration_ms": _round(self.duration_ms),
            "wal_bytes": self.wal_bytes,
            "locks": [lock.to_dict() for lock in self.locks],
            "rewrites": list(self.rewrites),
            "error": self.error.to_dict() if self.error else None,
            "phase": self.phase.value,
            "not_executed_reason": self.not_executed_reason,
            "settings_in_effect": dict(self.settings_in_effect),
            "compensation": list(self.compensation),
            "observed": self.observed.to_dict() if self.observed else None,
        }


class Judgement(StrEnum):
    """What the trace on the clone made of a static (lint) finding."""

    CONFIRMED = "confirmed"  # the trace saw the cost the rule warns of
    DISMISSED = "dismissed"  # the trace saw it cost nothing: a new table, no rows, no wait
    NOT_OBSERVED = "not-observed"  # the statement did not run, so there is nothing to judge
    NOT_JUDGED = "not-judged"  # a rule about types or style: nothing to measure


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    statement: int | None = None
    line: int | None = None
    judgement: Judgement | None = None  # set on findings that come from a lint rule

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "rule": self.rule,
            "severity": self.severity.value,
            "statement": self.statement,
            "line": self.line,
            "message": self.message,
        }
        if self.judgement is not None:  # only findings that come from a lint rule have one
            entry["judgement"] = self.judgement.value
        return entry


@dataclass(frozen=True)
class TraceEvidence:
    """What the trace saw of the relation a static finding is about."""

    relation: str | None
    mode: str | None = None  # the strongest lock the statement took on it (pg_locks' name)
    rows: int | None = None  # pg_class.reltuples before the migration (None: unknown)
    held_ms: float | None = None  # until the transaction ended
    statement_ms: float | None = None  # of that, the statement's own work under the lock
    blocked_sessions: int | None = None
    rewritten: bool = False
    created: bool = False  # created by the migration itself

    def to_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "mode": self.mode,
            "rows": self.rows,
            "held_ms": _round(self.held_ms),
            "statement_ms": _round(self.statement_ms),
            "blocked_sessions": self.blocked_sessions,
            "rewritten": self.rewritten,
            "created": self.created,
        }


@dataclass(frozen=True)
class StaticFinding:
    """A lint finding on the migration, with what the trace saw and its judgement."""

    rule: str
    severity: Severity  # the lint rule's
    message: str
    judgement: Judgement
    reason: str  # "SHARE on public.orders (12.4 M rows) held 41 s; 3 sessions blocked"
    statement: int | None = None
    line: int | None = None
    relation: str | None = None
    lock: str | None = None  # the lock the rule expects, by pg_locks' name
    evidence: TraceEvidence | None = None
    acknowledged: str | None = None  # the reason of an acknowledgement, if any

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity.value,
            "statement": self.statement,
            "line": self.line,
            "message": self.message,
            "relation": self.relation,
            "lock": self.lock,
            "judgement": self.judgement.value,
            "reason": self.reason,
            "evidence": self.evidence.to_dict() if self.evidence else None,
            "acknowledged": self.acknowledged,
        }


class SideEffectKind(StrEnum):
    """State outside transactions that a validation changed (ROLLBACK does not undo it)."""

    SEQUENCE = "sequence"
    STATISTICS = "statistics"
    ADVISORY_LOCK = "advisory-lock"
    REPLICATION_SLOT = "replication-slot"


@dataclass(frozen=True)
class SideEffect:
    """Something the run changed that ROLLBACK did not undo; ``restored`` when pgparity put it
    back (a sequence on a clone, an advisory lock released)."""

    kind: SideEffectKind
    object: str
    before: str | None
    after: str | None
    restored: bool = False
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "object": self.object,
            "before": self.before,
            "after": self.after,
            "restored": self.restored,
            "note": self.note,
        }


@dataclass(frozen=True)
class MigrationInfo:
    path: str
    sha256: str


@dataclass(frozen=True)
class TargetInfo:
    server_version: str | None = None
    digest_before: str | None = None
    digest_after: str | None = None
    digest_after_compensation: str | None = None
    is_clone: bool = False
    replica: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_version": self.server_version,
            "digest_before": self.digest_before,
            "digest_after": self.digest_after,
            "digest_after_compensation": self.digest_after_compensation,
            "is_clone": self.is_clone,
            "replica": self.replica,
        }


@dataclass(frozen=True)
class ValidationReport:
    verdict: Verdict
    migration: MigrationInfo
    target: TargetInfo
    settings: Mapping[str, str]
    statements: tuple[StatementResult, ...]
    findings: tuple[Finding, ...]
    observations: Mapping[str, Any] = field(default_factory=dict)
    strict: bool = False
    side_effects: tuple[SideEffect, ...] = ()
    lint: tuple[StaticFinding, ...] = ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "verdict": self.verdict.value,
            "strict": self.strict,
            "migration": {"path": self.migration.path, "sha256": self.migration.sha256},
            "target": self.target.to_dict(),
            "settings": dict(self.settings),
            "statements": [s.to_dict() for s in self.statements],
            "observations": dict(self.observations),
            "findings": [f.to_dict() for f in self.findings],
            "side_effects": [e.to_dict() for e in self.side_effects],
            "lint": [s.to_dict() for s in self.lint],
        }

    @classmethod
    def parse(cls, doc: Mapping[str, Any]) -> ValidationReport:
        """Read a report document back, naming the first field that does not fit."""
        reader = Reader(doc, "")
        if reader.integer("version") != REPORT_VERSION:
            raise SpecError("version", f"unsupported report version (expected {REPORT_VERSION})")
        migration = reader.child("migration")
        target = reader.child("target")
        return cls(
            verdict=reader.enum("verdict", Verdict),
            strict=bool(doc.get("strict", False)),
            migration=MigrationInfo(
                path=migration.string("path"), sha256=migration.string("sha256")
            ),
            target=TargetInfo(
                server_version=target.opt_string("server_version"),
                digest_before=target.opt_string("digest_before"),
                digest_after=target.opt_string("digest_after"),
                digest_after_compensation=target.opt_string("digest_after_compensation"),
                is_clone=bool(target.get("is_clone", False)),
                replica=bool(target.get("replica", False)),
            ),
            settings={str(k): str(v) for k, v in reader.mapping("settings").items()},
            statements=tuple(_parse_statement(r) for r in reader.children("statements")),
            findings=tuple(_parse_finding(r) for r in reader.children("findings")),
            observations=dict(reader.mapping("observations")),
            side_effects=tuple(
                _parse_side_effect(r)
                for r in (reader.children("side_effects") if "side_effects" in doc else ())
            ),
            lint=tuple(
                _parse_static(r) for r in (reader.children("lint") if "lint" in doc else ())
            ),
        )


_JUDGEMENT_ORDER = {
    Judgement.CONFIRMED: 0,
    Judgement.NOT_OBSERVED: 1,
    Judgement.DISMISSED: 2,
    Judgement.NOT_JUDGED: 3,
}


def by_judgement(static: Sequence[StaticFinding]) -> list[StaticFinding]:
    """Confirmed first, then not observed, dismissed, not judged; by line within each."""
    return sorted(static, key=lambda s: (_JUDGEMENT_ORDER[s.judgement], s.line or 0))


def lint_summary(report: ValidationReport) -> str:
    """``2 confirmed, 5 dismissed, 1 not observed, 3 not judged`` (the lint findings)."""
    counts = {j: sum(1 for s in report.lint if s.judgement is j) for j in Judgement}
    return ", ".join(f"{n} {j.value.replace('-', ' ')}" for j, n in counts.items() if n) or "none"


def confirmed_first(findings: Sequence[Finding]) -> list[Finding]:
    """Findings the trace confirmed first, then the other errors, then warnings."""
    return sorted(
        findings,
        key=lambda f: (f.judgement is not Judgement.CONFIRMED, f.severity is not Severity.ERROR),
    )


def decide_verdict(findings: Sequence[Finding]) -> Verdict:
    """REJECTED exactly when some finding is an error."""
    if any(f.severity is Severity.ERROR for f in findings):
        return Verdict.REJECTED
    return Verdict.VALIDATED


def apply_strictness(findings: Sequence[Finding], strict: bool) -> tuple[Finding, ...]:
    """With ``--strict`` every warning counts as an error."""
    if not strict:
        return tuple(findings)
    return tuple(replace(f, severity=Severity.ERROR) for f in findings)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _parse_statement(reader: Reader) -> StatementResult:
    error = reader.get("error")
    return StatementResult(
        index=reader.integer("index"),
        line=reader.integer("line"),
        sql=reader.string("sql"),
        transactional=bool(reader.get("transactional")),
        executed=bool(reader.get("executed")),
        duration_ms=reader.opt_float("duration_ms"),
        wal_bytes=reader.opt_integer("wal_bytes"),
        locks=tuple(
            LockRecord(
                relation=r.string("relation"),
                mode=r.string("mode"),
                locktype=str(r.get("locktype", "relation")),
                held_ms=r.opt_float("held_ms"),
                relkind=r.opt_string("relkind"),
            )
            for r in reader.children("locks")
        ),
        rewrites=tuple(str(x) for x in reader.array("rewrites")),
        error=None
        if error is None
        else StatementError(
            sqlstate=reader.child("error").opt_string("sqlstate"),
            message=reader.child("error").string("message"),
        ),
        phase=Phase(str(reader.get("phase", Phase.TRANSACTION.value))),
        not_executed_reason=reader.opt_string("not_executed_reason"),
        settings_in_effect={
            str(k): str(v) for k, v in (reader.get("settings_in_effect") or {}).items()
        },
        compensation=tuple(str(x) for x in reader.array("compensation")),
        observed=_parse_observation(reader.child("observed"))
        if reader.get("observed") is not None
        else None,
    )


def _parse_observation(reader: Reader) -> StatementObservation:
    return StatementObservation(
        max_blocked_sessions=reader.opt_integer("max_blocked_sessions"),
        max_lock_wait_seconds=reader.opt_float("max_lock_wait_seconds"),
        own_lock_wait_seconds=reader.opt_float("own_lock_wait_seconds"),
        max_replication_lag_bytes=reader.opt_integer("max_replication_lag_bytes"),
        max_replication_lag_seconds=reader.opt_float("max_replication_lag_seconds"),
        blocking=tuple(
            BlockingEdge(
                waiter=edge.string("waiter"),
                blocker=edge.string("blocker"),
                relation=edge.opt_string("relation"),
                mode=edge.opt_string("mode"),
                sessions=edge.integer("sessions"),
                max_wait_seconds=edge.opt_float("max_wait_seconds") or 0.0,
            )
            for edge in reader.children("blocking")
        ),
    )


def _parse_side_effect(reader: Reader) -> SideEffect:
    return SideEffect(
        kind=reader.enum("kind", SideEffectKind),
        object=reader.string("object"),
        before=reader.opt_string("before"),
        after=reader.opt_string("after"),
        restored=bool(reader.get("restored", False)),
        note=reader.opt_string("note"),
    )


def _parse_finding(reader: Reader) -> Finding:
    return Finding(
        rule=reader.string("rule"),
        severity=reader.enum("severity", Severity),
        message=reader.string("message"),
        statement=reader.opt_integer("statement"),
        line=reader.opt_integer("line"),
        judgement=reader.enum("judgement", Judgement) if reader.get("judgement") else None,
    )


def _parse_static(reader: Reader) -> StaticFinding:
    evidence = reader.get("evidence")
    return StaticFinding(
        rule=reader.string("rule"),
        severity=reader.enum("severity", Severity),
        message=reader.string("message"),
        judgement=reader.enum("judgement", Judgement),
        reason=reader.string("reason"),
        statement=reader.opt_integer("statement"),
        line=reader.opt_integer("line"),
        relation=reader.opt_string("relation"),
        lock=reader.opt_string("lock"),
        evidence=None if evidence is None else _parse_evidence(reader.child("evidence")),
        acknowledged=reader.opt_string("acknowledged"),
    )


def _parse_evidence(reader: Reader) -> TraceEvidence:
    return TraceEvidence(
        relation=reader.opt_string("relation"),
        mode=reader.opt_string("mode"),
        rows=reader.opt_integer("rows"),
        held_ms=reader.opt_float("held_ms"),
        statement_ms=reader.opt_float("statement_ms"),
        blocked_sessions=reader.opt_integer("blocked_sessions"),
        rewritten=bool(reader.get("rewritten", False)),
        created=bool(reader.get("created", False)),
    )
