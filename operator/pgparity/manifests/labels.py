"""Names and labels shared by everything the operator creates."""

from __future__ import annotations

import hashlib
from typing import Any

from pgparity.models.common import API_VERSION

MANAGED_BY = "pgparity"
CLONE_LABEL = "pgparity.io/clone"
VALIDATION_LABEL = "pgparity.io/validation"
KEY_LABEL = "pgparity.io/validation-key"
MAX_NAME = 63  # DNS-1123 label: Job names end up in pod labels


def labels(instance: str, component: str, **extra: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "pgparity",
        "app.kubernetes.io/instance": truncate(instance),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        **{k: truncate(v) for k, v in extra.items()},
    }


def child_name(base: str, suffix: str) -> str:
    """``base-suffix``, shortened with a hash when it would exceed 63 characters."""
    name = f"{base}-{suffix}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = MAX_NAME - len(suffix) - len(digest) - 2
    return f"{base[:keep].rstrip('-')}-{digest}-{suffix}"


def truncate(value: str) -> str:
    """A label value (at most 63 characters)."""
    if len(value) <= MAX_NAME:
        return value
    return f"{value[:54].rstrip('-._')}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def owner_reference(
    kind: str, name: str, uid: str, api_version: str = API_VERSION
) -> dict[str, Any]:
    """The owner reference that makes garbage collection remove a child with its owner."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(
    name: str, namespace: str, owner: dict[str, Any], labels_: dict[str, str], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": labels_,
        "ownerReferences": [owner],
        **extra,
    }
