"""The chart with its monitoring: ``helm lint`` under values.schema.json, every opt-in object
rendered as it must be (the monitors find the operator's Service and Pod, the dashboard and the
Argo CD keys are the committed files), and values the schema refuses. ``tests/kube`` applies the
same rendering to a real API server with the prometheus-operator CRDs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pgparity"
EVERYTHING = (
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.grafanaDashboard.enabled=true",
    "argocd.healthChecks.enabled=true",
)


def helm_run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=120, check=False
    )


def rendered(helm: Path, *settings: str) -> dict[str, dict[str, Any]]:
    """``helm template`` with ``settings``: the objects by kind/name."""
    args = [arg for setting in settings for arg in ("--set", setting)]
    done = helm_run(
        helm, "template", "pgparity", str(CHART), "--namespace", "pgparity-system", *args
    )
    assert done.returncode == 0, done.stderr
    return {
        f"{doc['kind']}/{doc['metadata']['name']}": doc
        for doc in yaml.safe_load_all(done.stdout)
        if doc
    }


@pytest.mark.parametrize("settings", [(), EVERYTHING], ids=["defaults", "everything on"])
def test_helm_lint(helm: Path, settings: tuple[str, ...]) -> None:
    args = [arg for setting in settings for arg in ("--set", setting)]
    done = helm_run(helm, "lint", "--strict", str(CHART), *args)
    assert done.returncode == 0, done.stdout + done.stderr


def test_monitoring_is_opt_in(helm: Path) -> None:
    kinds = {key.split("/")[0] for key in rendered(helm)}
    assert kinds == {
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    }


def test_the_monitors_find_the_operator(helm: Path) -> None:
    objects = rendered(helm, "monitoring.serviceMonitor.enabled=true")
    service = objects["Service/pgparity-operator-metrics"]
    deployment = objects["Deployment/pgparity-operator"]
    monitor = objects["ServiceMonitor/pgparity-operator"]
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": ["pgparity-system"]}
    [endpoint] = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    # The series keep the namespace of the validation or clone they are about, and the job is
    # what the PgparityOperatorDown rule looks for.
    assert endpoint["honorLabels"] is True
    assert service["metadata"]["labels"][spec["jobLabel"]] == "pgparity"

    pod = rendered(helm, "monitoring.podMonitor.enabled=true")["PodMonitor/pgparity-operator"]
    template = deployment["spec"]["template"]
    assert pod["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    [endpoint] = pod["spec"]["podMetricsEndpoints"]
    ports = {p["name"] for c in template["spec"]["containers"] for p in c["ports"]}
    assert endpoint["port"] in ports
    assert endpoint["honorLabels"] is True
    assert template["metadata"]["labels"][pod["spec"]["jobLabel"]] == "pgparity"


def test_selector_labels_from_values(helm: Path) -> None:
    objects = rendered(
        helm,
        *EVERYTHING,
        "monitoring.serviceMonitor.additionalLabels.release=kube-prometheus-stack",
        "monitoring.prometheusRule.additionalLabels.release=kube-prometheus-stack",
        "monitoring.grafanaDashboard.namespace=grafana",
        "monitoring.grafanaDashboard.annotations.grafana_folder=Databases",
    )
    assert objects["ServiceMonitor/pgparity-operator"]["metadata"]["labels"]["release"] == (
        "kube-prometheus-stack"
    )
    assert objects["PrometheusRule/pgparity"]["metadata"]["labels"]["release"] == (
        "kube-prometheus-stack"
    )
    dashboard = objects["ConfigMap/pgparity-dashboard"]
    assert dashboard["metadata"]["namespace"] == "grafana"
    assert dashboard["metadata"]["annotations"] == {"grafana_folder": "Databases"}


def test_the_dashboard_configmap_is_the_committed_json(helm: Path) -> None:
    dashboard = rendered(helm, "monitoring.grafanaDashboard.enabled=true")[
        "ConfigMap/pgparity-dashboard"
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    committed = (CHART / "dashboards" / "pgparity.json").read_text()
    assert json.loads(dashboard["data"]["pgparity.json"]) == json.loads(committed)


def test_the_argocd_configmap_holds_the_argocd_cm_keys(helm: Path) -> None:
    health = rendered(helm, "argocd.healthChecks.enabled=true")[
        "ConfigMap/pgparity-argocd-health-checks"
    ]
    patch = yaml.safe_load((ROOT / "deploy" / "argocd" / "argocd-cm.yaml").read_text())
    assert health["data"] == patch["data"]


def test_both_monitors_at_once_are_refused(helm: Path) -> None:
    done = helm_run(
        helm,
        "template",
        "pgparity",
        str(CHART),
        "--set",
        "monitoring.serviceMonitor.enabled=true",
        "--set",
        "monitoring.podMonitor.enabled=true",
    )
    assert done.returncode != 0
    assert "scraped twice" in done.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("monitoring.serviceMonitr.enabled=true", "additional properties 'serviceMonitr'"),
        ("monitoring.serviceMonitor.interval=30", "got number, want string"),
        ("monitoring.serviceMonitor.interval=half a minute", "does not match pattern"),
        ("monitoring.prometheusRule.cloneNotReadyFor=15", "got number, want string"),
        ("monitoring.prometheusRule.replicationLagBytes=0", "minimum"),
        ("monitoring.prometheusRule.lockWaitSeconds=-1", "exclusiveMinimum"),
        ("monitoring.prometheusRule.excludeRules={NoSuchAlert}", "value must be one of"),
        ("monitoring.prometheusRule.runbookBaseURL=docs/runbooks/", "does not match pattern"),
        ('monitoring.prometheusRule.operatorJob=a"b', "does not match pattern"),
        ("monitoring.grafanaDashboard.namespace=Not_A_Namespace", "does not match pattern"),
        ("argocd.healthChecks.enabled=yes", "got string, want boolean"),
        ("postgresImage=postgres:15", "does not match pattern"),
        ("image=", "minLength"),
    ],
)
def test_the_schema_refuses_bad_values(helm: Path, setting: str, complaint: str) -> None:
    done = helm_run(helm, "lint", str(CHART), "--set", setting)
    assert done.returncode != 0
    assert complaint in done.stdout + done.stderr, done.stdout + done.stderr
