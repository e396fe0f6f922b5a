"""One error tree for pgparity.

Engines raise these with context (``raise DatabaseError("while applying statement 3") from
exc``); only the CLI maps them to exit codes (``cli/__init__.py``) and only handlers map them to
kopf's temporary and permanent errors (``handlers/common.py``). Messages are written for the
person at the terminal: one line, naming the problem, never a password. A cause is kept
(``from exc``) unless its text could carry a secret (a DSN's password): then ``from None`` and
a comment saying so.

    PgparityError
    ├── UsageError                 bad input (exit 2)
    │   ├── SpecError              a document's field, by its dotted path
    │   ├── ArchiveMismatchError   an archive's file is not what its manifest says
    │   └── PolicyRejectedError    the policy does not fit the source
    ├── DatabaseError              unreachable or unusable database (exit 4)
    │   └── ClusterError           a local cluster could not be made
    ├── StorageError               an object store cannot be reached or used (exit 4)
    │   └── ObjectMissingError     the object asked for does not exist
    ├── KubeError                  the API server refused or could not be reached (exit 4)
    ├── CallTimeoutError           a blocking call outlived its deadline (operator)
    └── EngineError                the engine could not go on (sqlexec's LexingChangedError)
"""

from __future__ import annotations

from collections.abc import Sequence


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


class DatabaseError(PgparityError):
    """A database cannot be reached or used: connection, authentication, topology (exit 4)."""


class ClusterError(DatabaseError):
    """A local PostgreSQL cluster could not be created, started or made to stream."""


class StorageError(PgparityError):
    """An object store (S3, GCS, Azure, a local directory) cannot be reached or used: a bucket
    that does not exist, credentials it refuses, a network failure (exit 4)."""


class ObjectMissingError(StorageError):
    """The object asked for does not exist (its bucket does)."""


class ArchiveMismatchError(UsageError):
    """A file of the archive is not the one its manifest describes (truncated or tampered)."""


class PolicyRejectedError(UsageError):
    """The policy does not cover the source, or does not fit it; ``problems`` lists why."""

    def __init__(self, problems: Sequence[object]) -> None:
        listed = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(
            f"the policy does not fit the source: {listed}{more} — "
            "`pgparity policy check` lists them all"
        )
        self.problems = tuple(problems)


class KubeError(PgparityError):
    """The API server refused a request (``status``: its HTTP status) or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CallTimeoutError(PgparityError):
    """A blocking call did not finish within its deadline (its thread may still be busy)."""


class EngineError(PgparityError):
    """The engine failed for a reason that is neither bad input nor an unreachable database."""


def shown(value: str, limit: int = 40) -> str:
    """A value quoted for an error message, cut short if long (one line, never a screenful)."""
    value = value.strip()
    return repr(value if len(value) <= limit else value[:limit] + "…")
