"""What a check of a clone found (``clonecheck.inspect_clone``): pure data, so that the
operator's status decisions (``manifests.clone_status``) can be made and tested without it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CloneHealth:
    reachable: bool
    marked: bool = False
    streaming_replicas: int = 0
    replica_ok: bool = False
    reason: str = ""
    message: str = ""
    digest: str | None = None
    tables: int = 0
    rows: int = 0
    bytes: int = 0
    seed_state: str | None = None

    @property
    def ready(self) -> bool:
        return (
            self.reachable
            and self.marked
            and self.replica_ok
            and self.seed_state in (None, "complete")
        )
