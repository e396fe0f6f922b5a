"""The parity floor document a parity Job delivers (``pgparity parity --format json``'s
``floor``), as the operator reads it back: typed, decoded leniently, never trusted for more
than it says."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pgparity.errors import SpecError
from pgparity.models.codec import decode

MAX_LISTED = 3  # broken checks named in a condition message
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True)
class FloorCheckSummary:
    dimension: str
    name: str
    status: str
    production: str | None = None
    staging: str | None = None


@dataclass(frozen=True)
class FloorSummary:
    ok: bool
    first_broken: str | None = field(default=None, metadata={"json": "first_broken"})
    broken: int = 0
    role: str | None = None
    dimensions: Mapping[str, bool] = field(default_factory=dict)
    checks: tuple[FloorCheckSummary, ...] = ()

    @property
    def reason(self) -> str:
        """The ParityVerified reason: ``ParityHolds``, or the first broken dimension's
        (``ConfigurationBroken``, ``TopologyBroken``, …)."""
        if self.ok or not self.first_broken:
            return "ParityHolds"
        return f"{self.first_broken.capitalize()}Broken"

    def describe(self) -> str:
        failing = [c for c in self.checks if c.status == "fail"]
        if not failing:
            return f"{len(self.checks)} checks hold"
        listed = "; ".join(
            f"{c.name}: production {c.production or '-'}, clone {c.staging or '-'}"
            for c in failing[:MAX_LISTED]
        )
        more = f" (and {len(failing) - MAX_LISTED} more)" if len(failing) > MAX_LISTED else ""
        return f"{len(failing)} of {len(self.checks)} checks fail: {listed}{more}"


def parse_floor(text: str) -> FloorSummary:
    """The ``floor`` of a parity document; anything else is a SpecError."""
    return decode(FloorSummary, _member(text, "floor"), "floor")


def _member(text: str, key: str) -> Mapping[str, Any]:
    """``key`` of the JSON object ``text``, which must be an object too."""
    try:
        document: Any = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise SpecError("parity report", f"is not JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get(key), dict):
        raise SpecError("parity report", f"has no {key}")
    member: Mapping[str, Any] = document[key]
    return member


@dataclass(frozen=True)
class DerivedParameters:
    """What ``pgparity parity --emit parameters --report-configmap`` delivers."""

    parameters: Mapping[str, str] = field(default_factory=dict)


def parse_parameters(text: str) -> DerivedParameters:
    derived = decode(DerivedParameters, {"parameters": _member(text, "parameters")}, "")
    for name, value in derived.parameters.items():
        # They become postgresql.conf lines: a name that is not a setting's, or a value with a
        # line break in it, is refused rather than written.
        if not _SETTING_NAME.fullmatch(name):
            raise SpecError("parameters", f"{name[:64]!r} is not a setting name")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            raise SpecError(f"parameters.{name}", "holds a control character")
    return derived
