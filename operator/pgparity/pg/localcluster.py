"""Ephemeral local PostgreSQL: a primary and streaming replicas, the embedded default target.

``LocalCluster`` runs the OS package's server binaries (initdb, postgres, pg_basebackup) on free
loopback ports with a private socket directory, applies the configuration it is given so that
configuration parity is explicit, waits until every replica is really streaming, marks the
database as a pgparity clone, and removes everything on exit, on error and on Ctrl-C. PostgreSQL
refuses to run as root, so when pgparity runs as root the servers run as an unprivileged user.

A ``kill -9`` leaves no chance to clean up: the servers get SIGQUIT from the kernel (they ask
for it when their parent dies), but the directory stays. So each cluster directory records its
owner (PID and start time), and the next start removes the directories of dead owners, after
stopping any server still running in them.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from pgparity.errors import ClusterError, UsageError
from pgparity.models.progress import Progress, quiet
from pgparity.pg.clone import mark_clone
from pgparity.pg.connection import connect
from pgparity.pg.replication import wait_for_replay, written_lsn
from pgparity.redaction import sanitize

SUPERUSER = "pgparity"
DEFAULT_DBNAME = "postgres"
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1
WORKDIR_PREFIX = "pgparity-cluster-"
OWNER_FILE = "pgparity-owner.json"

REPLAY_POLL_SECONDS = 0.1


# Settings every local cluster needs to be a primary with streaming replicas on loopback.
TOPOLOGY_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "127.0.0.1",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "max_replication_slots": "10",
    "hot_standby": "on",
    "hot_standby_feedback": "on",
    "logging_collector": "off",
}
# Trading durability for speed is fine for throwaway test clusters; never for parity runs.
NON_DURABLE_SETTINGS: Mapping[str, str] = {"fsync": "off", "synchronous_commit": "off"}


@dataclass
class Node:
    """One server of a local cluster."""

    name: str
    datadir: Path
    port: int
    socket_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def dsn(self, password: str, dbname: str) -> str:
        return (
            f"host=127.0.0.1 port={self.port} dbname={dbname} user={SUPERUSER} password={password}"
        )


@dataclass
class LocalCluster:
    """A primary and ``replicas`` streaming replicas; use as a context manager."""

    settings: Mapping[str, str] = field(default_factory=dict)
    replicas: int = 1
    durable: bool = True
    bindir: Path | None = None
    dbname: str = DEFAULT_DBNAME
    locale: str = "C.UTF-8"
    progress: Progress = quiet
    clone_name: str = "local"

    def __post_init__(self) -> None:
        self._workdir: Path | None = None
        self._password = secrets.token_urlsafe(24)
        self._user = server_user()
        self.primary: Node | None = None
        self.standbys: list[Node] = []

    # -- public API -------------------------------------------------------------------------

    @property
    def primary_dsn(self) -> str:
        if self.primary is None:
            raise ClusterError("the local cluster is not running")
        return self.primary.dsn(self._password, self.dbname)

    @property
    def replica_dsns(self) -> list[str]:
        return [node.dsn(self._password, self.dbname) for node in self.standbys]

    @property
    def replica_dsn(self) -> str | None:
        return self.replica_dsns[0] if self.standbys else None

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        bindir = self.bindir or find_pg_bindir()
        self.bindir = bindir
        for stale in remove_stale_clusters(workdir_base(self._user)):
            self.progress(f"removed {stale}, left behind by a pgparity that was killed")
        try:
            self._create_workdir()
            self.primary = self._init_primary(bindir)
            self._start(self.primary, bindir)
            self._prepare_database()
            for number in range(1, self.replicas + 1):
                self.standbys.append(self._clone_replica(bindir, number))
            self.wait_streaming()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every server and delete the cluster's files; safe to call more than once."""
        for node in [*reversed(self.standbys), *([self.primary] if self.primary else [])]:
            _stop_server(node)
        self.standbys = []
        self.primary = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def wait_streaming(self, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Block until every replica is streaming (pg_stat_replication.state = 'streaming')."""
        if not self.standbys:
            return
        deadline = time.monotonic() + timeout
        with connect(self.primary_dsn, role="local primary") as conn:
            while True:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
                ).fetchone()
                if row and int(row[0]) >= len(self.standbys):
                    return
                if time.monotonic() > deadline:
                    raise ClusterError(
                        "the local replica did not start streaming within "
                        f"{timeout:.0f}s; see {self.standbys[0].log_path}"
                    )
                time.sleep(0.1)

    def wait_replay(self, timeout: float = 600.0) -> None:
        """Block until every replica has replayed everything the primary has written so far."""
        if not self.standbys:
            return
        with connect(self.primary_dsn, role="local primary") as conn:
            # With synchronous_commit off (as local clusters run) the last commits may still sit
            # in WAL buffers, past pg_current_wal_lsn(). A transaction with an xid committed
            # synchronously flushes everything before its commit record.
            with conn.transaction():
                conn.execute("SET LOCAL synchronous_commit = on")
                conn.execute("SELECT pg_catalog.pg_current_xact_id()")
            lsn = written_lsn(conn)
            waited = wait_for_replay(
                conn, lsn, len(self.standbys), timeout=timeout, period=REPLAY_POLL_SECONDS
            )
        if waited is None:
            raise ClusterError(f"the local replica did not catch up within {timeout:.0f}s")

    def client_environment(self) -> dict[str, str]:
        """Environment for libpq tools (psql, pgbench) to reach the primary: PG* variables."""
        if self.primary is None:
            raise ClusterError("the local cluster is not running")
        return {
            **os.environ,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.primary.port),
            "PGUSER": SUPERUSER,
            "PGDATABASE": self.dbname,
            "PGPASSWORD": self._password,
        }

    def run_sql_file(self, path: Path) -> None:
        """Load ``path`` into the primary with psql (meta-commands and COPY work), stop on error."""
        assert self.bindir is not None
        assert self.primary is not None
        env = {
            **self.client_environment(),
            "PGCONNECT_TIMEOUT": "10",
            # Loading data is not the migration: production timeouts do not apply to it.
            "PGOPTIONS": "-c statement_timeout=0 -c lock_timeout=0",
        }
        command = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            detail = _first_error_line(result.stderr) or f"psql exited {result.returncode}"
            raise UsageError(f"seed SQL {path} failed: {sanitize(detail)}")

    # -- steps --------------------------------------------------------------------------------

    def _create_workdir(self) -> None:
        base = workdir_base(self._user)
        self._workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=base))
        _write_owner(self._workdir)
        self._workdir.chmod(0o700)
        self._chown(self._workdir)

    def _init_primary(self, bindir: Path) -> Node:
        assert self._workdir is not None
        node = self._new_node("primary")
        pwfile = self._workdir / "pwfile"
        pwfile.write_text(self._password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        self.progress(f"initdb: creating a {self._version_label(bindir)} primary")
        self._run(
            [
                str(bindir / "initdb"),
                "-D",
                str(node.datadir),
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                f"--locale={self.locale}",
                "--no-instructions",
            ],
            what="initdb",
        )
        pwfile.unlink()
        settings = {
            **TOPOLOGY_SETTINGS,
            **({} if self.durable else NON_DURABLE_SETTINGS),
            **self.settings,
        }
        _append_settings(node.datadir / "postgresql.conf", settings)
        return node

    def _prepare_database(self) -> None:
        with connect(self.primary_dsn, role="local primary") as conn:
            mark_clone(conn, self.clone_name)

    def _clone_replica(self, bindir: Path, number: int) -> Node:
        assert self.primary is not None
        node = self._new_node(f"replica{number}")
        self.progress(f"pg_basebackup: cloning streaming replica {number}")
        self._run(
            [
                str(bindir / "pg_basebackup"),
                "-D",
                str(node.datadir),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                SUPERUSER,
                "-R",
                "-X",
                "stream",
                "-C",
                "-S",
                f"pgparity_replica_{number}",
                "--checkpoint=fast",
            ],
            what="pg_basebackup",
            env={"PGPASSWORD": self._password},
        )
        _append_settings(
            node.datadir / "postgresql.conf", {"cluster_name": f"pgparity_replica_{number}"}
        )
        self._start(node, bindir)
        return node

    def _new_node(self, name: str) -> Node:
        assert self._workdir is not None
        socket_dir = self._workdir / f"{name}-sockets"
        socket_dir.mkdir(mode=0o700)
        self._chown(socket_dir)
        return Node(
            name=name,
            datadir=self._workdir / name,
            port=free_port(),
            socket_dir=socket_dir,
            log_path=self._workdir / f"{name}.log",
        )

    def _start(self, node: Node, bindir: Path) -> None:
        self.progress(f"starting {node.name} on 127.0.0.1:{node.port}")
        command = [
            str(bindir / "postgres"),
            "-D",
            str(node.datadir),
            "-c",
            f"port={node.port}",
            "-c",
            f"unix_socket_directories={node.socket_dir}",
        ]
        with open(node.log_path, "ab") as log:
            node.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                **self._as_user(),
            )
        self._wait_accepting(node)

    def _wait_accepting(self, node: Node) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            assert node.process is not None
            if node.process.poll() is not None:
                raise ClusterError(
                    f"local {node.name} exited during start-up: {_log_tail(node.log_path)}"
                )
            try:
                with psycopg.connect(node.dsn(self._password, "postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"local {node.name} did not accept connections within "
                        f"{READY_TIMEOUT_SECONDS:.0f}s: {exc}"
                    ) from exc
                time.sleep(0.1)

    def _run(
        self, command: Sequence[str], *, what: str, env: Mapping[str, str] | None = None
    ) -> None:
        full_env = {**os.environ, **(env or {})}
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env=full_env,
            cwd="/",
            **self._as_user(),
        )
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip().splitlines()
            raise ClusterError(f"{what} failed: {output[-1] if output else result.returncode}")

    def _as_user(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def _chown(self, path: Path) -> None:
        if self._user is not None:
            os.chown(path, self._user.pw_uid, self._user.pw_gid)

    @staticmethod
    def _version_label(bindir: Path) -> str:
        match = re.search(r"postgresql/(\d+)/", str(bindir) + "/")
        return f"PostgreSQL {match.group(1)}" if match else "PostgreSQL"


def find_pg_bindir() -> Path:
    """The directory with initdb/postgres/pg_basebackup: $PGPARITY_PG_BINDIR, pg_config, Debian."""
    candidates: list[Path] = []
    if os.environ.get("PGPARITY_PG_BINDIR"):
        candidates.append(Path(os.environ["PGPARITY_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
            candidates.append(Path(out))
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(debian)
    for candidate in candidates:
        if all((candidate / tool).is_file() for tool in ("initdb", "postgres", "pg_basebackup")):
            return candidate
    raise ClusterError(
        "PostgreSQL server binaries (initdb, postgres, pg_basebackup) not found: "
        "install the postgresql-15 package or set PGPARITY_PG_BINDIR"
    )


def server_user() -> pwd.struct_passwd | None:
    """The unprivileged account servers run as when pgparity runs as root, else None."""
    if os.geteuid() != 0:
        return None
    wanted = os.environ.get("PGPARITY_PG_USER")
    for name in [wanted] if wanted else ["postgres", "nobody"]:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ClusterError(
        "running as root, and no unprivileged user to run PostgreSQL as "
        "(create 'postgres' or set PGPARITY_PG_USER)"
    )


def workdir_base(user: pwd.struct_passwd | None) -> Path:
    """Where cluster directories go: $PGPARITY_WORKDIR, else the temp dir, else /tmp.

    When the servers run as another user, every directory above the cluster's must be
    traversable by that user (pytest's and some CI runners' temp dirs are private to root).
    """
    configured = os.environ.get("PGPARITY_WORKDIR")
    candidates = [Path(configured)] if configured else []
    # mkdtemp() makes a private 0700 directory inside whichever base is chosen.
    candidates += [Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")]  # noqa: S108
    for candidate in candidates:
        if candidate.is_dir() and (user is None or _traversable(candidate, user)):
            return candidate
    raise ClusterError(
        f"no directory the PostgreSQL user {user.pw_name if user else ''} can reach for the "
        "local cluster; set PGPARITY_WORKDIR to a directory it can traverse"
    )


def _traversable(path: Path, user: pwd.struct_passwd) -> bool:
    for directory in [path.resolve(), *path.resolve().parents]:
        mode = directory.stat()
        if mode.st_uid == user.pw_uid:
            allowed = mode.st_mode & 0o100
        elif mode.st_gid == user.pw_gid:
            allowed = mode.st_mode & 0o010
        else:
            allowed = mode.st_mode & 0o001
        if not allowed:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _append_settings(conf: Path, settings: Mapping[str, str]) -> None:
    lines = ["", "# --- pgparity ---"]
    lines += [f"{name} = '{_quote_conf(value)}'" for name, value in settings.items()]
    with conf.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def _quote_conf(value: str) -> str:
    # postgresql.conf string syntax: single quotes doubled, backslashes escaped.
    return str(value).replace("\\", "\\\\").replace("'", "''")


def _stop_server(node: Node) -> None:
    process = node.process
    if process is None or process.poll() is not None:
        return
    # SIGINT is PostgreSQL's "fast" shutdown: abort sessions, write a checkpoint, exit.
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _die_with_parent() -> None:
    """Ask Linux to stop the server (SIGQUIT: immediate shutdown) if pgparity itself dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGQUIT)


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _first_error_line(stderr: str) -> str:
    for line in stderr.splitlines():
        if "ERROR:" in line or "FATAL:" in line or "error:" in line:
            return line.strip()
    return stderr.strip().splitlines()[0] if stderr.strip() else ""


# --- directories left behind by a killed pgparity ------------------------------------------


def _write_owner(workdir: Path) -> None:
    """Record who owns ``workdir``: a PID alone could be reused by an unrelated process, and
    means nothing in another PID namespace (a container sharing the directory)."""
    owner = {
        "pid": os.getpid(),
        "started": process_start(os.getpid()),
        "pid_namespace": _pid_namespace(),
    }
    tmp = workdir / f".{OWNER_FILE}.tmp"
    tmp.write_text(json.dumps(owner), encoding="utf-8")
    tmp.replace(workdir / OWNER_FILE)


def remove_stale_clusters(base: Path) -> list[Path]:
    """Remove the cluster directories under ``base`` whose owner is dead; stop their servers.

    Directories without an owner record are left alone: they are not pgparity's, or another
    pgparity has just created them.
    """
    removed = []
    for directory in sorted(base.glob(f"{WORKDIR_PREFIX}*")):
        owner = _read_owner(directory)
        if owner is None or _owner_alive(*owner):
            continue
        for pidfile in directory.glob("*/postmaster.pid"):
            _stop_orphan_server(pidfile)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def _read_owner(directory: Path) -> tuple[int, int | None] | None:
    """(PID, start time) of the owner, if it is pgparity's and the PID means the same here."""
    try:
        doc = json.loads((directory / OWNER_FILE).read_text(encoding="utf-8"))
        started = doc.get("started")
        if doc.get("pid_namespace") != _pid_namespace():
            return None
        return int(doc["pid"]), None if started is None else int(started)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _owner_alive(pid: int, started: int | None) -> bool:
    if started is not None and Path("/proc/self/stat").exists():
        return process_start(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat, field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces and parentheses.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19]) if fields[0] != "Z" else None


def _stop_orphan_server(pidfile: Path) -> None:
    """Stop the postmaster ``pidfile`` names — only if that PID really is a postgres serving
    this data directory (postmaster.pid's first two lines; the postmaster's cwd is its data
    directory), so a reused PID is never signalled."""
    try:
        lines = pidfile.read_text().splitlines()
        pid, datadir = int(lines[0]), Path(lines[1])
    except (OSError, ValueError, IndexError):
        return
    if datadir.resolve() != pidfile.parent.resolve() or not _serves(pid, datadir):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the files are deleted next
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while process_start(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_start(pid) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _serves(pid: int, datadir: Path) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return False
    return Path(os.fsdecode(argv0)).name == "postgres" and cwd == datadir.resolve()
