"""Test tiers by directory: tests/unit, tests/tools, tests/pg, tests/kube, tests/node (markers
alike)."""

from __future__ import annotations

import signal

import pytest

pytest_plugins = ["fix_pg", "fix_kube", "fix_operator", "fix_node", "fix_tools", "fix_s3"]

_TIERS = ("unit", "tools", "pg", "kube", "node")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        for tier in _TIERS:
            if tier in parts[-3:-1]:
                item.add_marker(getattr(pytest.mark, tier))


def pytest_configure(config: pytest.Config) -> None:
    # A shell starting a job in the background without job control (`cmd &` in a script)
    # starts it with SIGINT ignored, and an ignored SIGINT is inherited across exec: the
    # tests that press Ctrl-C on pgparity would then test nothing. Take SIGINT back; the
    # children this process starts get the default disposition again.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
