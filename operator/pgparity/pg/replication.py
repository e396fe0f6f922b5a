"""Streaming replication as the primary and its replicas report it: WAL positions."""

from __future__ import annotations


def parse_lsn(text: str) -> int:
    """``16/B374D848`` → byte position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)
