"""A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver, controller-manager.

Stdlib only; certificates are made with the ``openssl`` CLI. The binaries come from
``KUBEBUILDER_ASSETS`` (a directory with etcd, kube-apiserver, kube-controller-manager and
optionally kubectl) or from ``scripts/kube-assets.sh``, which builds them from their Go modules
at the versions pinned in ``hack/kube-assets/versions.env`` (cached after the first build).

There is no kubelet and no scheduler: Pods get created (e.g. by the Job controller) but stay
Pending.

Library use::

    with ControlPlane() as plane:
        plane.kubectl("get", "namespaces")
        print(plane.kubeconfig, plane.server)

Developer CLI (the plane keeps running after ``up`` returns)::

    python tests/kubeplane.py up --state-dir .kube/plane
    KUBECONFIG=.kube/plane/kubeconfig kubectl get ns
    python tests/kubeplane.py down --state-dir .kube/plane
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_SCRIPT = REPO_ROOT / "scripts" / "kube-assets.sh"
VERSIONS_FILE = REPO_ROOT / "hack" / "kube-assets" / "versions.env"
REQUIRED_BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
DEFAULT_READY_TIMEOUT = 120.0

# What a plane creates in its directory; stop() removes exactly these (then the dir if empty).
STATE_ENTRIES = (
    "pki",
    "etcd-data",
    "apiserver-certs",
    "etcd.log",
    "kube-apiserver.log",
    "kube-controller-manager.log",
    "kubeconfig",
    "pids",
    "pids.tmp",
)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class ControlPlaneError(RuntimeError):
    """The control plane could not be built, started or stopped."""


class _PortInUseError(ControlPlaneError):
    """A child lost the race for a port picked by _free_ports(); start() retries."""


# ------------------------------------------------------------------------------ binaries
def pinned_versions() -> dict[str, str]:
    """KEY=value pairs of hack/kube-assets/versions.env (KUBE_VERSION, ETCD_VERSION, ...)."""
    result: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            result[key.strip()] = value.strip().strip("'\"")
    return result


def _has_binaries(directory: Path, names: Sequence[str] = REQUIRED_BINARIES) -> bool:
    return all((directory / n).is_file() and os.access(directory / n, os.X_OK) for n in names)


def find_assets(build: bool = True) -> Path:
    """Directory holding the control-plane binaries.

    ``KUBEBUILDER_ASSETS`` wins when it holds all required binaries. Otherwise
    ``scripts/kube-assets.sh`` runs: it builds them on a cold machine (many minutes) and returns
    at once on a warm one; its last stdout line is the directory.
    """
    env = os.environ.get("KUBEBUILDER_ASSETS")
    if env and _has_binaries(Path(env)):
        return Path(env)
    if not build:
        raise ControlPlaneError(f"KUBEBUILDER_ASSETS does not hold {', '.join(REQUIRED_BINARIES)}")
    proc = subprocess.run(
        ["bash", str(ASSETS_SCRIPT)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ControlPlaneError(f"{ASSETS_SCRIPT} failed ({proc.returncode}); see its stderr")
    path = Path(lines[-1])
    if not _has_binaries(path):
        raise ControlPlaneError(f"{ASSETS_SCRIPT} printed {path}, which lacks a binary")
    return path


# ----------------------------------------------------------------------------- processes
@dataclass
class _Proc:
    name: str
    pid: int
    start_ticks: int | None  # guards against a reused PID when we are not the parent
    log: Path
    popen: subprocess.Popen[bytes] | None = None  # None when not our child (CLI ``down``)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return _pid_alive(self.pid, self.start_ticks)


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], starttime is [19])."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()  # the command name may contain spaces and ')'


def _proc_start_ticks(pid: int) -> int | None:
    fields = _proc_stat(pid)
    return int(fields[19]) if fields else None


def _pid_alive(pid: int, start_ticks: int | None) -> bool:
    fields = _proc_stat(pid)
    if fields is None:
        return not Path("/proc/self/stat").exists() and _kill0(pid)
    if fields[0] in ("Z", "X"):  # zombie: dead, waiting for its parent to reap it
        return False
    return start_ticks is None or int(fields[19]) == start_ticks


def _kill0(pid: int) -> bool:
    """Liveness without /proc (not Linux): signal 0 checks that the PID exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()  # loaded in the parent: no dlopen between fork and exec


def _die_with_parent(parent_pid: int) -> Callable[[], None] | None:
    """preexec_fn: the child gets SIGKILL when the thread that started it dies (Linux).

    Covers what no Python cleanup can: a test runner killed by SIGKILL or an unhandled SIGTERM.
    """
    libc = _LIBC
    if libc is None:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _signal(procs: Sequence[_Proc], sig: signal.Signals) -> None:
    for p in procs:
        if p.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)  # the process itself, never its group or a name


def _wait_gone(procs: Sequence[_Proc], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for p in procs:
        if p.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=max(0.01, deadline - time.monotonic()))
        while p.alive() and time.monotonic() < deadline:
            time.sleep(0.05)


def terminate(procs: Sequence[_Proc], grace: float) -> None:
    """SIGTERM each process by PID, SIGKILL what is left after ``grace`` s, wait for all."""
    _signal(procs, signal.SIGTERM)
    _wait_gone(procs, grace)
    _signal(procs, signal.SIGKILL)
    _wait_gone(procs, 10.0)
    left = [f"{p.name}[{p.pid}]" for p in procs if p.alive()]
    if left:
        raise ControlPlaneError("still running after SIGKILL: " + ", ".join(left))


def stop_processes(procs: Sequence[_Proc], grace: float) -> None:
    """Stop the apiserver and controller-manager first, etcd last.

    With etcd gone first, kube-apiserver's graceful shutdown hangs until SIGKILL.
    """
    terminate([p for p in procs if p.name != "etcd"], grace)
    terminate([p for p in procs if p.name == "etcd"], grace)


def read_pids(directory: Path) -> list[_Proc]:
    """The processes listed in DIR/pids (lines ``name pid starttime``)."""
    path = directory / "pids"
    if not path.is_file():
        return []
    procs = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            ticks = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
            procs.append(_Proc(parts[0], int(parts[1]), ticks, directory / f"{parts[0]}.log"))
    return procs


def remove_state(directory: Path) -> None:
    """Remove what a plane created in ``directory``, and the directory if it is then empty."""
    for entry in STATE_ENTRIES:
        path = directory / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


def sweep_stale_dirs(parent: Path, min_age: float = 60.0) -> None:
    """Remove temp dirs of earlier planes whose processes are all gone.

    Only a runner killed by SIGKILL leaves one behind (pdeathsig killed its children).
    """
    for directory in parent.glob("pgparity-kube-*"):
        try:
            age = time.time() - (directory / "pids").stat().st_mtime
        except OSError:
            continue  # no pids file yet: a plane being started
        if age > min_age and not any(p.alive() for p in read_pids(directory)):
            shutil.rmtree(directory, ignore_errors=True)


def _free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------- PKI and configs
def _openssl(pki: Path, *args: str) -> None:
    proc = subprocess.run(["openssl", *args], cwd=pki, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ControlPlaneError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()}")


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
_LEAF_CERTS = {
    # name: (subject, X.509 v3 extensions)
    "apiserver": (
        "/CN=kube-apiserver",
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
        "DNS:kubernetes.default.svc,IP:10.0.0.1\n"
        "extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n",
    ),
    # O=system:masters: bound to cluster-admin by the default RBAC policy.
    "admin": (
        "/O=system:masters/CN=admin",
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n",
    ),
}


def make_pki(pki: Path, node_ip: str | None = None) -> None:
    """Per-run CA, apiserver serving cert, admin client cert and service-account key pair.

    With ``node_ip`` the serving certificate also names that address and the Service's
    cluster-domain name, by which Pods on a real node reach the API server.
    """
    pki.mkdir(mode=0o700, exist_ok=True)
    _openssl(pki, "req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "3650", "-subj", "/CN=pgparity-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature")  # fmt: skip
    for name, (subject, extensions) in _LEAF_CERTS.items():
        if name == "apiserver" and node_ip is not None:
            extensions = extensions.replace(
                "IP:10.0.0.1", f"IP:10.0.0.1,IP:{node_ip},DNS:kubernetes.default.svc.cluster.local"
            )
        (pki / f"{name}.ext").write_text(extensions)
        _openssl(pki, "req", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", subject)  # fmt: skip
        _openssl(pki, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "365",
                 "-out", f"{name}.crt", "-extfile", f"{name}.ext")  # fmt: skip
    # Service-account token signing keys; RSA is accepted by every consumer of them.
    _openssl(pki, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "sa.key")  # fmt: skip
    _openssl(pki, "pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
    for f in pki.iterdir():
        f.chmod(0o600)


def kubeconfig_text(server: str, pki: Path) -> str:
    """An admin kubeconfig with the CA, client cert and key embedded (no paths)."""

    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    return (
        "apiVersion: v1\nkind: Config\n"
        "clusters:\n- name: pgparity-test\n  cluster:\n"
        f"    server: {server}\n"
        f"    certificate-authority-data: {b64('ca.crt')}\n"
        "users:\n- name: admin\n  user:\n"
        f"    client-certificate-data: {b64('admin.crt')}\n"
        f"    client-key-data: {b64('admin.key')}\n"
        "contexts:\n- name: pgparity-test\n  context:\n"
        "    cluster: pgparity-test\n    user: admin\n    namespace: default\n"
        "current-context: pgparity-test\n"
    )


def etcd_args(data_dir: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        "--name=default",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=default={peer_url}",
        "--unsafe-no-fsync=true",  # throwaway data: no fsync makes writes much faster
        "--log-level=warn",
    ]


def apiserver_args(state: Path, etcd_url: str, port: int, node_ip: str | None = None) -> list[str]:
    """Serving on loopback; with ``node_ip`` (a real node's network namespace, nothing else in
    it) on every address there, advertising the node IP as the ``kubernetes`` Service's endpoint."""
    pki = state / "pki"
    if node_ip is not None:
        serving = [
            "--bind-address=0.0.0.0",
            f"--advertise-address={node_ip}",
            "--kubelet-preferred-address-types=InternalIP",
        ]
    else:
        # No kubelets or other apiservers: don't reconcile the `kubernetes` Service endpoints.
        serving = [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",
        ]
    return [
        f"--etcd-servers={etcd_url}",
        *serving,
        f"--secure-port={port}",
        f"--cert-dir={state / 'apiserver-certs'}",  # default /var/run/kubernetes
        f"--tls-cert-file={pki / 'apiserver.crt'}",
        f"--tls-private-key-file={pki / 'apiserver.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        f"--service-account-issuer=https://127.0.0.1:{port}",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false",  # less start-up work, no request queuing
        "--profiling=false",
    ]


def controller_manager_args(state: Path) -> list[str]:
    pki = state / "pki"
    return [
        f"--kubeconfig={state / 'kubeconfig'}",
        "--leader-elect=false",
        "--secure-port=0",  # no HTTPS endpoint: nothing scrapes it, one port less to pick
        "--controllers=*",  # the default set (namespace, garbage collector, job, ...)
        f"--service-account-private-key-file={pki / 'sa.key'}",
        f"--root-ca-file={pki / 'ca.crt'}",  # published as kube-root-ca.crt in each namespace
        f"--cluster-signing-cert-file={pki / 'ca.crt'}",  # CSR signing, as kubeadm sets it up
        f"--cluster-signing-key-file={pki / 'ca.key'}",
        "--use-service-account-credentials=false",
        "--kube-api-qps=100",
        "--kube-api-burst=200",
    ]


def _http_get(url: str, ctx: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=ctx) as resp:
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------- the plane
class ControlPlane:
    """etcd + kube-apiserver + kube-controller-manager on free loopback ports.

    ``state_dir``: where certificates, etcd data, logs, ``kubeconfig`` and ``pids`` go. Default: a
    fresh private temp dir, removed by :meth:`stop`. With an explicit directory only the entries
    the plane creates are removed, then the directory if it is empty.

    ``die_with_parent`` (Linux): the children get SIGKILL when the thread that started them
    exits, so a killed test runner leaves no orphans. Start the plane from a long-lived thread.

    ``node_ip``: the plane of a real node (``tests/nodeplane.py``), started inside the node's
    network namespace: the API server serves on all its addresses and advertises ``node_ip``.
    """

    def __init__(
        self,
        assets: Path | str | None = None,
        *,
        state_dir: Path | str | None = None,
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        stop_grace: float = 10.0,
        die_with_parent: bool = True,
        wait_for_controllers: bool = True,
        node_ip: str | None = None,
    ) -> None:
        self._assets = Path(assets) if assets is not None else None
        self.node_ip = node_ip
        self._state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        self.die_with_parent = die_with_parent
        self.wait_for_controllers = wait_for_controllers
        self.startup_seconds: float | None = None
        self._dir: Path | None = None
        self._owns_dir = False
        self._procs: list[_Proc] = []
        self._server: str | None = None
        self._deadline = 0.0

    # --- public
    @property
    def dir(self) -> Path:
        if self._dir is None:
            raise ControlPlaneError("control plane is not started")
        return self._dir

    @property
    def kubeconfig(self) -> Path:
        """Admin kubeconfig (user ``admin`` in ``system:masters``; certificates embedded)."""
        return self.dir / "kubeconfig"

    @property
    def server(self) -> str:
        if self._server is None:
            raise ControlPlaneError("control plane is not started")
        return self._server

    @property
    def assets(self) -> Path:
        if self._assets is None:
            self._assets = find_assets()
        return self._assets

    @property
    def kubectl_path(self) -> str:
        """The kubectl built with the plane (same version) if present, else the one on PATH."""
        own = self.assets / "kubectl"
        if os.access(own, os.X_OK):
            return str(own)
        found = shutil.which("kubectl")
        if found is None:
            raise ControlPlaneError(f"no kubectl in {self.assets} or on PATH")
        return found

    @property
    def running(self) -> bool:
        return bool(self._procs) and all(p.alive() for p in self._procs)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this plane; with ``check``, a failure raises with its stderr."""
        cmd = [self.kubectl_path, f"--kubeconfig={self.kubeconfig}", "--request-timeout=30s"]
        proc = subprocess.run(
            [*cmd, *args], input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise ControlPlaneError(f"kubectl {' '.join(args)}: {proc.stderr.strip()}")
        return proc

    def start(self) -> ControlPlane:
        if self._procs:
            raise ControlPlaneError("control plane already started")
        t0 = time.monotonic()
        self._check_prerequisites()
        self._make_dir()
        atexit.register(self.stop)  # a test session that dies in Python still stops the plane
        try:
            make_pki(self.dir / "pki", self.node_ip)
            self._start_with_retries(t0)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop the processes (SIGTERM, then SIGKILL) and remove the state. Idempotent."""
        atexit.unregister(self.stop)
        try:
            procs, self._procs = self._procs, []
            stop_processes(procs, self.stop_grace)
        finally:
            if self._dir is not None and self._owns_dir:
                shutil.rmtree(self._dir, ignore_errors=True)
            elif self._dir is not None:
                remove_state(self._dir)
            self._dir = None
            self._server = None

    def detach(self) -> None:
        """Forget the processes without stopping them; they keep running (CLI ``up``)."""
        atexit.unregister(self.stop)
        self._procs = []
        self._dir = None

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- start-up steps
    def _check_prerequisites(self) -> None:
        if not _has_binaries(self.assets):
            raise ControlPlaneError(f"{self.assets} lacks one of {REQUIRED_BINARIES}")
        if shutil.which("openssl") is None:
            raise ControlPlaneError("the openssl command is needed for the plane's certificates")

    def _make_dir(self) -> None:
        if self._state_dir is None:
            sweep_stale_dirs(Path(tempfile.gettempdir()))
            self._dir = Path(tempfile.mkdtemp(prefix="pgparity-kube-"))  # mode 0700
            self._owns_dir = True
        else:
            self._state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._dir = self._state_dir
            self._owns_dir = False

    def _start_with_retries(self, t0: float) -> None:
        self._deadline = t0 + self.ready_timeout
        for attempt in range(3):
            try:
                self._start_processes()
                return
            except _PortInUseError:
                procs, self._procs = self._procs, []
                stop_processes(procs, self.stop_grace)
                if attempt == 2:
                    raise

    def _start_processes(self) -> None:
        etcd_port, peer_port, api_port = _free_ports(3)
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        self._start_etcd(etcd_url, f"http://127.0.0.1:{peer_port}")
        self._start_apiserver(etcd_url, api_port)
        self._start_controller_manager()

    def _start_etcd(self, url: str, peer_url: str) -> None:
        data = self.dir / "etcd-data"
        shutil.rmtree(data, ignore_errors=True)
        etcd = self._spawn("etcd", etcd_args(data, url, peer_url))
        self._wait(etcd, "healthy (/health)", lambda: _etcd_healthy(url))

    def _start_apiserver(self, etcd_url: str, port: int) -> None:
        self._server = f"https://127.0.0.1:{port}"
        apiserver = self._spawn(
            "kube-apiserver", apiserver_args(self.dir, etcd_url, port, self.node_ip)
        )
        ctx = self._ssl_context()
        url = f"{self._server}/readyz"
        self._wait(apiserver, "ready (/readyz)", lambda: _http_get(url, ctx) == (200, "ok"))
        path = self.dir / "kubeconfig"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(kubeconfig_text(self._server, self.dir / "pki"))

    def _start_controller_manager(self) -> None:
        kcm = self._spawn("kube-controller-manager", controller_manager_args(self.dir))
        if not self.wait_for_controllers:
            return
        # The serviceaccount controller making "default" in "default" shows the controllers run.
        ctx = self._ssl_context()
        url = f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"
        self._wait(kcm, "running controllers", lambda: _http_get(url, ctx)[0] == 200)

    # --- helpers
    def _spawn(self, name: str, args: list[str]) -> _Proc:
        log = self.dir / f"{name}.log"
        preexec = _die_with_parent(os.getpid()) if self.die_with_parent else None
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [str(self.assets / name), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,  # own process group: a terminal's Ctrl-C reaches only us
                preexec_fn=preexec,  # only calls prctl(); libc was loaded before the fork
            )
        proc = _Proc(name, popen.pid, _proc_start_ticks(popen.pid), log, popen)
        self._procs.append(proc)
        self._write_pids()
        return proc

    def _write_pids(self) -> None:
        lines = [f"{p.name} {p.pid} {p.start_ticks or ''}\n" for p in self._procs]
        tmp = self.dir / "pids.tmp"
        tmp.write_text("".join(lines))
        tmp.replace(self.dir / "pids")

    def _ssl_context(self) -> ssl.SSLContext:
        pki = self.dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
        return ctx

    def _wait(self, proc: _Proc, what: str, check: Callable[[], bool]) -> None:
        """Poll ``check`` until true; fail early if ``proc`` dies, or at the deadline."""
        while True:
            if not proc.alive():
                raise self._failure(proc, f"exited before it was {what}")
            with contextlib.suppress(OSError, ValueError, http.client.HTTPException):
                if check():
                    return
            if time.monotonic() > self._deadline:
                raise self._failure(proc, f"not {what} within {self.ready_timeout:.0f}s")
            time.sleep(0.1)

    def _failure(self, proc: _Proc, what: str) -> ControlPlaneError:
        tail = _tail(proc.log)
        code = proc.popen.poll() if proc.popen else None
        status = f" (exit code {code})" if code is not None else ""
        msg = f"{proc.name} {what}{status}; last lines of {proc.log}:\n{tail}"
        return _PortInUseError(msg) if "address already in use" in tail else ControlPlaneError(msg)


def _etcd_healthy(url: str) -> bool:
    status, body = _http_get(f"{url}/health")
    return status == 200 and json.loads(body).get("health") == "true"


# ------------------------------------------------------------------------- command line
def _cmd_up(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    live = [p for p in read_pids(state) if p.alive()]
    if live:
        names = ", ".join(f"{p.name} pid {p.pid}" for p in live)
        print(f"control plane already running in {state} ({names})", file=sys.stderr)
        print(state / "kubeconfig")
        return 0
    if (state / "pids").exists():
        print(f"removing stale state in {state}", file=sys.stderr)
        remove_state(state)
    plane = ControlPlane(state_dir=state, ready_timeout=args.timeout, die_with_parent=False)
    print(f"starting the control plane from {plane.assets} ...", file=sys.stderr)
    plane.start()
    print(
        f"control plane ready in {plane.startup_seconds:.1f}s at {plane.server}\n"
        f"  logs and pids in {state}\n"
        f"  use it:  export KUBECONFIG={plane.kubeconfig}\n"
        f"           {plane.kubectl_path} get namespaces\n"
        f"  stop it: python {sys.argv[0]} down --state-dir {args.state_dir}",
        file=sys.stderr,
    )
    print(plane.kubeconfig)
    plane.detach()
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    if not (state / "pids").is_file():
        print(f"no control plane in {state}", file=sys.stderr)
        return 0
    live = [p for p in read_pids(state) if p.alive()]
    stop_processes(live, args.grace)
    remove_state(state)
    stopped = ", ".join(f"{p.name}[{p.pid}]" for p in live) or "nothing (was not running)"
    print(f"stopped {stopped}; removed the state in {state}", file=sys.stderr)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    live = [p for p in read_pids(state) if p.alive()]
    if not live:
        print(f"no control plane running in {state}", file=sys.stderr)
        return 1
    pids = {p.name: p.pid for p in live}
    print(json.dumps({"kubeconfig": str(state / "kubeconfig"), "pids": pids}))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Real Kubernetes control plane on loopback.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a plane that keeps running after this command")
    up.add_argument("--state-dir", required=True, help="for kubeconfig, pids, logs, certs")
    up.add_argument("--timeout", type=float, default=DEFAULT_READY_TIMEOUT, help="seconds")
    down = sub.add_parser("down", help="stop the plane started by 'up' and remove its state")
    down.add_argument("--state-dir", required=True)
    down.add_argument("--grace", type=float, default=10.0, help="seconds before SIGKILL")
    status = sub.add_parser("status", help="exit 0 and print the pids if the plane runs")
    status.add_argument("--state-dir", required=True)
    sub.add_parser("assets", help="print the binaries' directory (building them if needed)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "up": _cmd_up,
        "down": _cmd_down,
        "status": _cmd_status,
    }
    try:
        if args.command == "assets":
            print(find_assets())
            return 0
        return commands[args.command](args)
    except ControlPlaneError as e:
        print(f"kubeplane: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
