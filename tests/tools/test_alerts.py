"""The alerting rules: valid for Prometheus (promtool check rules), each alert unit-tested
(promtool test rules: when it fires, when it does not, its labels and texts), each with a runbook,
the plain rule file the same as the chart's PrometheusRule, and the thresholds taken from values."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from fix_tools import load_hack

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "monitoring" / "pgparity-rules.yaml"
UNIT_TESTS = Path(__file__).with_name("alerts_test.yaml")
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_BASE = "https://github.com/pgparity/pgparity/blob/main/docs/runbooks"


def render_module() -> ModuleType:
    return load_hack("gitops/render.py")


def rules() -> list[dict[str, Any]]:
    [group] = yaml.safe_load(RULES.read_text())["groups"]
    found: list[dict[str, Any]] = group["rules"]
    return found


def promtool_run(promtool: Path, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid(promtool: Path) -> None:
    out = promtool_run(promtool, "check", "rules", str(RULES))
    assert f"SUCCESS: {len(rules())} rules found" in out


def test_every_alert_passes_its_unit_tests(promtool: Path) -> None:
    assert "SUCCESS" in promtool_run(promtool, "test", "rules", str(UNIT_TESTS))


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    tested: dict[str, set[bool]] = {}
    for case in yaml.safe_load(UNIT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            tested.setdefault(check["alertname"], set()).add(bool(check["exp_alerts"]))
    assert {r["alert"] for r in rules()} == set(tested)
    for alert, outcomes in tested.items():
        assert outcomes == {True, False}, alert


def test_every_alert_can_be_routed_and_has_a_runbook() -> None:
    names = {r["alert"] for r in rules()}
    assert names == {
        "PgparityValidationRejected",
        "PgparityValidationFailed",
        "PgparityValidationDeadlineExceeded",
        "PgparityCloneNotReady",
        "PgparityCloneReplicationLagHigh",
        "PgparityCloneLockWaitHigh",
        "PgparityOperatorDown",
    }
    assert {p.stem for p in RUNBOOKS.glob("*.md")} == names
    for rule in rules():
        alert, labels, notes = rule["alert"], rule["labels"], rule["annotations"]
        assert set(notes) == {"summary", "description", "runbook_url"}, alert
        assert notes["runbook_url"] == f"{RUNBOOK_BASE}/{alert}.md"
        assert labels["severity"] in {"warning", "critical"}
        if alert.startswith("PgparityValidation"):
            assert labels["validation"] == "{{ $labels.name }}"
            assert labels["clone"] == "{{ $labels.clone }}"
            assert "by (namespace, name, clone)" in rule["expr"]
        elif alert.startswith("PgparityClone"):
            assert labels["clone"] == "{{ $labels.name }}"
            assert "by (namespace, name)" in rule["expr"]
        runbook = (RUNBOOKS / f"{alert}.md").read_text()
        assert runbook.startswith(f"# {alert}\n")
        for section in ("## Meaning", "## Impact", "## Diagnosis", "## Mitigation"):
            assert section in runbook, (alert, section)


def test_the_plain_rule_file_is_the_charts_rule(helm: Path) -> None:
    render = render_module()
    assert RULES.read_text() == render.rules_file(str(helm))


def _rendered_rules(helm: Path, tmp_path: Path, *settings: str) -> Path:
    """The unit tests next to the chart's rules rendered with ``settings``."""
    spec = render_module().prometheus_rule(str(helm), *settings)["spec"]
    (tmp_path / "deploy" / "monitoring").mkdir(parents=True)
    (tmp_path / "deploy" / "monitoring" / "pgparity-rules.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "tests" / "tools").mkdir(parents=True)
    return Path(shutil.copy(UNIT_TESTS, tmp_path / "tests" / "tools" / UNIT_TESTS.name))


@pytest.mark.parametrize(
    ("setting", "breaks"),
    [
        ("monitoring.prometheusRule.cloneNotReadyFor=30m", "PgparityCloneNotReady"),
        (
            "monitoring.prometheusRule.replicationLagBytes=209715200",
            "PgparityCloneReplicationLagHigh",
        ),
        ("monitoring.prometheusRule.lockWaitSeconds=60", "PgparityCloneLockWaitHigh"),
        ("monitoring.prometheusRule.operatorJob=other", "PgparityOperatorDown"),
        (
            "monitoring.prometheusRule.excludeRules={PgparityValidationRejected}",
            "PgparityValidationRejected",
        ),
    ],
)
def test_the_thresholds_come_from_the_values(
    promtool: Path, helm: Path, tmp_path: Path, setting: str, breaks: str
) -> None:
    """Changed values change the rules: the unit tests written for the defaults then fail."""
    tests = _rendered_rules(helm, tmp_path, setting)
    done = subprocess.run(
        [str(promtool), "test", "rules", str(tests)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert breaks in done.stdout + done.stderr


def test_alert_labels_from_values_are_added_to_every_alert(helm: Path) -> None:
    spec = render_module().prometheus_rule(
        str(helm), "monitoring.prometheusRule.alertLabels.team=platform"
    )["spec"]
    [group] = spec["groups"]
    assert all(rule["labels"]["team"] == "platform" for rule in group["rules"])
    # An alert's own labels win over alertLabels.
    spec = render_module().prometheus_rule(
        str(helm), "monitoring.prometheusRule.alertLabels.severity=info"
    )["spec"]
    assert {rule["labels"]["severity"] for rule in spec["groups"][0]["rules"]} == {
        "warning",
        "critical",
    }
