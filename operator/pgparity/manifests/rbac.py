"""The operator's permissions, in one place: the tests apply these, the Helm chart reuses them.

Least privilege: the operator reads and writes its own resources (and their status), creates
the children of clones and validations, reads the ConfigMaps and Secrets they refer to, and
posts Events. It grants validation Jobs only get/patch on their own report ConfigMap — a Role
it may create because it holds those rights itself (RBAC's escalation check).
"""

from __future__ import annotations

from typing import Any

from pgparity.manifests.labels import labels
from pgparity.manifests.pods import restricted_container, restricted_pod, tmp_mount, tmp_volume
from pgparity.models.common import GROUP

OPERATOR = "pgparity-operator"

READ = ["get", "list", "watch"]
OPERATOR_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [GROUP],
        "resources": ["stagingclones", "migrationvalidations"],
        "verbs": [*READ, "patch", "update"],
    },
    {
        "apiGroups": [GROUP],
        "resources": ["stagingclones/status", "migrationvalidations/status"],
        "verbs": ["get", "patch", "update"],
    },
    # kopf discovers the resources it serves and watches namespaces for its selectors.
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": READ,
    },
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": READ},
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    # Children of clones and validations, and the objects their specs refer to.
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create", "patch", "update"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create"]},
    {"apiGroups": [""], "resources": ["services", "serviceaccounts"], "verbs": ["get", "create"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["get", "create"]},
    # Jobs are also watched: validation Jobs are kept in an in-memory index (handlers.indexes).
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": [*READ, "create"]},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "create"],
    },
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": ["get", "create"],
    },
]


def operator_rbac(namespace: str, account: str = OPERATOR) -> list[dict[str, Any]]:
    """ServiceAccount, ClusterRole and ClusterRoleBinding of the operator."""
    meta = {"labels": labels(OPERATOR, "operator")}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": account, "namespace": namespace, **meta},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": OPERATOR, **meta},
            "rules": OPERATOR_RULES,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": OPERATOR, **meta},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": OPERATOR,
            },
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    ]


def operator_deployment(
    namespace: str,
    image: str,
    postgres_image: str,
    account: str = OPERATOR,
    metrics_port: int = 9090,
    liveness_port: int = 8080,
) -> list[dict[str, Any]]:
    """The operator's Deployment (one replica, Recreate: kopf must never run twice) and the
    Service Prometheus scrapes. ``postgres_image``: the repository of builtin clones' servers
    (tagged with their major version)."""
    lab = labels(OPERATOR, "operator")
    selector = {"app.kubernetes.io/name": "pgparity", "app.kubernetes.io/component": "operator"}
    container = {
        "name": "operator",
        "image": image,
        "args": ["operator"],
        "env": [
            {"name": "PGPARITY_IMAGE", "value": image},
            {"name": "PGPARITY_POSTGRES_IMAGE", "value": postgres_image},
            {
                "name": "PGPARITY_OPERATOR_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            {"name": "PGPARITY_METRICS_PORT", "value": str(metrics_port)},
            {"name": "PGPARITY_LIVENESS_PORT", "value": str(liveness_port)},
        ],
        "ports": [
            {"name": "metrics", "containerPort": metrics_port},
            {"name": "healthz", "containerPort": liveness_port},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "healthz"},
            "periodSeconds": 30,
            "failureThreshold": 4,
        },
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [tmp_mount()],
        "securityContext": restricted_container(),
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": OPERATOR, "namespace": namespace, "labels": lab},
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": selector},
                "template": {
                    "metadata": {"labels": lab},
                    "spec": {
                        "serviceAccountName": account,
                        "securityContext": restricted_pod(),
                        "containers": [container],
                        "volumes": [tmp_volume()],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": f"{OPERATOR}-metrics", "namespace": namespace, "labels": lab},
            "spec": {
                "selector": selector,
                "ports": [{"name": "metrics", "port": metrics_port, "targetPort": "metrics"}],
            },
        },
    ]
