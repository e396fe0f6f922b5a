"""Pieces shared by the custom resources: references and the standard condition shape."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pgparity.models.quantities import in_range, parse_duration, parse_size

GROUP = "pgparity.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# PostgreSQL's duration syntax: a number with an optional unit (bare numbers are ms).
PG_DURATION = r"^[0-9]+(\.[0-9]+)?\s*(us|ms|s|min|h|d)?$"
PG_SIZE = r"^[0-9]+(\.[0-9]+)?\s*(B|kB|MB|GB|TB)?$"
DIGEST = r"^sha256:[0-9a-f]{64}$"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(StrEnum):
    """The condition reasons pgparity sets (CamelCase, as the API conventions ask).

    Others are derived: a finding's rule (``Rule.reason``: ``LockWaitBudget``), a failed Job's
    condition (``Job`` + Kubernetes' reason: ``JobDeadlineExceeded``).
    """

    # MigrationValidation
    INVALID_SPEC = "InvalidSpec"
    CLONE_NOT_FOUND = "CloneNotFound"
    CLONE_NOT_READY = "CloneNotReady"
    CLONE_BUSY = "CloneBusy"
    QUEUED = "Queued"
    MIGRATION_NOT_FOUND = "MigrationNotFound"
    INVALID_MIGRATION = "InvalidMigration"
    WORKLOAD_NOT_FOUND = "WorkloadNotFound"
    JOB_CREATED = "JobCreated"
    JOB_RUNNING = "JobRunning"
    REPORT_UNREADABLE = "ReportUnreadable"
    SCHEMA_AS_EXPECTED = "SchemaAsExpected"
    DRY_RUN_SUCCEEDED = "DryRunSucceeded"
    WITHIN_BUDGET = "WithinBudget"
    PLANS_AS_EXPECTED = "PlansAsExpected"
    WITHIN_HEADROOM = "WithinHeadroom"
    VALIDATED = "Validated"
    REJECTED = "Rejected"
    # StagingClone
    OBJECTS_CREATED = "ObjectsCreated"
    EXTERNAL = "External"
    PRIMARY_NOT_READY = "PrimaryNotReady"
    REPLICAS_NOT_READY = "ReplicasNotReady"
    SECRET_NOT_FOUND = "SecretNotFound"  # noqa: S105 (a reason, not a password)
    NO_SOURCE = "NoSource"
    SEEDING = "Seeding"
    SEED_JOB_COMPLETE = "SeedJobComplete"
    SEED_JOB_FAILED = "SeedJobFailed"
    SEED_INCOMPLETE = "SeedIncomplete"
    UNREACHABLE = "Unreachable"
    CHECK_TIMED_OUT = "CheckTimedOut"
    NOT_A_PRIMARY = "NotAPrimary"
    NOT_A_CLONE = "NotAClone"
    NO_STREAMING_REPLICA = "NoStreamingReplica"
    NO_REPLICA_DSN = "NoReplicaDsn"
    REPLICA_NOT_STREAMING = "ReplicaNotStreaming"
    STREAMING = "Streaming"
    READY = "Ready"
    NOT_READY = "NotReady"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class LocalObjectRef:
    """A reference to an object in the same namespace."""

    name: str


@dataclass(frozen=True)
class KeyRef:
    """A key of a ConfigMap or Secret in the same namespace."""

    name: str
    key: str


@dataclass(frozen=True)
class Condition:
    """The Kubernetes API conventions' condition (metav1.Condition)."""

    type: str
    status: ConditionStatus
    reason: str  # a Reason, or one derived from a rule or a Job (see Reason)
    message: str
    last_transition_time: str
    observed_generation: int | None = None


def is_pg_duration(text: str) -> bool:
    """PostgreSQL's duration syntax, and within its range (INT_MAX milliseconds)."""
    return re.match(PG_DURATION, text) is not None and in_range(text, parse_duration)


def is_pg_size(text: str) -> bool:
    return re.match(PG_SIZE, text) is not None and in_range(text, parse_size)
