"""One error tree for pgparity.

Engines raise these with context (``raise EngineError("while applying statement 3") from exc``);
only the CLI maps them to exit codes and only handlers map them to kopf errors. Messages are
written for the person at the terminal: one line, naming the problem, never a password.
"""

from __future__ import annotations


class PgparityError(Exception):
    """Base of every error pgparity raises on purpose."""


class UsageError(PgparityError):
    """Bad input: a flag, a file or a value that cannot be used as given (exit 2)."""


class SpecError(UsageError):
    """A document (CRD spec, policy, workload file) has a bad field; ``path`` names it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class DriftError(PgparityError):
    """The target's schema is not the one the caller expected (exit 3)."""


class DatabaseError(PgparityError):
    """A database cannot be reached or used: connection, authentication, topology (exit 4)."""


class ClusterError(DatabaseError):
    """A local PostgreSQL cluster could not be created, started or made to stream."""


class StorageError(PgparityError):
    """An object store (S3, GCS, Azure, a local directory) cannot be reached or used: a bucket
    that does not exist, credentials it refuses, a network failure (exit 4)."""


class EngineError(PgparityError):
    """The engine failed for a reason that is neither bad input nor an unreachable database."""


def shown(value: str, limit: int = 40) -> str:
    """A value quoted for an error message, cut short if long (one line, never a screenful)."""
    value = value.strip()
    return repr(value if len(value) <= limit else value[:limit] + "…")
