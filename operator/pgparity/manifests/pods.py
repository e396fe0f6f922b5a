"""What the containers running the pgparity image share: a locked-down security context with a
read-only root filesystem, and the one writable directory the program needs there, /tmp.

/tmp is not optional: the Kubernetes client's discovery cache (``tempfile.gettempdir()``) fails
with "No usable temporary directory" without it — a validation Job then dies after computing
its verdict, before writing the report. Every builder returns fresh dicts (no shared objects
between manifests).
"""

from __future__ import annotations

from typing import Any

PGPARITY_UID = 10001  # the Dockerfile's USER
TMP = "/tmp"  # noqa: S108 - an emptyDir of the pod's own, not the host's /tmp
TMP_SIZE = "1Gi"


def restricted_container() -> dict[str, Any]:
    """securityContext of a container: no privilege escalation, no capabilities, read-only."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def restricted_pod(uid: int = PGPARITY_UID) -> dict[str, Any]:
    """securityContext of a pod: a fixed non-root user."""
    return {"runAsNonRoot": True, "runAsUser": uid}


def tmp_volume() -> dict[str, Any]:
    return {"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE}}


def tmp_mount() -> dict[str, Any]:
    return {"name": "tmp", "mountPath": TMP}


def secret_env(variable: str, secret: str, key: str = "dsn") -> dict[str, Any]:
    """An environment variable from a Secret's key (how Jobs get DSNs: never on argv)."""
    return {"name": variable, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def report_writer_access(
    account: str, configmap: str, meta: dict[str, Any], namespace: str
) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding ``account``: get and patch the one ConfigMap a
    Job writes its report into, nothing else. ``meta`` is the objects' metadata (its name is
    replaced)."""
    named = {**meta, "name": account}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(named)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": dict(named),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [configmap],
                    "verbs": ["get", "patch", "update"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": dict(named),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": account},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
        },
    ]
