"""MigrationValidation (pgparity.io/v1alpha1): one migration, dry-run on one clone, a verdict.

Field names and types match ``crds/pgparity.io_migrationvalidations.yaml``; a unit test compares
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pgparity.inputs import sql_control_character
from pgparity.models.codec import decode, encode
from pgparity.models.common import (
    Condition,
    KeyRef,
    LocalObjectRef,
    is_pg_duration,
    is_pg_size,
)
from pgparity.models.report import Severity, Verdict

KIND = "MigrationValidation"
PLURAL = "migrationvalidations"
CONDITION_TYPES = (
    "DriftChecked",
    "DryRunSucceeded",
    "LocksWithinBudget",
    "ReplicationLagWithinBudget",
    "PlansAsExpected",
    "WithinHeadroom",
    "Validated",
)


class CloneParity(StrEnum):
    """The clone's ParityVerified condition, as a validation sees it."""

    VERIFIED = "Verified"
    BROKEN = "Broken"
    UNKNOWN = "Unknown"
    NOT_CHECKED = "NotChecked"


class ValidationPhase(StrEnum):
    PENDING = "Pending"
    WAITING_FOR_CLONE = "WaitingForClone"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"


class TrafficMode(StrEnum):
    NONE = "none"
    AUTO = "auto"
    WORKLOAD = "workload"


@dataclass(frozen=True)
class MigrationSource:
    sql: str | None = None
    config_map_ref: KeyRef | None = None

    def problems(self) -> list[tuple[str, str]]:
        if (self.sql is None) == (self.config_map_ref is None):
            return [("", "exactly one of sql or configMapRef must be set")]
        problem = None if self.sql is None else sql_control_character(self.sql)
        return [("sql", problem)] if problem else []


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: str | None = None
    statement_timeout: str | None = None

    def problems(self) -> list[tuple[str, str]]:
        return [
            (name, "must be a PostgreSQL duration such as 5s or 250ms")
            for name, value in (
                ("lockTimeout", self.lock_timeout),
                ("statementTimeout", self.statement_timeout),
            )
            if value is not None and not is_pg_duration(value)
        ]


@dataclass(frozen=True)
class HoldLock:
    table: str
    duration: str


@dataclass(frozen=True)
class TrafficSpec:
    mode: TrafficMode = TrafficMode.NONE
    clients: int = 4
    rate: int = 50
    workload_ref: KeyRef | None = None
    hold_locks: tuple[HoldLock, ...] = ()


@dataclass(frozen=True)
class ExplainQuery:
    name: str
    sql: str
    uses_index: str | None = None
    no_seq_scan_on: tuple[str, ...] = ()
    max_total_cost: float | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = [("sql", p) for p in [sql_control_character(self.sql)] if p]
        if self.max_total_cost is not None and self.max_total_cost < 0:
            found.append(("maxTotalCost", "must not be negative"))
        return found


@dataclass(frozen=True)
class ExplainSpec:
    queries: tuple[ExplainQuery, ...] = ()
    analyze: bool = False


@dataclass(frozen=True)
class Budgets:
    max_lock_wait: str | None = None
    max_blocked_sessions: int | None = None
    max_replication_lag: str | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.max_lock_wait is not None and not is_pg_duration(self.max_lock_wait):
            found.append(("maxLockWait", "must be a PostgreSQL duration such as 2s"))
        if self.max_blocked_sessions is not None and self.max_blocked_sessions < 0:
            found.append(("maxBlockedSessions", "must not be negative"))
        lag = self.max_replication_lag
        if lag is not None and not (is_pg_duration(lag) or is_pg_size(lag)):
            found.append(("maxReplicationLag", "must be a size (64MB) or a duration (10s)"))
        return found


@dataclass(frozen=True)
class Headroom:
    """How close to its timeouts and budgets a statement may run (``--headroom``)."""

    factor: float = 2.0
    severity: Severity = Severity.ERROR

    def problems(self) -> list[tuple[str, str]]:
        if not 1 <= self.factor <= 100:
            return [("factor", "must be between 1 and 100")]
        return []


@dataclass(frozen=True)
class ProductionTable:
    """A production table's size, for predicting durations at production scale."""

    name: str
    size: str
    rows: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if not is_pg_size(self.size):
            found.append(("size", "must be a size such as 120GB"))
        if self.rows is not None and self.rows < 0:
            found.append(("rows", "must not be negative"))
        return found


@dataclass(frozen=True)
class ProductionTables:
    """The file ``--production-sizes`` reads (and ``spec.production.tables`` becomes)."""

    tables: tuple[ProductionTable, ...] = ()


@dataclass(frozen=True)
class ProductionSpec:
    """Where production's table sizes come from: a Secret with a read-only DSN, or given."""

    secret_ref: KeyRef | None = None
    tables: tuple[ProductionTable, ...] = ()

    def problems(self) -> list[tuple[str, str]]:
        if (self.secret_ref is None) == (not self.tables):
            return [("", "exactly one of secretRef or tables must be set")]
        return []


@dataclass(frozen=True)
class MigrationValidationSpec:
    clone_ref: LocalObjectRef
    migration: MigrationSource
    timeouts: Timeouts | None = None
    expect_digest: str | None = None
    traffic: TrafficSpec | None = None
    explain: ExplainSpec | None = None
    budgets: Budgets | None = None
    strict: bool = False
    deadline_seconds: int = 1800
    headroom: Headroom | None = None
    repeat: int = 1
    production: ProductionSpec | None = None
    allow_parity_drift: bool = False

    @classmethod
    def parse(cls, doc: Any, path: str = "spec") -> MigrationValidationSpec:
        return decode(cls, doc, path)


@dataclass(frozen=True)
class LockSummary:
    relation: str
    mode: str
    held_ms: float | None = None


@dataclass(frozen=True)
class StatementSummary:
    index: int
    line: int
    sql: str
    transactional: bool
    executed: bool
    duration_ms: float | None = None
    wal_bytes: int | None = None
    locks: tuple[LockSummary, ...] = ()
    rewrites: tuple[str, ...] = ()
    error: str | None = None
    max_blocked_sessions: int | None = None
    max_replication_lag_bytes: int | None = None
    headroom: str | None = None
    predicted_duration_ms: float | None = None


@dataclass(frozen=True)
class FindingSummary:
    rule: str
    severity: str
    message: str
    statement: int | None = None


@dataclass(frozen=True)
class Maxima:
    lock_wait_seconds: float = 0.0
    lock_hold_seconds: float = 0.0
    blocked_sessions: int = 0
    replication_lag_bytes: int = 0
    replication_lag_seconds: float = 0.0


@dataclass(frozen=True)
class ReportRef:
    config_map_name: str
    key: str


@dataclass(frozen=True)
class MigrationValidationStatus:
    phase: ValidationPhase | None = None
    verdict: Verdict | None = None
    conditions: tuple[Condition, ...] = ()
    statements: tuple[StatementSummary, ...] = ()
    findings: tuple[FindingSummary, ...] = ()
    errors: int | None = None
    warnings: int | None = None
    maxima: Maxima | None = None
    report_ref: ReportRef | None = None
    migration_checksum: str | None = None
    validation_key: str | None = None
    clone_digest: str | None = None
    job_name: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    duration_seconds: float | None = None
    message: str | None = None
    queue_position: int | None = None
    parity: CloneParity | None = None  # the clone's ParityVerified when the run started
    observed_generation: int | None = None

    @classmethod
    def parse(cls, doc: Any, path: str = "status") -> MigrationValidationStatus:
        return decode(cls, doc, path)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = encode(self)
        return result
