"""The chart with every opt-in on, and the GitOps examples, accepted by a real API server.

The prometheus-operator's CRDs come from its Go module (``scripts/gitops-tools.sh promcrds``), so
``ServiceMonitor``, ``PodMonitor`` and ``PrometheusRule`` are checked against the schemas a real
installation enforces — ``kubectl apply --dry-run=server``: admission, schema validation and CEL
rules run, nothing is stored.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from fix_kube import wait_established
from fix_operator import install_crds
from kubeplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "pgparity"
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


@pytest.fixture(scope="module")
def monitoring_crds(kube_plane: ControlPlane, prometheus_operator_crds: Path) -> None:
    for name in MONITORING_CRDS:
        path = prometheus_operator_crds / f"monitoring.coreos.com_{name}.yaml"
        # Server-side: these CRDs are too large for the last-applied annotation.
        kube_plane.kubectl("apply", "--server-side", "-f", str(path))
    wait_established(kube_plane, *(f"{name}.monitoring.coreos.com" for name in MONITORING_CRDS))
    install_crds(kube_plane)


def server_dry_run(plane: ControlPlane, namespace: str, manifests: str) -> list[str]:
    """What the API server would create; fails on the first object it refuses."""
    done = plane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", "-", input=manifests, check=False
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.strip()]


def helm_template(helm: Path, namespace: str, *settings: str) -> str:
    args = [arg for setting in settings for arg in ("--set", setting)]
    done = subprocess.run(
        [str(helm), "template", "pgparity", str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("monitor", ["serviceMonitor", "podMonitor"])
def test_the_chart_with_monitoring_on_is_accepted(
    kube_plane: ControlPlane,
    kube_namespace: str,
    monitoring_crds: None,
    helm: Path,
    monitor: str,
) -> None:
    manifests = helm_template(
        helm,
        kube_namespace,
        f"monitoring.{monitor}.enabled=true",
        f"monitoring.{monitor}.additionalLabels.release=kube-prometheus-stack",
        "monitoring.prometheusRule.enabled=true",
        "monitoring.grafanaDashboard.enabled=true",
        "argocd.healthChecks.enabled=true",
    )
    expected = {
        f"{doc['kind']}/{doc['metadata']['name']}" for doc in yaml.safe_load_all(manifests) if doc
    }
    kind = "servicemonitor" if monitor == "serviceMonitor" else "podmonitor"
    accepted = server_dry_run(kube_plane, kube_namespace, manifests)
    assert len(accepted) == len(expected), accepted
    assert all(line.endswith("(server dry run)") for line in accepted), accepted
    text = "\n".join(accepted)
    for pattern in (
        rf"{kind}\.monitoring\.coreos\.com/pgparity-operator created",
        r"prometheusrule\.monitoring\.coreos\.com/pgparity created",
        r"configmap/pgparity-dashboard created",
        r"configmap/pgparity-argocd-health-checks created",
        r"deployment\.apps/pgparity-operator created",
    ):
        assert re.search(pattern, text), (pattern, text)


def test_a_rule_the_prometheus_operator_would_refuse_is_refused(
    kube_plane: ControlPlane, kube_namespace: str, monitoring_crds: None, helm: Path
) -> None:
    """The dry run is a real check: the CRD's schema refuses a rule without an expression."""
    manifests = helm_template(helm, kube_namespace, "monitoring.prometheusRule.enabled=true")
    rule = next(
        doc for doc in yaml.safe_load_all(manifests) if doc and doc["kind"] == "PrometheusRule"
    )
    del rule["spec"]["groups"][0]["rules"][0]["expr"]
    done = kube_plane.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        kube_namespace,
        "-f",
        "-",
        input=yaml.safe_dump(rule),
        check=False,
    )
    assert done.returncode != 0
    assert "expr" in done.stderr


@pytest.mark.parametrize(
    "directory", ["examples/argocd/shop", "examples/flux/gate", "examples/flux/app"]
)
def test_the_gitops_examples_are_accepted(
    kube_plane: ControlPlane, kube_namespace: str, monitoring_crds: None, directory: str
) -> None:
    files = sorted((ROOT / directory).glob("*.yaml"))
    manifests = "\n---\n".join(path.read_text() for path in files)
    accepted = server_dry_run(kube_plane, kube_namespace, manifests)
    assert len(accepted) == len(files), accepted


def test_the_argocd_cm_patch_merges_into_argo_cds_configmap(kube_plane: ControlPlane) -> None:
    """The README's command, on an argocd-cm that already holds Argo CD's own settings."""
    patch = ROOT / "deploy" / "argocd" / "argocd-cm.yaml"
    kube_plane.kubectl("create", "namespace", "argocd")
    try:
        kube_plane.kubectl(
            "create",
            "configmap",
            "argocd-cm",
            "-n",
            "argocd",
            "--from-literal=url=https://argocd.example.com",
            "--from-literal=resource.customizations.health.cert-manager.io_Certificate=return {}",
        )
        kube_plane.kubectl(
            "-n",
            "argocd",
            "patch",
            "configmap",
            "argocd-cm",
            "--type",
            "merge",
            "--patch-file",
            str(patch),
        )
        data = yaml.safe_load(
            kube_plane.kubectl("get", "configmap", "argocd-cm", "-n", "argocd", "-o", "yaml").stdout
        )["data"]
        expected = yaml.safe_load(patch.read_text())["data"]
        assert {k: data[k] for k in expected} == expected
        assert data["url"] == "https://argocd.example.com"
        assert "resource.customizations.health.cert-manager.io_Certificate" in data
    finally:
        kube_plane.kubectl("delete", "namespace", "argocd", "--wait=false", check=False)
