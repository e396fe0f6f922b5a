"""PostgreSQL duration and size syntax."""

from __future__ import annotations

import pytest

from pgparity.errors import UsageError
from pgparity.models.quantities import format_bytes, is_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("5s", 5000),
        ("250ms", 250),
        ("1.5min", 90000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("5000", 5000),
        (" 3 s ", 3000),
        ("0", 0),
        ("500us", 0.5),
    ],
)
def test_durations(text: str, ms: float) -> None:
    assert parse_duration(text).milliseconds == pytest.approx(ms)


@pytest.mark.parametrize("text", ["", "5 parsecs", "-1s", "s", "5S", "1e3ms", "five"])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--lock-timeout"):
        parse_duration(text, what="--lock-timeout")


def test_durations_as_settings() -> None:
    assert parse_duration("5s").as_setting() == "5000ms"
    assert parse_duration("0").as_setting() == "0"
    assert parse_duration("500us").as_setting() == "1ms"  # never silently 0 = disabled


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("64MB", 64 * 1024**2),
        ("512kB", 512 * 1024),
        ("1GB", 1024**3),
        ("100", 100),
        ("10B", 10),
    ],
)
def test_sizes(text: str, count: int) -> None:
    assert parse_size(text).bytes == count


def test_bad_sizes() -> None:
    with pytest.raises(UsageError, match="not a PostgreSQL size"):
        parse_size("64mb")


def test_is_duration_distinguishes_sizes() -> None:
    assert is_duration("10s")
    assert not is_duration("64MB")
    assert not is_duration("10")


def test_format_bytes() -> None:
    assert format_bytes(10) == "10 B"
    assert format_bytes(1536) == "1.5 kB"
    assert format_bytes(10 * 1024**2) == "10.0 MB"
    assert format_bytes(3 * 1024**4) == "3.0 TB"
