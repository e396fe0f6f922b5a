"""What the handlers share: settings, time, status patches, events on transitions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from pgparity import config
from pgparity.redaction import Context, sanitize, sanitize_strings

SETTINGS = config.load()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def apply_status(patch: kopf.Patch, current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Merge-patch status to ``new`` (None deletes); nothing when it is unchanged.

    Status quotes messages of Jobs and databases and the migration's SQL: sanitized first."""
    new = sanitize_strings(new, Context.DOCUMENT)
    changes = {
        k: new.get(k)
        for k in set(current) | set(new)
        if k != "kopf" and current.get(k) != new.get(k)
    }
    if not changes:
        return False
    for key, value in changes.items():
        patch.status[key] = value
    return True


def announce(
    body: Any,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    warning: bool = False,
) -> None:
    """An Event for a transition: the phase, the verdict or the reason changed."""
    if (old.get("phase"), old.get("verdict"), old.get("message")) == (
        new.get("phase"),
        new.get("verdict"),
        new.get("message"),
    ):
        return
    kopf.event(
        body, type="Warning" if warning else "Normal", reason=reason, message=sanitize(message)
    )
