"""The objects of a clone's parity check: a Job running ``pgparity parity --floor-only``
against production and the clone, and the ConfigMap it writes the result into.

One Job per check round (``round`` = minutes since the epoch // ``intervalMinutes``, passed in:
builders have no clock), owned by the StagingClone and removed an interval after it finished.
Production's DSN comes from ``spec.parity.productionSecretRef`` (key ``dsn``), the clone's from
its own Secret; both reach the Job as environment variables, never as arguments. The Job may
get and patch the one report ConfigMap, nothing else.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pgparity.manifests.clone import CloneRef
from pgparity.manifests.labels import CLONE_LABEL, child_name, labels, metadata
from pgparity.manifests.pods import (
    report_writer_access,
    restricted_container,
    restricted_pod,
    secret_env,
    tmp_mount,
    tmp_volume,
)
from pgparity.models.codec import encode
from pgparity.models.staging_clone import ParitySpec

DEADLINE_SECONDS = 600


def parity_names(clone: str, parity: ParitySpec, round_: int) -> dict[str, str]:
    """Names; the Job's carries the round and a hash of spec.parity, so that a changed spec
    is checked at once rather than at the next round."""
    return {
        "report": child_name(clone, "parity"),
        "account": child_name(clone, "parity-checker"),
        "job": child_name(clone, f"parity-{round_}-{_digest(parity)}"),
        "derive": child_name(clone, f"parity-derive-{_digest(parity)}"),
    }


def _digest(parity: ParitySpec) -> str:
    return hashlib.sha256(json.dumps(encode(parity), sort_keys=True).encode()).hexdigest()[:6]


def check_round(epoch_seconds: float, parity: ParitySpec) -> int:
    """Which check a moment belongs to: a new Job every ``intervalMinutes``."""
    return int(epoch_seconds // (parity.interval_minutes * 60))


def parity_command(parity: ParitySpec, report: str) -> list[str]:
    command = [
        "pgparity",
        "parity",
        "--floor-only",
        "--format",
        "json",
        "--report-configmap",
        report,
    ]
    return command + (["--role", parity.role] if parity.role else [])


def derive_command(parity: ParitySpec, report: str) -> list[str]:
    """Production's parameters for a builtin clone that is yet to be created."""
    command = ["pgparity", "parity", "--emit", "parameters", "--report-configmap", report]
    return command + (["--role", parity.role] if parity.role else [])


def build_parity_objects(
    clone: CloneRef, parity: ParitySpec, clone_secret: str, round_: int, *, image: str
) -> list[dict[str, Any]]:
    """The report ConfigMap, the Job's narrow permissions, and the Job of round ``round_``."""
    n = parity_names(clone.name, parity, round_)
    env = [
        secret_env("PGPARITY_PRODUCTION_DSN", parity.production_secret_ref.name),
        secret_env("PGPARITY_STAGING_DSN", clone_secret),
    ]
    job = _job(clone, parity, n["job"], parity_command(parity, n["report"]), env, image)
    return [*_report_and_access(clone, n), job]


def build_derive_objects(
    clone: CloneRef, parity: ParitySpec, *, image: str
) -> list[dict[str, Any]]:
    """The Job that reads production's parameters (no clone yet: production's DSN only)."""
    n = parity_names(clone.name, parity, 0)
    env = [secret_env("PGPARITY_PRODUCTION_DSN", parity.production_secret_ref.name)]
    job = _job(clone, parity, n["derive"], derive_command(parity, n["report"]), env, image)
    return [*_report_and_access(clone, n), job]


def _labels(clone: CloneRef) -> dict[str, str]:
    return labels(clone.name, "parity", **{CLONE_LABEL: clone.name})


def _report_and_access(clone: CloneRef, n: dict[str, str]) -> list[dict[str, Any]]:
    holder = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(n["report"], clone.namespace, clone.owner, _labels(clone)),
        "data": {},
    }
    access = report_writer_access(
        n["account"],
        n["report"],
        metadata(n["account"], clone.namespace, clone.owner, _labels(clone)),
        clone.namespace,
    )
    return [holder, *access]


def _job(
    clone: CloneRef,
    parity: ParitySpec,
    name: str,
    command: list[str],
    env: list[dict[str, Any]],
    image: str,
) -> dict[str, Any]:
    lab = _labels(clone)
    container = {
        "name": "parity",
        "image": image,
        "command": command,
        "env": [
            *env,
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
        ],
        "resources": {
            "requests": {"cpu": "50m", "memory": "96Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "volumeMounts": [tmp_mount()],
        "securityContext": restricted_container(),
    }
    account = child_name(clone.name, "parity-checker")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(name, clone.namespace, clone.owner, lab),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": DEADLINE_SECONDS,
            # Kept one interval after it finished, so the next round still finds the last result.
            "ttlSecondsAfterFinished": parity.interval_minutes * 60,
            "template": {
                "metadata": {"labels": lab},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": account,
                    "securityContext": restricted_pod(),
                    "containers": [container],
                    "volumes": [tmp_volume()],
                },
            },
        },
    }
