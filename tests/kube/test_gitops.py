"""The verdict as a deploy gate and as an alert, end to end: the operator in-process (its Jobs
played as in test_operator.py), real PostgreSQL, and what the tools outside make of the live
objects — Argo CD's health checks in Argo CD's Lua interpreter, kstatus as Flux and cli-utils
compute it, ``kubectl wait`` — and a real Prometheus server that scrapes the operator's /metrics
with the shipped rules and evaluates every alert and every dashboard query."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fix_kube import wait_for
from fix_operator import (
    JobPlayer,
    Operator,
    external_clone,
    get,
    install_crds,
    listed,
    ready_clone,
    wait_status,
)
from fix_pg import PgDatabase, _create_database, _drop_database
from fix_tools import PrometheusServer, json_tool
from kubeplane import ControlPlane
from pgparity.pg.localcluster import LocalCluster

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / "deploy" / "argocd" / "resource_customizations" / "pgparity.io"
RULES = ROOT / "deploy" / "monitoring" / "pgparity-rules.yaml"
DASHBOARD = ROOT / "charts" / "pgparity" / "dashboards" / "pgparity.json"
SAFE = "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS flag boolean;"
# A type change rewrites the table: a warning, which strict: true makes an error.
REWRITE = "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;"


@pytest.fixture
def clone_db(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    db = _create_database(pg_cluster, clone=True)
    db.execute(
        "CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL);"
        "INSERT INTO accounts SELECT g, g % 1000 FROM generate_series(1, 20000) g;"
    )
    pg_cluster.wait_replay()
    yield db
    _drop_database(pg_cluster, db.name)


def manifest(name: str, clone: str, sql_text: str, **spec: Any) -> str:
    return json.dumps(
        {
            "apiVersion": "pgparity.io/v1alpha1",
            "kind": "MigrationValidation",
            "metadata": {"name": name},
            "spec": {"cloneRef": {"name": clone}, "migration": {"sql": sql_text}, **spec},
        }
    )


def validate(
    plane: ControlPlane, namespace: str, workdir: Path, name: str, sql_text: str, **spec: Any
) -> dict[str, Any]:
    """Create a validation on clone ``staging``, play its Job, and return its verdict status."""
    plane.kubectl(
        "apply", "-n", namespace, "-f", "-", input=manifest(name, "staging", sql_text, **spec)
    )
    job = wait_for(
        f"the Job of {name}",
        lambda: next(iter(listed(plane, namespace, "job", f"pgparity.io/validation={name}")), None),
    )
    player = JobPlayer(plane, namespace, job, workdir / name)
    (workdir / name).mkdir()
    result = player.run()
    player.finish(result.returncode == 0)
    return wait_status(
        plane, namespace, "mv", name, f"{name}'s verdict", lambda s: bool(s.get("verdict"))
    )


def live(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    found = get(plane, namespace, kind, name)
    assert found is not None
    return found


def argo(runner: Path, obj: dict[str, Any]) -> dict[str, str]:
    [result] = json_tool(runner, [obj], "eval", str(HEALTH / obj["kind"] / "health.lua"))
    return result


def kstatus_of(tool: Path, obj: dict[str, Any]) -> str:
    [result] = json_tool(tool, [obj])
    return result["status"]


def test_a_new_validation_is_in_progress_before_the_operator_writes_a_word(
    kube_plane: ControlPlane, kube_namespace: str, argocd_health: Path, kstatus: Path
) -> None:
    """No operator here: the object as the API server returns it on creation. Without the
    CRD's status default, kstatus would call it Current and a Flux gate would open at once."""
    install_crds(kube_plane)
    created = json.loads(
        kube_plane.kubectl(
            "create",
            "-n",
            kube_namespace,
            "-o",
            "json",
            "-f",
            "-",
            input=manifest("fresh", "staging", SAFE),
        ).stdout
    )
    assert created["status"] == {"observedGeneration": 0}
    assert kstatus_of(kstatus, created) == "InProgress"
    assert argo(argocd_health, created) == {
        "status": "Progressing",
        "message": "Waiting for the pgparity operator",
    }


def test_the_gate_follows_the_verdict(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    clone_db: PgDatabase,
    player_workdir: Path,
    argocd_health: Path,
    kstatus: Path,
) -> None:
    external_clone(kube_plane, kube_namespace, "staging", clone_db)
    ready_clone(kube_plane, kube_namespace, "staging")
    clone = live(kube_plane, kube_namespace, "stc", "staging")
    assert argo(argocd_health, clone)["status"] == "Healthy"
    assert kstatus_of(kstatus, clone) == "Current"

    # Waiting for a clone that does not exist: in progress everywhere.
    kube_plane.kubectl(
        "apply", "-n", kube_namespace, "-f", "-", input=manifest("early", "nowhere", SAFE)
    )
    waiting = wait_status(
        kube_plane, kube_namespace, "mv", "early", "waiting", lambda s: bool(s.get("phase"))
    )
    assert waiting["phase"] == "WaitingForClone"
    early = live(kube_plane, kube_namespace, "mv", "early")
    assert argo(argocd_health, early)["status"] == "Progressing"
    assert kstatus_of(kstatus, early) == "InProgress"

    validate(kube_plane, kube_namespace, player_workdir, "good", SAFE)
    good = live(kube_plane, kube_namespace, "mv", "good")
    assert argo(argocd_health, good) == {
        "status": "Healthy",
        "message": good["status"]["message"],
    }
    assert kstatus_of(kstatus, good) == "Current"
    kube_plane.kubectl("wait", "--for=condition=Ready", "mv/good", "-n", kube_namespace)

    rejected = validate(kube_plane, kube_namespace, player_workdir, "bad", REWRITE, strict=True)
    assert rejected["verdict"] == "REJECTED"
    bad = live(kube_plane, kube_namespace, "mv", "bad")
    health = argo(argocd_health, bad)
    assert health["status"] == "Degraded"
    first = bad["status"]["findings"][0]  # the operator lists errors first
    assert first["severity"] == "error"
    assert health["message"] == f"REJECTED ({first['rule']}): {first['message']}"
    assert "table-rewrite" in {f["rule"] for f in bad["status"]["findings"]}
    assert kstatus_of(kstatus, bad) == "Failed"
    kube_plane.kubectl("wait", "--for=condition=Stalled", "mv/bad", "-n", kube_namespace)
    ready = kube_plane.kubectl(
        "wait", "--for=condition=Ready", "mv/bad", "-n", kube_namespace, "--timeout=2s", check=False
    )
    assert ready.returncode != 0

    # A new migration under the same name: the old verdict stops counting at once.
    kube_plane.kubectl(
        "patch",
        "mv",
        "bad",
        "-n",
        kube_namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"migration": {"sql": SAFE}}}),
    )
    changed = live(kube_plane, kube_namespace, "mv", "bad")
    if changed["status"].get("observedGeneration") != changed["metadata"]["generation"]:
        assert argo(argocd_health, changed)["status"] == "Progressing"
        assert kstatus_of(kstatus, changed) == "InProgress"


def test_a_clone_that_needs_a_person_is_degraded_and_stalled(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    pg_cluster: LocalCluster,
    argocd_health: Path,
    kstatus: Path,
) -> None:
    plain = _create_database(pg_cluster, clone=False)  # not marked as a clone: maybe production
    try:
        external_clone(kube_plane, kube_namespace, "suspicious", plain)
        wait_status(
            kube_plane,
            kube_namespace,
            "stc",
            "suspicious",
            "NotAClone",
            lambda s: any(c.get("reason") == "NotAClone" for c in s.get("conditions", [])),
        )
        clone = live(kube_plane, kube_namespace, "stc", "suspicious")
        health = argo(argocd_health, clone)
        assert health["status"] == "Degraded"
        assert "NotAClone" in health["message"]
        assert kstatus_of(kstatus, clone) == "Failed"
    finally:
        _drop_database(pg_cluster, plain.name)


def _expressions() -> dict[str, str]:
    """Every alert expression and every dashboard query, Grafana's variables filled in."""
    found = {
        rule["alert"]: rule["expr"]
        for rule in yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    }
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for index, target in enumerate(panel.get("targets", [])):
            expr = target["expr"].replace("$__rate_interval", "1m")
            found[f"{panel['title']} #{index}"] = re.sub(r"\$(namespace|clone)\b", ".*", expr)
    return found


def _label_values(board: dict[str, Any]) -> list[tuple[str, str]]:
    """The dashboard's variables as (series selector, label)."""
    pairs = []
    for variable in board["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"])
        assert match, variable["query"]
        pairs.append((re.sub(r"\$(namespace|clone)\b", ".*", match[1]), match[2]))
    return pairs


def test_a_real_prometheus_alerts_on_a_rejected_validation(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    operator_plane: dict[str, str],
    clone_db: PgDatabase,
    player_workdir: Path,
    prometheus_server: Callable[[list[str], Path], PrometheusServer],
) -> None:
    target = f"127.0.0.1:{operator_plane['PGPARITY_METRICS_PORT']}"
    prometheus = prometheus_server([target], RULES)
    wait_for(
        "the operator scraped",
        lambda: prometheus.api("query", query='up{job="pgparity"} == 1')["result"] or None,
    )
    rules = prometheus.api("rules")["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} >= {"PgparityValidationRejected"}
    assert all(r["health"] != "err" for g in rules for r in g["rules"]), rules

    external_clone(kube_plane, kube_namespace, "staging", clone_db)
    ready_clone(kube_plane, kube_namespace, "staging")
    validate(kube_plane, kube_namespace, player_workdir, "good", SAFE)
    validate(kube_plane, kube_namespace, player_workdir, "bad", REWRITE, strict=True)

    def rejected_alerts() -> list[dict[str, Any]] | None:
        alerts = [
            a
            for a in prometheus.api("alerts")["alerts"]
            if a["labels"]["alertname"] == "PgparityValidationRejected"
            and a["labels"].get("namespace") == kube_namespace
            and a["state"] == "firing"
        ]
        return alerts or None

    [alert] = wait_for("PgparityValidationRejected firing", rejected_alerts, timeout=120)
    assert {k: alert["labels"][k] for k in ("validation", "clone", "name", "severity")} == {
        "validation": "bad",
        "clone": "staging",
        "name": "bad",
        "severity": "warning",
    }
    notes = alert["annotations"]
    assert notes["summary"] == f"Migration {kube_namespace}/bad was REJECTED"
    assert notes["runbook_url"].endswith("/docs/runbooks/PgparityValidationRejected.md")

    # Every alert and every dashboard query evaluates without error; those about the objects
    # of this test find them.
    results = {
        name: prometheus.api("query", query=expr)["result"] for name, expr in _expressions().items()
    }
    for name in (
        "Verdicts standing #0",
        "Validations by phase #0",
        "Clone readiness #0",
        "Replication lag per clone #0",
        "Lock waits #0",
        "Blocked sessions #0",
        "pgparity alerts firing #0",
        "Operator #0",
    ):
        assert results[name], name
    assert results["PgparityValidationRejected"]
    for quiet in ("PgparityOperatorDown", "PgparityCloneNotReady", "PgparityValidationFailed"):
        assert not [r for r in results[quiet] if r["metric"].get("namespace") == kube_namespace]
    standing = {
        (r["metric"]["name"], r["metric"]["verdict"])
        for r in results["Verdicts standing #0"]
        if r["metric"]["namespace"] == kube_namespace
    }
    assert standing == {("good", "VALIDATED"), ("bad", "REJECTED")}
    for selector, label in _label_values(json.loads(DASHBOARD.read_text())):
        values = prometheus.api(f"label/{label}/values", **{"match[]": selector})
        if label == "namespace":
            assert kube_namespace in values
        else:
            assert "staging" in values

    # Deleting the validation removes its series, and the alert resolves.
    kube_plane.kubectl("delete", "mv", "bad", "-n", kube_namespace, "--timeout=60s")
    wait_for("the alert resolved", lambda: rejected_alerts() is None, timeout=120)
