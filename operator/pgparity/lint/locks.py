"""PostgreSQL's table-level lock modes, by pg_locks' names, and what each one blocks.

The table is the server's (documentation, "Table-Level Locks"); the static rules use it to say
which lock a statement will take, and the evidence join uses it to match what the trace saw.
"""

from __future__ import annotations

from enum import StrEnum


class LockMode(StrEnum):
    ACCESS_SHARE = "AccessShareLock"
    ROW_SHARE = "RowShareLock"
    ROW_EXCLUSIVE = "RowExclusiveLock"
    SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
    SHARE = "ShareLock"
    SHARE_ROW_EXCLUSIVE = "ShareRowExclusiveLock"
    EXCLUSIVE = "ExclusiveLock"
    ACCESS_EXCLUSIVE = "AccessExclusiveLock"

    @property
    def strength(self) -> int:
        return _ORDER.index(self)

    @property
    def sql_name(self) -> str:
        """The mode as LOCK TABLE and the documentation spell it: ``SHARE ROW EXCLUSIVE``."""
        return _SQL_NAMES[self]

    @property
    def dangerous(self) -> bool:
        """Blocks the application's writes (or reads): a lock queue forms behind it."""
        return self in BLOCKS

    @property
    def blocks(self) -> str:
        return BLOCKS.get(self, "blocks only schema changes and maintenance")

    @classmethod
    def parse(cls, name: str) -> LockMode | None:
        """A pg_locks mode name, or None for modes that are not table-level (``SIReadLock``)."""
        try:
            return cls(name)
        except ValueError:
            return None


_ORDER = list(LockMode)
_SQL_NAMES = {
    LockMode.ACCESS_SHARE: "ACCESS SHARE",
    LockMode.ROW_SHARE: "ROW SHARE",
    LockMode.ROW_EXCLUSIVE: "ROW EXCLUSIVE",
    LockMode.SHARE_UPDATE_EXCLUSIVE: "SHARE UPDATE EXCLUSIVE",
    LockMode.SHARE: "SHARE",
    LockMode.SHARE_ROW_EXCLUSIVE: "SHARE ROW EXCLUSIVE",
    LockMode.EXCLUSIVE: "EXCLUSIVE",
    LockMode.ACCESS_EXCLUSIVE: "ACCESS EXCLUSIVE",
}

# What each mode that blocks the application stops (the conflict table of the documentation).
BLOCKS = {
    LockMode.SHARE: "blocks writes",
    LockMode.SHARE_ROW_EXCLUSIVE: "blocks writes",
    LockMode.EXCLUSIVE: "blocks writes and SELECT … FOR UPDATE/SHARE",
    LockMode.ACCESS_EXCLUSIVE: "blocks every read and write",
}


def stronger(a: LockMode | None, b: LockMode | None) -> LockMode | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a.strength >= b.strength else b
