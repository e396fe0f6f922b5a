"""Running PostgreSQL's client tools (pg_dump, pg_restore, psql) for a DSN.

Connection parameters travel in ``PG*`` environment variables, never on a command line that
other users of the machine could read in the process list; errors become one line without the
password.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from pgparity.engine.connection import parse_dsn, redact
from pgparity.engine.localcluster import find_pg_bindir
from pgparity.errors import DatabaseError

# libpq connection parameters and the environment variables that set them.
_ENVIRONMENT = {
    "host": "PGHOST",
    "hostaddr": "PGHOSTADDR",
    "port": "PGPORT",
    "dbname": "PGDATABASE",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "passfile": "PGPASSFILE",
    "sslmode": "PGSSLMODE",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "service": "PGSERVICE",
    "gssencmode": "PGGSSENCMODE",
}


def tool_environment(dsn: str, *, extra_options: str = "") -> dict[str, str]:
    """The environment that makes libpq tools connect like ``dsn`` (password included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in parse_dsn(dsn).items():
        if key in _ENVIRONMENT:
            env[_ENVIRONMENT[key]] = value
    if extra_options:
        env["PGOPTIONS"] = f"{env.get('PGOPTIONS', '')} {extra_options}".strip()
    return env


def tool(name: str) -> str:
    return str(find_pg_bindir() / name)


def run_tool(
    name: str,
    args: Sequence[str],
    dsn: str,
    *,
    what: str,
    extra_options: str = "",
    stdin: bytes | None = None,
    cwd: Path | None = None,
) -> bytes:
    """Run ``name`` for ``dsn``; its stdout, or a one-line DatabaseError naming ``what``."""
    result = subprocess.run(
        [tool(name), *args],
        input=stdin,
        capture_output=True,
        env=tool_environment(dsn, extra_options=extra_options),
        check=False,
        cwd=cwd,
    )
    if result.returncode != 0:
        raise DatabaseError(f"{what} failed: {error_line(result.stderr, dsn)}")
    return result.stdout


def pipe_tools(
    first: tuple[str, Sequence[str], str],
    second: tuple[str, Sequence[str], str],
    *,
    what: str,
    options: Mapping[str, str] | None = None,
) -> None:
    """``first | second`` without touching the disk; each side connects with its own DSN."""
    options = options or {}
    name_a, args_a, dsn_a = first
    name_b, args_b, dsn_b = second
    with subprocess.Popen(
        [tool(name_a), *args_a],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=tool_environment(dsn_a, extra_options=options.get(name_a, "")),
    ) as producer:
        consumer = subprocess.run(
            [tool(name_b), *args_b],
            stdin=producer.stdout,
            capture_output=True,
            check=False,
            env=tool_environment(dsn_b, extra_options=options.get(name_b, "")),
        )
        assert producer.stdout is not None
        assert producer.stderr is not None
        producer.stdout.close()
        produced_error = producer.stderr.read()
        producer.wait()
    if producer.returncode != 0:
        raise DatabaseError(f"{what} failed in {name_a}: {error_line(produced_error, dsn_a)}")
    if consumer.returncode != 0:
        raise DatabaseError(f"{what} failed in {name_b}: {error_line(consumer.stderr, dsn_b)}")


def error_line(stderr: bytes, dsn: str) -> str:
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return redact(line, dsn)
    return redact(lines[-1], dsn) if lines else "(no message)"
