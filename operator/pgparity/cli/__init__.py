"""The ``pgparity`` command: the only place errors become exit codes.

Exit codes (DESIGN.md): 0 VALIDATED / ok · 1 REJECTED / check failed · 2 bad input or usage ·
3 schema drift · 4 cannot reach or use a database, an object store or the API server. Errors
are one line on stderr, never a traceback, and never contain a password or a secret key.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from pgparity import __version__
from pgparity.cli import linting, operating, parity, schema, seeding, validate
from pgparity.cli.common import (
    EXIT_DATABASE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
)
from pgparity.errors import DatabaseError, PgparityError, StorageError, UsageError
from pgparity.redaction import install_log_redaction, remember_dsn, sanitize


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
    for module in (validate, linting, schema, seeding, parity, operating):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _raise_terminated)
    install_log_redaction()
    args = build_parser().parse_args(argv)
    _remember_dsns(args)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        return _fail(exc, EXIT_USAGE)
    except (DatabaseError, StorageError) as exc:
        return _fail(exc, EXIT_DATABASE)
    except PgparityError as exc:
        return _fail(exc, EXIT_DATABASE)
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
            EXIT_INTERNAL,
        )


def _remember_dsns(args: argparse.Namespace) -> None:
    """The DSNs of this run — flags, or the ``PGPARITY_*DSN`` variables commands read them
    from — remembered before anything can fail, so no message can show their passwords."""
    from_args = [v for k, v in vars(args).items() if k.endswith("dsn") and v]
    from_env = [
        v for k, v in os.environ.items() if k.startswith("PGPARITY_") and k.endswith("DSN") and v
    ]
    for dsn in (*from_args, *from_env):
        remember_dsn(str(dsn))


def _fail(exc: BaseException, code: int) -> int:
    message = sanitize(" ".join(str(exc).split()))
    sys.stderr.write(f"pgparity: error: {message}\n")
    return code


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated()
