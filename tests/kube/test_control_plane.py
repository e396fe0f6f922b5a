"""The test control plane is a real one: API server, version, and the controllers tests rely on."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from fix_kube import wait_for
from kubeplane import ControlPlane, pinned_versions

pytestmark = pytest.mark.kube


def get_json(plane: ControlPlane, *args: str) -> dict[str, Any] | None:
    """``kubectl get ARGS -o json`` as a dict, or None if the object does not exist."""
    proc = plane.kubectl("get", *args, "-o", "json", check=False)
    if proc.returncode != 0:
        if "NotFound" in proc.stderr:
            return None
        raise AssertionError(f"kubectl get {' '.join(args)} failed: {proc.stderr}")
    obj: dict[str, Any] = json.loads(proc.stdout)
    return obj


def create(plane: ControlPlane, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
    proc = plane.kubectl("create", "-n", namespace, "-o", "json", "-f", "-", input=json.dumps(obj))
    created: dict[str, Any] = json.loads(proc.stdout)
    return created


def configmap(name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if owner is not None:
        ref = {"apiVersion": "v1", "kind": owner["kind"], "name": owner["metadata"]["name"]}
        metadata["ownerReferences"] = [{**ref, "uid": owner["metadata"]["uid"]}]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"k": "v"}}


def job(name: str) -> dict[str, Any]:
    container = {"name": "c", "image": "registry.invalid/never-pulled:0", "command": ["true"]}
    pod_spec = {"restartPolicy": "Never", "containers": [container]}
    spec = {"backoffLimit": 0, "template": {"spec": pod_spec}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": spec}


def wait_for_default_serviceaccount(plane: ControlPlane, namespace: str) -> dict[str, Any]:
    return wait_for(
        f"the default ServiceAccount in {namespace}",
        lambda: get_json(plane, "serviceaccount", "default", "-n", namespace),
    )


def test_apiserver_ready_and_pinned_version(kube_plane: ControlPlane) -> None:
    assert kube_plane.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    version = json.loads(kube_plane.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == "v" + pinned_versions()["KUBE_VERSION"]
    assert kube_plane.server.startswith("https://127.0.0.1:")


def test_namespace_gets_default_serviceaccount_and_root_ca(
    kube_plane: ControlPlane, kube_namespace: str
) -> None:
    # Made by kube-controller-manager's serviceaccount and root-ca-cert-publisher controllers.
    wait_for_default_serviceaccount(kube_plane, kube_namespace)
    cm = wait_for(
        "the kube-root-ca.crt ConfigMap",
        lambda: get_json(kube_plane, "configmap", "kube-root-ca.crt", "-n", kube_namespace),
    )
    ca_pem = (kube_plane.dir / "pki" / "ca.crt").read_text()
    assert cm["data"]["ca.crt"].strip() == ca_pem.strip()


def test_garbage_collector_deletes_dependents(
    kube_plane: ControlPlane, kube_namespace: str
) -> None:
    owner = create(kube_plane, kube_namespace, configmap("owner"))
    create(kube_plane, kube_namespace, configmap("dependent", owner=owner))
    kube_plane.kubectl("delete", "configmap", "owner", "-n", kube_namespace, "--wait=false")
    wait_for(
        "garbage collection of the dependent ConfigMap",
        lambda: get_json(kube_plane, "configmap", "dependent", "-n", kube_namespace) is None,
    )


def test_namespace_deletion_completes(kube_plane: ControlPlane) -> None:
    # Without the namespace controller a deleted namespace stays Terminating forever.
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    kube_plane.kubectl("create", "namespace", name)
    create(kube_plane, name, configmap("content"))
    kube_plane.kubectl("delete", "namespace", name, "--wait=false")
    wait_for("the namespace to be gone", lambda: get_json(kube_plane, "namespace", name) is None)


def test_job_controller_creates_pod(kube_plane: ControlPlane, kube_namespace: str) -> None:
    # The ServiceAccount admission plugin is on, so Pods need the namespace's default SA first.
    wait_for_default_serviceaccount(kube_plane, kube_namespace)
    create(kube_plane, kube_namespace, job("probe"))

    def job_pods() -> list[dict[str, Any]] | None:
        selector = "batch.kubernetes.io/job-name=probe"
        pods = get_json(kube_plane, "pods", "-n", kube_namespace, "-l", selector) or {}
        items: list[dict[str, Any]] = pods.get("items", [])
        return items or None

    pods = wait_for("a Pod made by the job controller", job_pods)
    assert len(pods) == 1
    assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "Job"
    # This plane has no kube-scheduler and no kubelet: the Pod is never bound to a node nor run
    # (its image is never pulled), so it stays Pending.
    assert pods[0]["status"].get("phase") == "Pending"
    assert not pods[0]["spec"].get("nodeName")
