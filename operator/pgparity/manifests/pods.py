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
