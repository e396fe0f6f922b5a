"""The validation report: the versioned contract between the engine, the CLI and the operator.

Typed end to end — statements, observations, traffic, plans, findings, side effects — and
written by the one codec (``models.codec``, style ``REPORT``: the JSON documented in DESIGN.md,
version 1, its keys in the order that version has always had). ``ValidationReport.parse()``
reads it back (the operator reads reports written by Jobs), naming the bad field path when a
document does not match. Fields may be added; none may be renamed.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar

from pgparity.errors import SpecError
from pgparity.models.codec import (
    INLINE,
    OMIT_NONE,
    REPORT,
    REPORT_RULES,
    SKIP,
    decode,
    encode,
    rounded,
)

REPORT_VERSION = 1
MS = rounded(3)  # durations and sizes of time are written to the microsecond


class Verdict(StrEnum):
    VALIDATED = "VALIDATED"
    REJECTED = "REJECTED"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Rule(StrEnum):
    """What a finding is about; the values are the report's ``rule`` strings."""

    SYNTAX_ERROR = "syntax-error"
    TRANSACTION_CONTROL = "transaction-control"
    NON_TRANSACTIONAL_IN_TRANSACTION = "non-transactional-in-transaction"
    SIDE_EFFECT = "side-effect"
    LEXER_SETTING = "lexer-setting"
    LEXER_SETTING_CHANGED = "lexer-setting-changed"
    SIDE_EFFECT_LEFT = "side-effect-left"
    SCHEMA_DRIFT = "schema-drift"
    SEED_INCOMPLETE = "seed-incomplete"
    LOCK_TIMEOUT = "lock-timeout"
    STATEMENT_TIMEOUT = "statement-timeout"
    DEADLOCK = "deadlock"
    MIGRATION_ERROR = "migration-error"
    DIGEST_MISMATCH = "digest-mismatch"
    INVALID_INDEX = "invalid-index"
    COMPENSATION_FAILED = "compensation-failed"
    COMPENSATION_INCOMPLETE = "compensation-incomplete"
    LOCK_WAIT_BUDGET = "lock-wait-budget"
    BLOCKED_SESSIONS_BUDGET = "blocked-sessions-budget"
    REPLICATION_LAG_BUDGET = "replication-lag-budget"
    OBSERVATION_INCOMPLETE = "observation-incomplete"
    PLAN_EXPECTATION = "plan-expectation"
    PLAN_CHANGED = "plan-changed"
    BLOCKING_LOCK = "blocking-lock"
    SESSIONS_BLOCKED = "sessions-blocked"
    TRAFFIC_ERRORS = "traffic-errors"
    TABLE_REWRITE = "table-rewrite"
    NOT_IDEMPOTENT = "not-idempotent"
    NOT_EXECUTED = "not-executed"
    TIMEOUT_HEADROOM = "timeout-headroom"  # issue 13: closer to a timeout than --headroom
    BUDGET_HEADROOM = "budget-headroom"  # closer to a lock-wait or lag budget


def condition_reason(rule: str) -> str:
    """A finding's rule as a condition reason: ``lock-timeout`` → ``LockTimeout``."""
    return "".join(part.capitalize() for part in re.split(r"[^a-zA-Z0-9]+", rule) if part)


class Phase(StrEnum):
    """Where a statement ran: inside the rolled-back transaction, or on its own."""

    TRANSACTION = "transaction"
    OUTSIDE_TRANSACTION = "outside-transaction"


class NotExecuted(StrEnum):
    """Why a statement did not run, where the reason is one of a few (the report's
    ``not_executed_reason``; a refused statement says in its own words why)."""

    REJECTED_BEFORE_EXECUTION = "the migration was rejected before execution"
    EARLIER_FAILED = "an earlier statement failed"
    RUN_STOPPED = "the run stopped at an earlier statement"
    TRANSACTIONAL_PART_FAILED = "the transactional part of the migration failed"
    CLUSTER_LEVEL = (
        "cluster-level statement: pgparity rehearses changes to the database's schema only"
    )
    NOT_A_CLONE = (
        "the target is not a pgparity clone, and statements that cannot be rolled back run "
        "only on clones"
    )
    DEPENDS_ON_MIGRATION = (
        "it depends on objects created or changed by earlier statements of this migration, "
        "which the dry-run rolled back"
    )


class _Document:
    """``to_dict()``: the model as the report writes it."""

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = encode(self, REPORT)
        return document


@dataclass(frozen=True)
class LockRecord(_Document):
    """A lock a statement newly acquired, by pg_locks' mode name."""

    JSON_ORDER: ClassVar[tuple[str, ...]] = ("relation", "mode", "locktype", "relkind")

    relation: str
    mode: str
    locktype: str = "relation"
    held_ms: float | None = field(default=None, metadata=MS)
    relkind: str | None = None  # pg_class.relkind: r table, p partitioned, i index, …


@dataclass(frozen=True)
class StatementError(_Document):
    sqlstate: str | None
    message: str


@dataclass(frozen=True)
class BlockingEdge(_Document):
    """Sessions of one kind (``waiter``) waited for a lock held or queued by ``blocker``."""

    waiter: str
    blocker: str
    relation: str | None
    mode: str | None
    sessions: int
    max_wait_seconds: float = field(default=0.0, metadata=MS)


@dataclass(frozen=True)
class StatementObservation(_Document):
    """What other sessions and the replica went through while one statement ran.

    None is "could not be observed" (the report's ``observation_gaps`` say why), never 0.
    """

    max_blocked_sessions: int | None = 0
    max_lock_wait_seconds: float | None = field(default=0.0, metadata=MS)
    own_lock_wait_seconds: float | None = field(default=0.0, metadata=MS)
    max_replication_lag_bytes: int | None = 0
    max_replication_lag_seconds: float | None = field(default=0.0, metadata=MS)
    blocking: tuple[BlockingEdge, ...] = ()


# -- margins (issue 13) -------------------------------------------------------------------
# How close a statement ran to its limits: the fraction of each budget it used (0.41 is
# "41 % of statement_timeout"; None: no such budget, a timeout of 0 is disabled), its repeated
# runs, and its duration predicted at production scale.

RATIO = rounded(4)
# Below this share of its data blocks found in shared buffers, a run counts as cold: most of
# what it read came from the operating system's cache or the disk.
WARM_HIT_RATIO = 0.9


class Cache(StrEnum):
    """Where a run found the data blocks it read."""

    WARM = "warm"  # mostly in shared buffers
    COLD = "cold"  # mostly read in
    NONE = "none"  # it read no data blocks (catalog-only)


class Growth(StrEnum):
    """How a statement's duration grows with its table (the scale model, README)."""

    CONSTANT = "constant"  # catalog-only: the same at any size
    LINEAR = "linear"  # scans, rewrites, DML over the table
    N_LOG_N = "n-log-n"  # index builds: a sort of the table's rows


class Measure(StrEnum):
    """The budget a headroom fraction is of; the values are ``Headroom``'s field names."""

    STATEMENT_TIMEOUT = "statement_timeout"
    LOCK_TIMEOUT = "lock_timeout"
    LOCK_WAIT_BUDGET = "lock_wait_budget"
    REPLICATION_LAG_BUDGET = "replication_lag_budget"
    PREDICTED_STATEMENT_TIMEOUT = "predicted_statement_timeout"


class ProductionSource(StrEnum):
    """Where the production sizes of a scale prediction came from."""

    DSN = "dsn"  # read from production (read-only)
    FILE = "file"  # given as a file (a MigrationValidation's spec.production.tables)


@dataclass(frozen=True)
class Buffers(_Document):
    """Data blocks one run of a statement found in shared buffers (hit) or read in (read).

    ``hit_ratio`` and ``cache`` follow from the counts: build with ``Buffers.counted``.
    """

    hit: int
    read: int
    hit_ratio: float | None = field(default=None, metadata=RATIO)  # None: it read no blocks
    cache: Cache = Cache.NONE
    tables: tuple[str, ...] = ()  # the tables (not indexes) whose blocks it asked for

    @classmethod
    def counted(cls, hit: int, read: int, tables: tuple[str, ...] = ()) -> Buffers:
        total = hit + read
        ratio = None if total == 0 else hit / total
        if ratio is None:
            cache = Cache.NONE
        else:
            cache = Cache.WARM if ratio >= WARM_HIT_RATIO else Cache.COLD
        return cls(hit=hit, read=read, hit_ratio=ratio, cache=cache, tables=tables)


@dataclass(frozen=True)
class RunSample(_Document):
    """One run of one statement: its duration, its error (SQLSTATE), its buffers."""

    duration_ms: float = field(metadata=MS)
    failed: bool = False
    sqlstate: str | None = None
    buffers: Buffers | None = None


@dataclass(frozen=True)
class Runs(_Document):
    """Every run of a statement (the observed one first); the verdict uses the slowest.

    The summary follows from the samples: build with ``Runs.of``.
    """

    count: int
    min_ms: float = field(metadata=MS)
    median_ms: float = field(metadata=MS)
    max_ms: float = field(metadata=MS)
    failures: int
    cache: tuple[Cache | None, ...]  # per run; None where its buffers were not counted
    samples: tuple[RunSample, ...] = field(metadata={"json": "runs"})

    @classmethod
    def of(cls, samples: Sequence[RunSample]) -> Runs:
        durations = [s.duration_ms for s in samples]
        return cls(
            count=len(samples),
            min_ms=min(durations),
            median_ms=float(statistics.median(durations)),
            max_ms=max(durations),
            failures=sum(1 for s in samples if s.failed),
            cache=tuple(s.buffers.cache if s.buffers else None for s in samples),
            samples=tuple(samples),
        )


@dataclass(frozen=True)
class ScaledTable(_Document):
    """A table a statement worked on, at the clone's size and at production's."""

    name: str
    clone_bytes: int
    production_bytes: int | None


@dataclass(frozen=True)
class Prediction(_Document):
    """A statement's duration predicted at production scale: ``factor`` × the measured one."""

    growth: Growth
    factor: float = field(metadata=RATIO)
    measured_ms: float = field(metadata=MS)
    duration_ms: float = field(metadata=MS)
    tables: tuple[ScaledTable, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Headroom(_Document):
    """The fraction of each budget a statement used; None where there is no such budget."""

    statement_timeout: float | None = field(default=None, metadata=RATIO)
    lock_timeout: float | None = field(default=None, metadata=RATIO)
    lock_wait_budget: float | None = field(default=None, metadata=RATIO)
    replication_lag_budget: float | None = field(default=None, metadata=RATIO)
    predicted_statement_timeout: float | None = field(default=None, metadata=RATIO)

    def fraction(self, measure: Measure) -> float | None:
        value: float | None = getattr(self, measure.value)
        return value


@dataclass(frozen=True)
class StatementMargins(_Document):
    """How close one statement ran to its limits (``statements[].margins``)."""

    headroom: Headroom
    runs: Runs | None = field(default=None, metadata={"json": "repeats"})
    prediction: Prediction | None = None


@dataclass(frozen=True)
class MarginSettings(_Document):
    """The run's margin settings (the report's ``margins``): the headroom asked for, the
    repeats, where production's sizes came from."""

    headroom_factor: float
    headroom_severity: Severity  # what a statement closer to a limit than the factor is
    repeat: int
    production: ProductionSource | None = None
    production_tables: int = 0


@dataclass(frozen=True)
class StatementResult(_Document):
    index: int
    line: int
    sql: str
    transactional: bool
    executed: bool
    duration_ms: float | None = field(default=None, metadata=MS)
    wal_bytes: int | None = None
    locks: tuple[LockRecord, ...] = ()
    rewrites: tuple[str, ...] = ()
    error: StatementError | None = None
    phase: Phase = Phase.TRANSACTION
    not_executed_reason: str | None = None  # a NotExecuted, or a refusal in its own words
    settings_in_effect: Mapping[str, str] = field(default_factory=dict)
    compensation: tuple[str, ...] = ()
    observed: StatementObservation | None = None
    margins: StatementMargins | None = None  # issue 13: headroom, repeats, prediction


class Judgement(StrEnum):
    """What the trace on the clone made of a static (lint) finding."""

    CONFIRMED = "confirmed"  # the trace saw the cost the rule warns of
    DISMISSED = "dismissed"  # the trace saw it cost nothing: a new table, no rows, no wait
    NOT_OBSERVED = "not-observed"  # the statement did not run, so there is nothing to judge
    NOT_JUDGED = "not-judged"  # a rule about types or style: nothing to measure


@dataclass(frozen=True)
class Finding(_Document):
    JSON_ORDER: ClassVar[tuple[str, ...]] = ("rule", "severity", "statement", "line")

    # A Rule (the engine's findings) or a lint rule's name (lint.catalog.Rule), both StrEnums
    # whose values are the report's strings; a report read back holds the string.
    rule: str
    severity: Severity
    message: str
    statement: int | None = None
    line: int | None = None
    # Set on findings that come from a lint rule (and only written there).
    judgement: Judgement | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class TraceEvidence(_Document):
    """What the trace saw of the relation a static finding is about."""

    relation: str | None
    mode: str | None = None  # the strongest lock the statement took on it (pg_locks' name)
    rows: int | None = None  # pg_class.reltuples before the migration (None: unknown)
    held_ms: float | None = field(default=None, metadata=MS)  # until the transaction ended
    # Of that, the statement's own work under the lock.
    statement_ms: float | None = field(default=None, metadata=MS)
    blocked_sessions: int | None = None
    rewritten: bool = False
    created: bool = False  # created by the migration itself


@dataclass(frozen=True)
class StaticFinding(_Document):
    """A lint finding on the migration, with what the trace saw and its judgement."""

    JSON_ORDER: ClassVar[tuple[str, ...]] = (
        "rule",
        "severity",
        "statement",
        "line",
        "message",
        "relation",
        "lock",
        "judgement",
        "reason",
        "evidence",
        "acknowledged",
    )

    rule: str  # a lint rule's name
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


class SideEffectKind(StrEnum):
    """State outside transactions that a validation changed (ROLLBACK does not undo it)."""

    SEQUENCE = "sequence"
    STATISTICS = "statistics"
    ADVISORY_LOCK = "advisory-lock"
    REPLICATION_SLOT = "replication-slot"


@dataclass(frozen=True)
class SideEffect(_Document):
    """Something the run changed that ROLLBACK did not undo; ``restored`` when pgparity put it
    back (a sequence on a clone, an advisory lock released)."""

    kind: SideEffectKind
    object: str
    before: str | None
    after: str | None
    restored: bool = False
    note: str | None = None


@dataclass(frozen=True)
class MigrationInfo(_Document):
    path: str
    sha256: str


@dataclass(frozen=True)
class TargetInfo(_Document):
    server_version: str | None = None
    digest_before: str | None = None
    digest_after: str | None = None
    digest_after_compensation: str | None = None
    is_clone: bool = False
    replica: bool = False


# -- observations -------------------------------------------------------------------------


class Quantity(StrEnum):
    """What the observer measures, each of which a budget can depend on."""

    BLOCKED_SESSIONS = "blocked_sessions"
    LOCK_WAIT = "lock_wait"
    REPLICATION_LAG_BYTES = "replication_lag_bytes"
    REPLICATION_LAG_SECONDS = "replication_lag_seconds"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class ObservationGap(_Document):
    """A quantity the observer could not observe during the migration, and why.

    ``no_replica``: there was nothing to observe (no replica streams from the target), which
    matters only to a replication-lag budget — judged before the report is written, so it is
    neither written nor compared.
    """

    quantity: Quantity
    reason: str
    no_replica: bool = field(default=False, compare=False, metadata=SKIP)


@dataclass(frozen=True)
class LatencyStats(_Document):
    """Nearest-rank percentiles of transaction latencies; None without transactions."""

    count: int
    p50_ms: float | None = field(default=None, metadata=MS)
    p95_ms: float | None = field(default=None, metadata=MS)
    p99_ms: float | None = field(default=None, metadata=MS)


@dataclass(frozen=True)
class TrafficReport(_Document):
    """What the traffic went through: latency before, during and after the migration."""

    clients: int
    rate_per_client: float
    statements: tuple[str, ...]
    transactions: int
    transactions_ok: int
    errors: Mapping[str, int]  # by SQLSTATE ("client", "lexing-changed" for the others)
    errors_during_migration: Mapping[str, int]
    latency_before: LatencyStats
    latency_during: LatencyStats
    latency_after: LatencyStats


@dataclass(frozen=True)
class PlanShape(_Document):
    nodes: tuple[str, ...]
    indexes: frozenset[str]
    seq_scans: frozenset[str]
    join_order: tuple[str, ...]
    total_cost: float


@dataclass(frozen=True)
class PlanOutcome(_Document):
    """A query's plan (its shape, inlined), or why it could not be explained."""

    shape: PlanShape | None = field(default=None, metadata=INLINE)
    error: str | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True)
class PlanComparison(_Document):
    """One explain query's plan before and after the migration, and what was expected of it."""

    name: str
    sql: str
    before: PlanOutcome
    after: PlanOutcome
    changed: bool = False
    changes: tuple[str, ...] = ()
    violations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observed(_Document):
    """What the observer saw during the run (maxima over the statements; None: unknown)."""

    max_lock_wait_seconds: float | None = field(default=0.0, metadata=MS)
    max_blocked_sessions: int | None = 0
    migration_lock_wait_seconds: float | None = field(default=0.0, metadata=MS)
    max_replication_lag_bytes: int | None = 0
    max_replication_lag_seconds: float | None = field(default=0.0, metadata=MS)
    observation_gaps: tuple[ObservationGap, ...] = ()
    replica_catchup_seconds: float | None = field(default=None, metadata=MS)
    sample_period_ms: float = field(default=0.0, metadata=MS)
    samples: int = 0
    sampling_errors: int = 0
    migration_window_seconds: float = field(default=0.0, metadata=MS)
    traffic: TrafficReport | None = None
    plans: tuple[PlanComparison, ...] = ()


@dataclass(frozen=True)
class Observations(_Document):
    """The run as a whole; ``observed`` (written inline) once the migration ran."""

    statements_executed: int = 0
    total_duration_ms: float = field(default=0.0, metadata=MS)
    wal_bytes: int = 0
    max_lock_hold_ms: float = field(default=0.0, metadata=MS)
    rewritten_relations: tuple[str, ...] = ()
    observed: Observed | None = field(default=None, metadata=INLINE)


@dataclass(frozen=True)
class ValidationReport(_Document):
    JSON_ORDER: ClassVar[tuple[str, ...]] = (
        "version",
        "verdict",
        "strict",
        "migration",
        "target",
        "settings",
        "statements",
        "observations",
        "findings",
        "side_effects",
        "lint",
    )

    verdict: Verdict
    migration: MigrationInfo
    target: TargetInfo
    settings: Mapping[str, str]
    statements: tuple[StatementResult, ...]
    findings: tuple[Finding, ...]
    observations: Observations = field(default_factory=Observations)
    strict: bool = False
    side_effects: tuple[SideEffect, ...] = ()
    lint: tuple[StaticFinding, ...] = ()
    version: int = REPORT_VERSION
    margins: MarginSettings | None = None  # issue 13: the run's headroom, repeats, production
    parity: str | None = None  # the clone's parity state the run was under (the operator's)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    def has(self, rule: Rule) -> bool:
        return any(f.rule == rule for f in self.findings)

    @classmethod
    def parse(cls, doc: Any) -> ValidationReport:
        """Read a report document back, naming the first field that does not fit."""
        version = doc.get("version") if isinstance(doc, Mapping) else None
        if isinstance(version, int) and version != REPORT_VERSION:
            raise SpecError("version", f"unsupported report version (expected {REPORT_VERSION})")
        if isinstance(doc, Mapping) and "version" not in doc:
            raise SpecError("version", "is required")
        return decode(cls, doc, rules=REPORT_RULES)


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
