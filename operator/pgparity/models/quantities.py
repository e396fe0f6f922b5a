"""Durations and sizes in PostgreSQL's own syntax (``5s``, ``250ms``, ``64MB``).

The timeouts a migration meets in production are PostgreSQL settings, so pgparity reads them the
way the server does: a number with an optional unit, where a bare number of a timeout means
milliseconds (``lock_timeout = 5000``).

Numbers are read exactly (``decimal``), so no input becomes infinity, and every quantity has a
range: a duration at most ``MAX_DURATION_MS`` (INT_MAX milliseconds, about 24.8 days: the
largest value of every millisecond setting in PostgreSQL, lock_timeout and statement_timeout
included), a size at most ``MAX_SIZE_BYTES`` (bigint, the widest PostgreSQL counts bytes in).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from pgparity.errors import UsageError, shown

MAX_DURATION_MS = 2_147_483_647
MAX_SIZE_BYTES = 2**63 - 1

# Units accepted for time-valued settings (guc.c, memory_unit_conversion_table's sibling).
_TIME_UNITS_MS = {
    "us": 0.001,
    "ms": 1.0,
    "s": 1000.0,
    "min": 60_000.0,
    "h": 3_600_000.0,
    "d": 86_400_000.0,
}
# Units accepted for memory-valued settings; PostgreSQL's kB is 1024 bytes.
_SIZE_UNITS_BYTES = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}

# ASCII digits only: Python's \d (and float()) would take "٥s" for five seconds; the server not.
_QUANTITY = re.compile(r"^\s*(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z]*)\s*$", re.ASCII)


@dataclass(frozen=True)
class Duration:
    """A duration as written (``text``) and in milliseconds; 0 means "disabled" for timeouts."""

    text: str
    milliseconds: float

    @property
    def seconds(self) -> float:
        return self.milliseconds / 1000.0

    def as_setting(self) -> str:
        """The value in a form every supported server version accepts for ``SET``."""
        # Sub-millisecond timeouts round up: PostgreSQL would round them to 0, i.e. "disabled".
        return f"{max(1, round(self.milliseconds))}ms" if self.milliseconds else "0"


@dataclass(frozen=True)
class Size:
    """A byte count as written (``text``) and in bytes."""

    text: str
    bytes: int


def parse_duration(
    text: str, *, what: str = "duration", maximum_ms: int = MAX_DURATION_MS
) -> Duration:
    """Parse ``5s``, ``250ms``, ``1.5min`` or ``5000`` (milliseconds) into a Duration."""
    match = _QUANTITY.match(text)
    unit = match.group("unit") if match else ""
    if match is None or (unit and unit not in _TIME_UNITS_MS):
        raise UsageError(
            f"{what} {shown(text)} is not a PostgreSQL duration "
            f"(a number with one of {', '.join(_TIME_UNITS_MS)}; e.g. 5s, 250ms)"
        )
    milliseconds = Decimal(match.group("number")) * Decimal(str(_TIME_UNITS_MS.get(unit, 1.0)))
    if milliseconds > maximum_ms:
        raise UsageError(f"{what} {shown(text)} is too long (at most {describe_ms(maximum_ms)})")
    return Duration(text=text.strip(), milliseconds=float(milliseconds))


def parse_size(text: str, *, what: str = "size", maximum: int = MAX_SIZE_BYTES) -> Size:
    """Parse ``64MB``, ``512kB`` or ``1048576`` (bytes) into a Size."""
    match = _QUANTITY.match(text)
    unit = match.group("unit") if match else ""
    if match is None or (unit and unit not in _SIZE_UNITS_BYTES):
        raise UsageError(
            f"{what} {shown(text)} is not a PostgreSQL size "
            f"(a number with one of {', '.join(_SIZE_UNITS_BYTES)}; e.g. 64MB)"
        )
    count = Decimal(match.group("number")) * _SIZE_UNITS_BYTES.get(unit, 1)
    if count > maximum:
        raise UsageError(f"{what} {shown(text)} is too large (at most {maximum} bytes)")
    return Size(text=text.strip(), bytes=round(count))


def in_range(text: str, parse: Callable[[str], object]) -> bool:
    """True when ``parse`` accepts ``text`` (syntax and range): for models' ``problems()``."""
    try:
        parse(text)
    except UsageError:
        return False
    return True


def describe_ms(milliseconds: int) -> str:
    """``2147483647ms, about 24.9 days``: a limit as PostgreSQL writes it, and for people."""
    days = milliseconds / 86_400_000
    friendly = f"{days:.1f} days" if days >= 1 else f"{milliseconds / 1000:g} s"
    return f"{milliseconds}ms, about {friendly}"


def is_duration(text: str) -> bool:
    """True when ``text`` is a duration (has a time unit), False when it is a size or neither."""
    match = _QUANTITY.match(text)
    return bool(match and match.group("unit") in _TIME_UNITS_MS)


def format_bytes(count: int) -> str:
    """Human-readable bytes in PostgreSQL's units (``1.5 MB``)."""
    if abs(count) < 1024:
        return f"{count} B"
    value = count / 1024
    for unit in ("kB", "MB", "GB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def format_ms(milliseconds: float) -> str:
    """``0.3 ms``, ``42 ms``, ``5128 ms``: one decimal only where it carries information."""
    return f"{milliseconds:.1f} ms" if milliseconds < 10 else f"{milliseconds:.0f} ms"
