"""Operator configuration from ``PGPARITY_*`` environment variables, validated at start-up.

Table-driven: each setting names its variable, default, parser and meaning; a bad value stops
the operator with one line naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pgparity import IMAGE
from pgparity.errors import UsageError, shown

_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


_NUMBER = re.compile(r"^[0-9]+(\.[0-9]+)?$", re.ASCII)
MAX_INTERVAL_SECONDS = 86_400.0


def _interval(text: str) -> float:
    """Seconds between 0 (exclusive) and a day: no nan, inf, exponent or sign."""
    if not _NUMBER.match(text.strip()):
        raise ValueError("must be a number of seconds such as 5 or 0.5")
    value = float(text)
    if not 0 < value <= MAX_INTERVAL_SECONDS:
        raise ValueError(f"must be more than 0 and at most {MAX_INTERVAL_SECONDS:g}")
    return value


def _positive_int(text: str) -> int:
    """A count between 1 and 10 000: ASCII digits only, no sign."""
    if not text.strip().isascii() or not text.strip().isdigit():
        raise ValueError("must be a whole number of at least 1")
    value = int(text)
    if not 1 <= value <= 10_000:
        raise ValueError("must be a whole number between 1 and 10000")
    return value


def _port(text: str) -> int:
    if not text.strip().isascii() or not text.strip().isdigit():
        raise ValueError("must be a port number (0 disables)")
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number (0 disables)")
    return value


def _quantity(text: str) -> str:
    if not _QUANTITY.match(text):
        raise ValueError("must be a Kubernetes quantity such as 500m or 1Gi")
    return text


def _text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text.strip()


def _namespaces(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    image: str = IMAGE
    namespaces: tuple[str, ...] = ()
    operator_namespace: str = "pgparity-system"
    reconcile_seconds: float = 60.0
    monitor_seconds: float = 15.0
    max_workers: int = 8
    max_concurrent_jobs: int = 10
    sampler_concurrency: int = 4
    api_timeout_seconds: float = 10.0
    check_timeout_seconds: float = 10.0
    metrics_port: int = 9090
    liveness_port: int = 8080
    job_cpu: str = "1"
    job_memory: str = "512Mi"
    postgres_image: str = "postgres"


# (field, environment variable, parser, what it is)
_VARIABLES: tuple[tuple[str, str, Callable[[str], Any], str], ...] = (
    ("image", "PGPARITY_IMAGE", _text, "image of validation and seeding Jobs"),
    ("namespaces", "PGPARITY_NAMESPACES", _namespaces, "namespaces to watch (empty: all)"),
    (
        "operator_namespace",
        "PGPARITY_OPERATOR_NAMESPACE",
        _text,
        "the operator's own namespace (admitted by clones' NetworkPolicies)",
    ),
    (
        "reconcile_seconds",
        "PGPARITY_RECONCILE_SECONDS",
        _interval,
        "resync: each object is reconciled at least this often, besides on every change",
    ),
    (
        "monitor_seconds",
        "PGPARITY_MONITOR_SECONDS",
        _interval,
        "how often Ready clones are sampled for metrics",
    ),
    (
        "max_workers",
        "PGPARITY_MAX_WORKERS",
        _positive_int,
        "threads for blocking calls (PostgreSQL checks, Kubernetes API requests)",
    ),
    (
        "max_concurrent_jobs",
        "PGPARITY_MAX_CONCURRENT_JOBS",
        _positive_int,
        "validation Jobs running at once, cluster-wide; more wait in a queue",
    ),
    (
        "sampler_concurrency",
        "PGPARITY_SAMPLER_CONCURRENCY",
        _positive_int,
        "Ready clones sampled for metrics at once",
    ),
    (
        "api_timeout_seconds",
        "PGPARITY_API_TIMEOUT_SECONDS",
        _interval,
        "timeout of one Kubernetes API request",
    ),
    (
        "check_timeout_seconds",
        "PGPARITY_CHECK_TIMEOUT_SECONDS",
        _interval,
        "connect and statement timeout of clone checks and samples",
    ),
    ("metrics_port", "PGPARITY_METRICS_PORT", _port, "port of /metrics (0: off)"),
    ("liveness_port", "PGPARITY_LIVENESS_PORT", _port, "port of /healthz (0: off)"),
    ("job_cpu", "PGPARITY_JOB_CPU", _quantity, "CPU limit of validation Jobs"),
    ("job_memory", "PGPARITY_JOB_MEMORY", _quantity, "memory limit of validation Jobs"),
    (
        "postgres_image",
        "PGPARITY_POSTGRES_IMAGE",
        _text,
        "image repository of builtin clones' servers (tag: the major version)",
    ),
)


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment; the first bad value raises UsageError naming it."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, variable, parser, what in _VARIABLES:
        raw = environ.get(variable)
        if raw is None:
            continue
        try:
            values[name] = parser(raw)
        except ValueError as exc:
            raise UsageError(f"{variable}={shown(raw)} is not valid ({what}): {exc}") from exc
    return Settings(**values)


def documented() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for the README and `pgparity operator --help`."""
    defaults = {f.name: f.default for f in fields(Settings)}
    return [(variable, str(defaults[name]), what) for name, variable, _, what in _VARIABLES]
