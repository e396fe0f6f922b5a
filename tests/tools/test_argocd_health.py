"""Argo CD's health checks for pgparity.io, run by the interpreter Argo CD embeds (gopher-lua,
Lua 5.1) the way Argo CD runs them: every testdata case in Argo CD's layout, with and without the
standard libraries; and, since an error in a health check makes the resource Unknown (a failed
hook) rather than Progressing, a class of hostile objects that must never break them."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fix_tools import json_tool

ROOT = Path(__file__).resolve().parents[2]
CUSTOMIZATIONS = ROOT / "deploy" / "argocd" / "resource_customizations"
GROUP = CUSTOMIZATIONS / "pgparity.io"
MV_SCRIPT = GROUP / "MigrationValidation" / "health.lua"
SC_SCRIPT = GROUP / "StagingClone" / "health.lua"
STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def evaluate(runner: Path, script: Path, objects: list[Any]) -> list[dict[str, str]]:
    return json_tool(runner, objects, "eval", str(script))


def cases_of(kind: str) -> dict[str, dict[str, Any]]:
    return {
        path.stem: yaml.safe_load(path.read_text())
        for path in sorted((GROUP / kind / "testdata").glob("*.yaml"))
    }


def test_every_testdata_case_gives_the_expected_health(argocd_health: Path) -> None:
    done = subprocess.run(
        [str(argocd_health), "test", str(CUSTOMIZATIONS)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    cases = sum(1 for _ in GROUP.glob("*/testdata/*.yaml"))
    assert f"{cases} cases, 0 failures" in done.stdout
    assert cases >= 25


def test_the_layout_is_argo_cds(argocd_health: Path) -> None:
    """<group>/<Kind>/health.lua + health_test.yaml + testdata/, every case listed once."""
    for kind in ("MigrationValidation", "StagingClone"):
        directory = GROUP / kind
        assert sorted(p.name for p in directory.iterdir()) == [
            "health.lua",
            "health_test.yaml",
            "testdata",
        ]
        tests = yaml.safe_load((directory / "health_test.yaml").read_text())["tests"]
        paths = [t["inputPath"] for t in tests]
        assert len(paths) == len(set(paths))
        assert {t["healthStatus"]["status"] for t in tests} >= {
            "Healthy",
            "Progressing",
            "Degraded",
        }


class TestTheRunnerIsHonest:
    """The runner fails when a case is wrong, unlisted, or needs a library Argo CD withholds."""

    def copy_tree(self, tmp_path: Path) -> Path:
        target = tmp_path / "resource_customizations"
        shutil.copytree(CUSTOMIZATIONS, target)
        return target

    def run(self, runner: Path, tree: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(runner), "test", str(tree)], capture_output=True, text=True, timeout=120
        )

    def test_a_wrong_expectation_fails(self, argocd_health: Path, tmp_path: Path) -> None:
        tree = self.copy_tree(tmp_path)
        tests_file = tree / "pgparity.io" / "MigrationValidation" / "health_test.yaml"
        text = tests_file.read_text()
        tests_file.write_text(text.replace("status: Degraded", "status: Healthy", 1))
        done = self.run(argocd_health, tree)
        assert done.returncode == 1
        assert "FAIL pgparity.io/MigrationValidation" in done.stdout

    def test_a_testdata_file_without_a_case_fails(
        self, argocd_health: Path, tmp_path: Path
    ) -> None:
        tree = self.copy_tree(tmp_path)
        extra = tree / "pgparity.io" / "StagingClone" / "testdata" / "forgotten.yaml"
        extra.write_text("kind: StagingClone\n")
        done = self.run(argocd_health, tree)
        assert done.returncode == 1
        assert "testdata/forgotten.yaml: not a case in health_test.yaml" in done.stdout

    def test_the_string_library_is_withheld_as_in_argocd_cm(
        self, argocd_health: Path, tmp_path: Path
    ) -> None:
        # argocd-cm scripts run without Lua's standard libraries unless useOpenLibs is set; the
        # runner runs every script both ways and refuses one that needs them.
        script = tmp_path / "health.lua"
        script.write_text('return {status = "Healthy", message = string.upper("ok")}')
        done = subprocess.run(
            [str(argocd_health), "eval", str(script)],
            input="[{}]",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "differs with and without the standard libraries" in done.stderr

    def test_an_unknown_status_becomes_unknown(self, argocd_health: Path, tmp_path: Path) -> None:
        script = tmp_path / "health.lua"
        script.write_text('return {status = "Fine"}')
        [result] = evaluate(argocd_health, script, [{}])
        assert result == {"status": "Unknown", "message": "Lua returned an invalid health status"}


def _generations(obj: dict[str, Any]) -> dict[str, Any]:
    newer = copy.deepcopy(obj)
    newer["metadata"]["generation"] = int(newer["metadata"]["generation"]) + 1
    return newer


@pytest.mark.parametrize("kind", ["MigrationValidation", "StagingClone"])
def test_a_status_for_an_older_generation_is_always_progressing(
    argocd_health: Path, kind: str
) -> None:
    """A changed spec must never pass (or fail) a sync on the verdict of the spec before it."""
    cases = {
        name: obj
        for name, obj in cases_of(kind).items()
        if obj.get("status") and "deletionTimestamp" not in obj["metadata"]
    }
    results = evaluate(
        argocd_health, GROUP / kind / "health.lua", [_generations(obj) for obj in cases.values()]
    )
    for name, result in zip(cases, results, strict=True):
        assert result["status"] == "Progressing", name
        assert result["message"].startswith("Waiting for the pgparity operator"), name


def _validated() -> dict[str, Any]:
    return cases_of("MigrationValidation")["validated"]


def _with(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node = changed
    for key in parents:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node
    if isinstance(node, dict):
        if value is _DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return changed


_DELETE = object()

HOSTILE_PATHS: list[tuple[str, Any]] = [
    ("status", "Completed"),
    ("status", ["VALIDATED"]),
    ("status", 7),
    ("status", True),
    ("status", {}),
    ("status.phase", 3),
    ("status.phase", ""),
    ("status.phase", {"name": "Completed"}),
    ("status.verdict", "validated"),
    ("status.verdict", ["VALIDATED"]),
    ("status.verdict", None),
    ("status.conditions", "Validated=True"),
    ("status.conditions", {"Validated": "True"}),
    ("status.conditions", ["Validated", 1, None, []]),
    ("status.conditions", [{"type": 5, "reason": ["x"], "message": {}}]),
    ("status.findings", "lock-timeout"),
    ("status.findings", [1, "two", None, {"rule": 3, "message": 4, "severity": []}]),
    ("status.message", 42),
    ("status.message", {"text": "x"}),
    ("status.observedGeneration", "1"),
    ("status.observedGeneration", None),
    ("status.observedGeneration", 1.5),
    ("metadata", "add-nickname"),
    ("metadata", _DELETE),
    ("metadata.generation", "1"),
    ("metadata.deletionTimestamp", 0),
    ("status.message", "x" * 100_000),
    ("status.message", "ünïcödé ✓ \u0000 end"),
]


class TestHostileMigrationValidations:
    """Whatever the object holds, the check answers (never an error, so never Unknown), and only
    a VALIDATED verdict for the current generation is ever Healthy."""

    @pytest.mark.parametrize(("path", "value"), HOSTILE_PATHS, ids=lambda v: repr(v)[:40])
    def test_never_an_error_and_never_healthy_by_accident(
        self, argocd_health: Path, path: str, value: Any
    ) -> None:
        for base in cases_of("MigrationValidation").values():
            [result] = evaluate(argocd_health, MV_SCRIPT, [_with(base, path, value)])
            assert "error" not in result, (path, value, result)
            assert result["status"] in {"Healthy", "Progressing", "Degraded"}
            if result["status"] == "Healthy":
                obj = _with(base, path, value)
                status = obj.get("status")
                assert isinstance(status, dict)
                assert status.get("verdict") == "VALIDATED"
                assert status.get("phase") == "Completed"

    def test_objects_that_are_not_objects(self, argocd_health: Path) -> None:
        results = evaluate(argocd_health, MV_SCRIPT, [{}, {"status": None}, {"kind": "X"}])
        assert [r["status"] for r in results] == ["Progressing"] * 3

    def test_a_verdict_without_completion_is_not_healthy(self, argocd_health: Path) -> None:
        running = _with(_validated(), "status.phase", "Running")
        [result] = evaluate(argocd_health, MV_SCRIPT, [running])
        assert result["status"] == "Progressing"

    def test_the_first_error_finding_is_the_message(self, argocd_health: Path) -> None:
        rejected = cases_of("MigrationValidation")["rejected"]
        findings = rejected["status"]["findings"]
        warning_first = _with(rejected, "status.findings", [findings[1], findings[0]])
        [result] = evaluate(argocd_health, MV_SCRIPT, [warning_first])
        assert result["status"] == "Degraded"
        assert result["message"].startswith("REJECTED (lock-timeout): statement 2")


class TestHostileStagingClones:
    @pytest.mark.parametrize(("path", "value"), HOSTILE_PATHS, ids=lambda v: repr(v)[:40])
    def test_never_an_error_and_never_healthy_by_accident(
        self, argocd_health: Path, path: str, value: Any
    ) -> None:
        for base in cases_of("StagingClone").values():
            obj = _with(base, path, value)
            [result] = evaluate(argocd_health, SC_SCRIPT, [obj])
            assert "error" not in result, (path, value, result)
            assert result["status"] in {"Healthy", "Progressing", "Degraded"}
            if result["status"] == "Healthy":
                status = obj["status"]
                assert status["phase"] == "Ready"
                ready = [c for c in status["conditions"] if c["type"] == "Ready"]
                assert ready[0]["status"] == "True"

    @pytest.mark.parametrize(
        "reason",
        [
            "PrimaryNotReady",
            "ReplicasNotReady",
            "Seeding",
            "Unreachable",
            "CheckTimedOut",
            "SecretNotFound",
            "NoStreamingReplica",
            "ReplicaNotStreaming",
            "SeedIncomplete",
        ],
    )
    def test_what_may_still_heal_is_progressing(self, argocd_health: Path, reason: str) -> None:
        obj = copy.deepcopy(cases_of("StagingClone")["unreachable"])
        for condition in obj["status"]["conditions"]:
            if condition["status"] != "True":
                condition["reason"] = reason
        [result] = evaluate(argocd_health, SC_SCRIPT, [obj])
        assert result["status"] == "Progressing", result

    @pytest.mark.parametrize(
        "reason", ["InvalidSpec", "SeedJobFailed", "NotAClone", "NotAPrimary", "NoReplicaDsn"]
    )
    def test_what_needs_a_person_is_degraded(self, argocd_health: Path, reason: str) -> None:
        obj = copy.deepcopy(cases_of("StagingClone")["unreachable"])
        for condition in obj["status"]["conditions"]:
            if condition["status"] != "True":
                condition["reason"] = reason
        [result] = evaluate(argocd_health, SC_SCRIPT, [obj])
        assert result["status"] == "Degraded", result
        assert reason in result["message"]


def test_argocd_cm_and_the_chart_carry_the_same_scripts() -> None:
    cm = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())
    for kind in ("MigrationValidation", "StagingClone"):
        script = (GROUP / kind / "health.lua").read_text()
        assert cm["data"][f"resource.customizations.health.pgparity.io_{kind}"] == script
        chart_copy = ROOT / "charts" / "pgparity" / "files" / "argocd" / f"{kind}.lua"
        assert chart_copy.read_text() == script
    assert cm["metadata"] == {"name": "argocd-cm", "namespace": "argocd"}
