"""The operator as users install it: ``helm install`` of charts/pgparity puts the CRDs, the RBAC
and the operator's Deployment into the cluster; the operator runs in its own image, under the
chart's ServiceAccount, with a read-only root filesystem and a writable /tmp; Prometheus scrapes
``/metrics`` through the chart's Service."""

from __future__ import annotations

import pytest

from fix_kube import wait_for
from fix_node import (
    OPERATOR,
    OPERATOR_NAMESPACE,
    RELEASE,
    ROOT,
    Clone,
    Cluster,
    can,
    running_operator_pod,
)

pytestmark = pytest.mark.node

METRICS = (
    f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/services/{OPERATOR}-metrics:metrics/proxy/metrics"
)


def test_operator_runs_in_its_image_under_the_charts_rbac(operator_release: Cluster) -> None:
    cluster = operator_release
    cluster.helm("lint", str(ROOT / "charts" / "pgparity"))
    assert '"status":"deployed"' in cluster.helm(
        "status", RELEASE, "--namespace", OPERATOR_NAMESPACE, "-o", "json"
    ).stdout.replace(" ", "")
    pod = running_operator_pod(cluster)
    spec = pod["spec"]
    [container] = spec["containers"]
    assert container["image"] == cluster.image
    assert container["args"] == ["operator"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PGPARITY_IMAGE"] == cluster.image  # the Jobs run the same image
    assert env["PGPARITY_POSTGRES_IMAGE"] == cluster.postgres_image
    assert spec["serviceAccountName"] == OPERATOR
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
    assert "emptyDir" in next(v for v in spec["volumes"] if v["name"] == tmp["name"])
    [state] = pod["status"]["containerStatuses"]
    assert "running" in state["state"]
    # The chart's RBAC: what the operator needs, and no more.
    account = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR}"
    assert can(cluster, account, "create", "statefulsets", "-n", "default")
    assert can(cluster, account, "patch", "migrationvalidations.pgparity.io/status", "-A")
    assert not can(cluster, account, "delete", "secrets", "-n", "default")
    assert not can(cluster, account, "delete", "statefulsets", "-n", "default")
    assert not can(cluster, account, "*", "*")


def test_metrics_are_scraped_through_the_service(
    operator_release: Cluster, live_clone: Clone
) -> None:
    cluster = operator_release
    label = f'name="{live_clone.name}",namespace="{live_clone.namespace}"'

    def scrape() -> str:
        # Through the API server's Service proxy: what a Prometheus in the cluster reaches.
        return cluster.kubectl("get", "--raw", METRICS).stdout

    text = wait_for(
        "the clone's sampled gauges",
        lambda: t if f"pgparity_replication_lag_bytes{{{label}}}" in (t := scrape()) else None,
        timeout=120,
    )
    assert f"pgparity_clone_ready{{{label}}} 1.0" in text
    assert f"pgparity_lock_waiting_sessions{{{label}}}" in text
    assert "# TYPE pgparity_validations_total counter" in text
