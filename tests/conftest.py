"""Test tiers by directory: tests/unit → unit, tests/pg → pg, tests/kube → kube."""

from __future__ import annotations

import pytest

pytest_plugins = ["fix_pg", "fix_kube", "fix_operator"]

_TIERS = ("unit", "pg", "kube")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.parts
        for tier in _TIERS:
            if tier in parts[-3:-1]:
                item.add_marker(getattr(pytest.mark, tier))
