"""The ``pgparity`` command: the only place errors become exit codes.

Exit codes (DESIGN.md): 0 VALIDATED / ok · 1 REJECTED / check failed · 2 bad input or usage ·
3 schema drift · 4 cannot reach or use a database or the API server. Errors are one line on
stderr, never a traceback, and never contain a password.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterable, Iterator, Sequence
from types import FrameType

from pgparity import __version__
from pgparity.cli import operating, schema, seeding, validate
from pgparity.cli.common import (
    EXIT_DATABASE,
    EXIT_DRIFT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
)
from pgparity.engine.connection import redact
from pgparity.errors import DatabaseError, DriftError, PgparityError, UsageError


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as a kind of Ctrl-C so that everything Ctrl-C does happens: psycopg
    cancels the statement running on the server (it does so for KeyboardInterrupt while it
    waits, not for other BaseExceptions), the dry-run rolls back, every cleanup (observer,
    traffic, local clusters, temp files) runs, and the exit code is 130."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pgparity",
        description="Staging that predicts production for PostgreSQL schema migrations.",
    )
    parser.add_argument("--version", action="version", version=f"pgparity {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (validate, schema, seeding, operating):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _raise_terminated)
    args = build_parser().parse_args(argv)
    secrets = _Secrets(args)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        return _fail(exc, secrets, EXIT_USAGE)
    except DriftError as exc:
        return _fail(exc, secrets, EXIT_DRIFT)
    except DatabaseError as exc:
        return _fail(exc, secrets, EXIT_DATABASE)
    except PgparityError as exc:
        return _fail(exc, secrets, EXIT_DATABASE)
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (Terminated)
        sys.stderr.write("pgparity: interrupted; cleaned up\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: still one line, still no password
        if os.environ.get("PGPARITY_DEBUG"):
            raise
        return _fail(
            RuntimeError(
                f"internal error ({type(exc).__name__}: {exc}); "
                "set PGPARITY_DEBUG=1 for a traceback"
            ),
            secrets,
            EXIT_INTERNAL,
        )


class _Secrets:
    """The DSNs of this run — from flags, or from the environment a command read them from —
    gathered when an error is printed, so none of their passwords can appear in it."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args

    def __iter__(self) -> Iterator[str]:
        from_args = [v for k, v in vars(self._args).items() if k.endswith("dsn") and v]
        from_env = [
            v
            for k, v in os.environ.items()
            if k.startswith("PGPARITY_") and k.endswith("DSN") and v
        ]
        return iter([str(v) for v in (*from_args, *from_env)])


def _fail(exc: BaseException, secrets: Iterable[str], code: int) -> int:
    message = " ".join(str(exc).split())
    for dsn in secrets:
        message = redact(message, dsn)
    sys.stderr.write(f"pgparity: error: {message}\n")
    return code


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()
