"""The ``node`` tier: a real cluster, the operator installed into it with its Helm chart.

Cluster-agnostic: everything comes from the environment, and the tests touch the cluster only
through kubectl and helm (databases through ``kubectl exec``), so the same suite runs against
the one-node cluster of ``tests/nodeplane.py`` (``make test-node``) and against kind
(``make e2e-kind``).

* ``PGPARITY_E2E_KUBECONFIG``: the cluster; without it the tier is skipped.
* ``PGPARITY_E2E_IMAGE``: the pgparity image, as the cluster's nodes know it.
* ``PGPARITY_E2E_POSTGRES_IMAGE``: the PostgreSQL repository (tagged with the major version).
* ``PGPARITY_E2E_KUBECTL``, ``PGPARITY_E2E_HELM``: the clients (default: found on PATH).

``operator_release`` (session) is ``helm install`` of ``charts/pgparity`` — CRDs, RBAC, the
operator's Deployment and metrics Service — and ``helm uninstall`` at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fix_kube import wait_for

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_NAMESPACE = "pgparity-system"
RELEASE = "pgparity"
SKIP_REASON = (
    "node tier: needs a cluster in PGPARITY_E2E_KUBECONFIG "
    "(make test-node starts one; make e2e-kind uses kind)"
)


class ClusterError(RuntimeError):
    """kubectl or helm failed."""


@dataclass(frozen=True)
class Cluster:
    """kubectl and helm against the cluster under test, and the images to run in it."""

    kubeconfig: Path
    image: str
    postgres_image: str
    kubectl_path: str
    helm_path: str

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return self._run(
            [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", *args], input, check, timeout
        )

    def helm(self, *args: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return self._run(
            [self.helm_path, f"--kubeconfig={self.kubeconfig}", *args], None, True, timeout
        )

    @staticmethod
    def _run(
        argv: list[str], input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            argv, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ClusterError(f"{' '.join(argv[2:])}: {proc.stderr.strip()}")
        return proc

    def apply(self, namespace: str, *documents: dict[str, Any]) -> None:
        self.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))

    def get(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        found = self.kubectl("get", "-n", namespace, kind, name, "-o", "json", check=False)
        if found.returncode != 0:
            return None
        document: dict[str, Any] = json.loads(found.stdout)
        return document

    def listed(self, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
        out = self.kubectl("get", "-n", namespace, kind, "-l", selector, "-o", "json").stdout
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    def status(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        status: dict[str, Any] = (self.get(namespace, kind, name) or {}).get("status") or {}
        return status

    def psql(
        self,
        namespace: str,
        pod: str,
        query: str,
        database: str = "postgres",
        user: str = "pgparity",
    ) -> str:
        """One query in the pod's PostgreSQL (over its socket), unaligned output."""
        result = self.kubectl(
            "exec",
            "-n",
            namespace,
            pod,
            "-c",
            "postgres",
            "--",
            "psql",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            user,
            "-d",
            database,
            "-Atc",
            query,
        )
        return result.stdout.strip()


def _client(variable: str, name: str) -> str:
    path = os.environ.get(variable) or shutil.which(name)
    if not path:
        pytest.fail(f"node tier: no {name} (set {variable})")
    return path


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    kubeconfig = os.environ.get("PGPARITY_E2E_KUBECONFIG")
    if not kubeconfig:
        pytest.skip(SKIP_REASON)
    return Cluster(
        kubeconfig=Path(kubeconfig),
        image=os.environ["PGPARITY_E2E_IMAGE"],
        postgres_image=os.environ["PGPARITY_E2E_POSTGRES_IMAGE"],
        kubectl_path=_client("PGPARITY_E2E_KUBECTL", "kubectl"),
        helm_path=_client("PGPARITY_E2E_HELM", "helm"),
    )


@pytest.fixture(scope="session")
def operator_release(cluster: Cluster) -> Iterator[Cluster]:
    """The chart installed as a user installs it; the operator's Pod running."""
    cluster.helm(
        "install",
        RELEASE,
        str(ROOT / "charts" / "pgparity"),
        "--namespace",
        OPERATOR_NAMESPACE,
        "--create-namespace",
        "--set",
        f"image={cluster.image}",
        "--set",
        f"postgresImage={cluster.postgres_image}",
        "--wait",
        "--timeout",
        "5m",
    )
    try:
        yield cluster
    finally:
        cluster.helm("uninstall", RELEASE, "--namespace", OPERATOR_NAMESPACE, "--wait")


OPERATOR = "pgparity-operator"


def running_operator_pod(cluster: Cluster, other_than: str = "") -> dict[str, Any]:
    """The operator's Pod, Running and ready (and not ``other_than``)."""

    def probe() -> dict[str, Any] | None:
        for pod in cluster.listed(
            OPERATOR_NAMESPACE, "pod", "app.kubernetes.io/component=operator"
        ):
            statuses = pod["status"].get("containerStatuses") or []
            if (
                pod["metadata"]["name"] != other_than
                and "deletionTimestamp" not in pod["metadata"]
                and pod["status"].get("phase") == "Running"
                and all(s.get("ready") for s in statuses)
            ):
                return pod
        return None

    return wait_for("the operator's Pod running", probe, timeout=180)


def can(cluster: Cluster, account: str, *args: str) -> bool:
    answer = cluster.kubectl("auth", "can-i", *args, "--as", account, check=False).stdout
    return answer.strip() == "yes"


def delete_namespace(cluster: Cluster, name: str) -> None:
    """Delete and wait: the operator must still run to release its finalizers (its clones'
    daemons), so the namespaces go before ``helm uninstall``."""
    cluster.kubectl("delete", "namespace", name, "--timeout=180s", check=False, timeout=240)


def fresh_namespace(cluster: Cluster, base: str) -> str:
    name = f"{re.sub(r'[^a-z0-9-]+', '-', base.lower())[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    return name


def wait_status(
    cluster: Cluster,
    namespace: str,
    kind: str,
    name: str,
    what: str,
    until: Any,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """The object's status, once ``until(status)`` holds."""

    def probe() -> dict[str, Any] | None:
        status = cluster.status(namespace, kind, name)
        return status if until(status) else None

    return wait_for(what, probe, timeout=timeout)


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


# --------------------------------------------------------------------- shared objects
# "Production": customers with personal data, and their orders. Loaded by the PostgreSQL
# image's own initialisation (/docker-entrypoint-initdb.d), as the official image does it.
PRODUCTION_SQL = """
CREATE TABLE customers (
  id bigint PRIMARY KEY,
  email text NOT NULL UNIQUE,
  full_name text NOT NULL,
  created date NOT NULL
);
INSERT INTO customers
SELECT g, 'customer' || g || '@example.com', 'Customer ' || g, date '2025-01-01' + g % 365
FROM generate_series(1, 5000) g;
CREATE TABLE orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers,
  amount_cents int NOT NULL,
  note text
);
INSERT INTO orders SELECT g, 1 + g % 5000, (g * 37) % 100000, NULL FROM generate_series(1, 20000) g;
CREATE INDEX orders_customer_idx ON orders (customer_id);
ANALYZE;
"""
# Default-deny: every column named; personal data masked inside production.
POLICY = {
    "version": 1,
    "tables": {
        "public.customers": {
            "columns": {
                "id": "keep",
                "email": {"transform": "email", "unique": True},
                "full_name": "name",
                "created": "keep",
            }
        },
        "public.orders": {
            "columns": {"id": "keep", "customer_id": "keep", "amount_cents": "keep", "note": "keep"}
        },
    },
}
PARAMETERS = {"lock_timeout": "2s", "statement_timeout": "10s", "work_mem": "8MB"}


@dataclass(frozen=True)
class Production:
    namespace: str
    pod: str
    dsn: str


def production_manifests(image: str, password: str) -> list[dict[str, Any]]:
    """A Pod of the PostgreSQL image (initialised from PRODUCTION_SQL) and its Service."""
    labels = {"app": "production"}
    container = {
        "name": "postgres",
        "image": image,
        "env": [
            {"name": "POSTGRES_USER", "value": "app"},
            {"name": "POSTGRES_PASSWORD", "value": password},
            {"name": "POSTGRES_DB", "value": "shop"},
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "readinessProbe": {
            "exec": {"command": ["pg_isready", "-U", "app", "-h", "127.0.0.1"]},
            "periodSeconds": 2,
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "initdb", "mountPath": "/docker-entrypoint-initdb.d"},
        ],
    }
    pod = {
        "securityContext": {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999},
        "containers": [container],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "initdb", "configMap": {"name": "initdb"}},
        ],
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "initdb"},
         "data": {"shop.sql": PRODUCTION_SQL}},
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "production", "labels": labels}, "spec": pod},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "production"},
         "spec": {"selector": labels, "ports": [{"port": 5432, "targetPort": 5432}]}},
    ]  # fmt: skip


@pytest.fixture(scope="session")
def production(operator_release: Cluster) -> Iterator[Production]:
    """A production database in its own namespace."""
    cluster = operator_release
    namespace = fresh_namespace(cluster, "production")
    password = uuid.uuid4().hex
    cluster.apply(namespace, *production_manifests(f"{cluster.postgres_image}:15", password))
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Ready", "pod/production", "--timeout=180s"
    )
    dsn = f"host=production.{namespace}.svc port=5432 dbname=shop user=app password={password}"
    try:
        yield Production(namespace, "production", dsn)
    finally:
        delete_namespace(cluster, namespace)


@dataclass(frozen=True)
class Clone:
    namespace: str
    name: str

    def pod(self, role: str) -> str:
        return f"{self.name}-{role}-0"


def live_clone_manifests(name: str, production: Production) -> list[dict[str, Any]]:
    """A builtin clone seeded live from production: source Secret, policy, masking key."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "production-readonly"},
            "stringData": {"dsn": production.dsn},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "shop-policy"},
            "data": {"policy.yaml": yaml.safe_dump(POLICY)},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "masking-key"},
            "stringData": {"key": uuid.uuid4().hex + uuid.uuid4().hex},
        },
        {
            "apiVersion": "pgparity.io/v1alpha1",
            "kind": "StagingClone",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "postgres": {"version": 15, "storage": {"size": "1Gi"}, "parameters": PARAMETERS},
                "source": {
                    "live": {
                        "secretRef": {"name": "production-readonly"},
                        "policy": {"name": "shop-policy", "key": "policy.yaml"},
                        "maskingKeyRef": {"name": "masking-key", "key": "key"},
                    }
                },
            },
        },
    ]


def ready(cluster: Cluster, clone: Clone) -> dict[str, Any]:
    """Wait as a user would: `kubectl wait` for the clone's Ready condition."""
    cluster.kubectl(
        "wait",
        "-n",
        clone.namespace,
        "--for=condition=Ready",
        f"stc/{clone.name}",
        "--timeout=420s",
        timeout=450,
    )
    status = cluster.status(clone.namespace, "stc", clone.name)
    assert status["phase"] == "Ready"
    return status


@pytest.fixture(scope="session")
def live_clone(operator_release: Cluster, production: Production) -> Iterator[Clone]:
    """The StagingClone ``shop`` (primary + one streaming replica), Ready."""
    cluster = operator_release
    namespace = fresh_namespace(cluster, "staging")
    clone = Clone(namespace, "shop")
    cluster.apply(namespace, *live_clone_manifests(clone.name, production))
    try:
        ready(cluster, clone)
        yield clone
    finally:
        delete_namespace(cluster, namespace)
