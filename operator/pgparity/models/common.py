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
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int | None = None


def is_pg_duration(text: str) -> bool:
    """PostgreSQL's duration syntax, and within its range (INT_MAX milliseconds)."""
    return re.match(PG_DURATION, text) is not None and in_range(text, parse_duration)


def is_pg_size(text: str) -> bool:
    return re.match(PG_SIZE, text) is not None and in_range(text, parse_size)
