"""The Grafana dashboard: generated from code (hack/dashboard/generate.py, grafana-foundation-sdk),
committed as JSON byte for byte as the generator writes it, with the panels platform engineers
look for; every metric it and the alerts query is one the operator exports. (The kube tier
evaluates every query on a real Prometheus scraping a real operator.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from fix_tools import load_hack
from pgparity import metrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts" / "pgparity" / "dashboards" / "pgparity.json"
RULES = ROOT / "deploy" / "monitoring" / "pgparity-rules.yaml"
METRIC = re.compile(r"\b(pgparity_[a-z_]+)\b")


def generator() -> ModuleType:
    return load_hack("dashboard/generate.py")


def dashboard() -> dict[str, Any]:
    board: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return board


def queries() -> list[str]:
    return [
        target["expr"] for panel in dashboard()["panels"] for target in panel.get("targets", [])
    ] + [v["query"] for v in dashboard()["templating"]["list"] if v["type"] == "query"]


def exported_names() -> set[str]:
    """The series names the operator's registry exposes."""
    names = set()
    for family in metrics.REGISTRY.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def test_the_committed_json_is_what_the_generator_writes() -> None:
    assert DASHBOARD.read_text() == generator().render()


def test_the_panels_a_platform_engineer_looks_for() -> None:
    panels = {p["title"]: p for p in dashboard()["panels"]}
    for title, kind in (
        ("Verdicts over time", "timeseries"),
        ("Verdicts standing", "table"),
        ("Validation duration", "timeseries"),
        ("Lock waits", "timeseries"),
        ("Blocked sessions", "timeseries"),
        ("Replication lag per clone", "timeseries"),
        ("Clone readiness", "state-timeline"),
        ("pgparity alerts firing", "table"),
    ):
        assert panels[title]["type"] == kind, title
    assert panels["Replication lag per clone"]["fieldConfig"]["defaults"]["unit"] == "bytes"
    assert panels["Lock waits"]["fieldConfig"]["defaults"]["unit"] == "s"
    assert panels["Validation duration"]["fieldConfig"]["defaults"]["unit"] == "s"


def test_every_query_uses_the_datasource_variable() -> None:
    board = dashboard()
    assert {v["name"] for v in board["templating"]["list"]} == {"datasource", "namespace", "clone"}
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_every_metric_queried_is_exported_by_the_operator() -> None:
    rule_exprs = [rule["expr"] for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]]
    used = {name for expr in queries() + rule_exprs for name in METRIC.findall(expr)}
    assert used
    assert used <= exported_names(), used - exported_names()


def test_the_product_never_imports_the_sdk() -> None:
    package = ROOT / "operator" / "pgparity"
    offenders = [
        str(path.relative_to(ROOT))
        for path in package.rglob("*.py")
        if "grafana_foundation_sdk" in path.read_text()
    ]
    assert offenders == []
