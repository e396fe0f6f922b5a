"""Running PostgreSQL's client tools (pg_dump, pg_restore, psql) for a DSN.

Connection parameters travel in ``PG*`` environment variables, never on a command line that
other users of the machine could read in the process list; errors become one line without the
password.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from pgparity.errors import DatabaseError
from pgparity.pg.connection import parse_dsn, redact
from pgparity.pg.localcluster import find_pg_bindir

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
    children: ChildProcesses | None = None,
) -> bytes:
    """Run ``name`` for ``dsn``; its stdout, or a one-line DatabaseError naming ``what``.

    With ``children``, the process is registered there while it runs, so an interrupted run
    can stop it from another thread.
    """
    runner = children or ChildProcesses()
    returncode, stdout, stderr = runner.run(
        [tool(name), *args],
        env=tool_environment(dsn, extra_options=extra_options),
        stdin=stdin,
        cwd=cwd,
    )
    if returncode != 0:
        raise DatabaseError(f"{what} failed: {error_line(stderr, dsn)}")
    return stdout


class ChildProcesses:
    """Tool processes that threads of one run start; ``stop`` kills them all, and any later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()
        self._stopped = False

    def run(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        stdin: bytes | None = None,
        cwd: Path | None = None,
    ) -> tuple[int, bytes, bytes]:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
        )
        with self._lock:
            self._running.add(process)
            stopped = self._stopped
        if stopped:
            process.kill()
        try:
            stdout, stderr = process.communicate(stdin)
        except BaseException:  # Ctrl-C while waiting: the child must not outlive the run
            process.kill()
            process.wait()
            raise
        finally:
            with self._lock:
                self._running.discard(process)
        return process.returncode, stdout, stderr

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            running = list(self._running)
        for process in running:
            if process.poll() is None:
                process.kill()


def error_line(stderr: bytes, dsn: str) -> str:
    text = stderr.decode("utf-8", "replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "fatal" in line.lower():
            return redact(line, dsn)
    return redact(lines[-1], dsn) if lines else "(no message)"
