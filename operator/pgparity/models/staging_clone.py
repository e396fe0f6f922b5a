"""StagingClone (pgparity.io/v1alpha1): a primary + streaming replicas that mirror production.

Field names and types match ``crds/pgparity.io_stagingclones.yaml``; a unit test compares them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pgparity.models.codec import decode, encode
from pgparity.models.common import Condition, KeyRef, LocalObjectRef, is_pg_duration

KIND = "StagingClone"
PLURAL = "stagingclones"
TIMEOUT_PARAMETERS = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")


class Provider(StrEnum):
    BUILTIN = "builtin"
    EXTERNAL = "external"


class ClonePhase(StrEnum):
    PENDING = "Pending"
    PROVISIONING = "Provisioning"
    SEEDING = "Seeding"
    READY = "Ready"
    FAILED = "Failed"


@dataclass(frozen=True)
class StorageSpec:
    size: str = "10Gi"
    storage_class_name: str | None = None


@dataclass(frozen=True)
class ResourceSpec:
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PostgresSpec:
    version: int = 15
    image: str | None = None
    storage: StorageSpec = field(default_factory=StorageSpec)
    resources: ResourceSpec = field(default_factory=ResourceSpec)
    parameters: Mapping[str, str] = field(default_factory=dict)

    def problems(self) -> list[tuple[str, str]]:
        return [
            (f"parameters.{name}", "must be a PostgreSQL duration such as 5s or 250ms")
            for name in TIMEOUT_PARAMETERS
            if name in self.parameters and not is_pg_duration(self.parameters[name])
        ]


@dataclass(frozen=True)
class ExternalSpec:
    """An existing staging database; the Secret holds ``dsn`` and ``replicaDsn``."""

    secret_ref: LocalObjectRef


@dataclass(frozen=True)
class ArchiveSource:
    url: str
    secret_ref: LocalObjectRef | None = None
    claim_name: str | None = None


@dataclass(frozen=True)
class LiveSource:
    secret_ref: LocalObjectRef
    policy: KeyRef
    masking_key_ref: KeyRef
    jobs: int = 2


@dataclass(frozen=True)
class SourceSpec:
    archive: ArchiveSource | None = None
    live: LiveSource | None = None

    def problems(self) -> list[tuple[str, str]]:
        if (self.archive is None) == (self.live is None):
            return [("", "exactly one of archive or live must be set")]
        return []


@dataclass(frozen=True)
class ParitySpec:
    """The parity floor against production, checked by a Job every ``intervalMinutes``: the
    Secret's ``dsn`` is a read-only production connection (pg_read_all_settings and
    pg_read_all_stats suffice); ``role`` is the role migrations run as."""

    production_secret_ref: LocalObjectRef
    role: str | None = None
    interval_minutes: int = 10


@dataclass(frozen=True)
class StagingCloneSpec:
    provider: Provider = Provider.BUILTIN
    replicas: int = 1
    postgres: PostgresSpec = field(default_factory=PostgresSpec)
    source: SourceSpec | None = None
    external: ExternalSpec | None = None
    parity: ParitySpec | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if self.replicas < 1:
            found.append(("replicas", "must be at least 1"))
        if self.parity is not None and not 1 <= self.parity.interval_minutes <= 1440:
            found.append(("parity.intervalMinutes", "must be between 1 and 1440"))
        if self.provider is Provider.EXTERNAL and self.external is None:
            found.append(("external", "is required when provider is external"))
        if self.provider is Provider.BUILTIN and self.source is None:
            found.append(("source", "is required when provider is builtin"))
        return found

    @classmethod
    def parse(cls, doc: Any, path: str = "spec") -> StagingCloneSpec:
        return decode(cls, doc, path)


@dataclass(frozen=True)
class Endpoints:
    primary: str | None = None
    replica: str | None = None
    secret_name: str | None = None


@dataclass(frozen=True)
class DataSummary:
    tables: int = 0
    rows: int = 0
    bytes: int = 0
    seeded_at: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class ParityState:
    """The last parity floor check: which dimensions hold, and the first that broke."""

    checked_at: str | None = None
    job_name: str | None = None
    ok: bool | None = None
    first_broken: str | None = None
    broken: int | None = None
    dimensions: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class StagingCloneStatus:
    phase: ClonePhase | None = None
    conditions: tuple[Condition, ...] = ()
    endpoints: Endpoints | None = None
    schema_digest: str | None = None
    schema_digest_short: str | None = None
    data: DataSummary | None = None
    replicas_ready: int | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    derived_parameters: Mapping[str, str] | None = None  # production's, read before creation
    parity: ParityState | None = None
    message: str | None = None
    observed_generation: int | None = None

    @classmethod
    def parse(cls, doc: Any, path: str = "status") -> StagingCloneStatus:
        return decode(cls, doc, path)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = encode(self)
        return result
