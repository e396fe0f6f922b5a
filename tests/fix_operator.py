"""The operator in-process (kopf's KopfRunner) against the real control plane, under its RBAC.

The operator does not run as cluster-admin: the fixture applies the ServiceAccount, ClusterRole
and binding that ``pgparity render rbac`` generates, mints a token for that ServiceAccount and
gives the operator a kubeconfig with it. ``JobPlayer`` plays the parts of the kubelet a real
cluster would play for a validation Job — it mounts the Job's ConfigMap, resolves its Secret
and field references, runs its command with a token of the Job's own ServiceAccount, and
reports the pod's phase — and nothing else.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fix_kube import wait_established, wait_for
from fix_pg import PgDatabase, _create_database, _drop_database
from kubeplane import ControlPlane
from pgparity.manifests.rbac import operator_rbac
from pgparity.pg.localcluster import LocalCluster, free_port

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_NAMESPACE = "pgparity-system"


def get(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    result = plane.kubectl("get", "-n", namespace, kind, name, "-o", "json", check=False)
    if result.returncode != 0:
        return None
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def listed(plane: ControlPlane, namespace: str, kind: str, selector: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "-n", namespace, kind, "-l", selector, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def apply(
    plane: ControlPlane, namespace: str, documents: list[dict[str, Any]] | dict[str, Any]
) -> None:
    docs = documents if isinstance(documents, list) else [documents]
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(docs))


def external_clone_documents(
    name: str, dsn: str, replica_dsn: str | None, parameters: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """An external StagingClone and the Secret with its connection strings."""
    data = {"dsn": dsn}
    if replica_dsn is not None:
        data["replicaDsn"] = replica_dsn
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-conn"},
        "stringData": data,
    }
    clone = {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "StagingClone",
        "metadata": {"name": name},
        "spec": {
            "provider": "external",
            "external": {"secretRef": {"name": f"{name}-conn"}},
            "postgres": {"parameters": parameters or {}},
        },
    }
    return [secret, clone]


def external_clone(
    plane: ControlPlane,
    namespace: str,
    name: str,
    db: PgDatabase,
    parameters: dict[str, str] | None = None,
    replica: bool = True,
) -> None:
    documents = external_clone_documents(
        name, db.dsn, db.replica_dsn if replica else None, parameters
    )
    plane.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}),
    )


def status_of(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    found = get(plane, namespace, kind, name) or {}
    status: dict[str, Any] = found.get("status") or {}
    return status


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


def condition(kind: str, field: str, value: str) -> Callable[[dict[str, Any]], bool]:
    """A status test: condition ``kind`` has ``field`` (status, reason) equal to ``value``."""
    return lambda status: conditions(status).get(kind, {}).get(field) == value


def wait_status(
    plane: ControlPlane,
    namespace: str,
    kind: str,
    name: str,
    what: str,
    until: Callable[[dict[str, Any]], bool],
) -> dict[str, Any]:
    """The object's status, once ``until`` holds for it."""

    def probe() -> dict[str, Any] | None:
        status = status_of(plane, namespace, kind, name)
        return status if until(status) else None

    return wait_for(what, probe)


def ready_clone(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return wait_status(
        plane, namespace, "stc", name, f"clone {name} Ready", lambda s: s.get("phase") == "Ready"
    )


def token_kubeconfig(plane: ControlPlane, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that authenticates as ``namespace/account`` with a fresh token."""
    token = plane.kubectl(
        "create", "token", account, "-n", namespace, "--duration=2h"
    ).stdout.strip()
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [
                    {
                        "name": account,
                        "context": {
                            "cluster": cluster["name"],
                            "user": account,
                            "namespace": namespace,
                        },
                    }
                ],
                "current-context": account,
            }
        )
    )
    return path


def install_crds(plane: ControlPlane) -> None:
    """pgparity's CRDs (crds/), established."""
    plane.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(plane, "stagingclones.pgparity.io", "migrationvalidations.pgparity.io")


@pytest.fixture(scope="session")
def operator_plane(
    kube_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """CRDs, the operator's namespace and RBAC, and the environment the operator runs with."""
    install_crds(kube_plane)
    kube_plane.kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    apply(kube_plane, OPERATOR_NAMESPACE, operator_rbac(OPERATOR_NAMESPACE))
    config = token_kubeconfig(
        kube_plane,
        OPERATOR_NAMESPACE,
        "pgparity-operator",
        tmp_path_factory.mktemp("operator") / "kubeconfig",
    )
    environment = {
        "KUBECONFIG": str(config),
        "PGPARITY_RECONCILE_SECONDS": "1",
        "PGPARITY_MONITOR_SECONDS": "1",
        "PGPARITY_CHECK_TIMEOUT_SECONDS": "2",
        "PGPARITY_METRICS_PORT": str(free_port()),
        "PGPARITY_LIVENESS_PORT": "0",
        "PGPARITY_IMAGE": "pgparity:test",
        "PGPARITY_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
    }
    saved = {k: os.environ.get(k) for k in environment}
    os.environ.update(environment)
    try:
        yield environment
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Operator:
    """Start and stop the operator in this process (kopf's KopfRunner)."""

    def __init__(self) -> None:
        self._runner: Any = None

    def start(self) -> None:
        from kopf.testing import KopfRunner

        from pgparity.kube import client

        client.reset()
        self._runner = KopfRunner(["run", "-A", "--standalone", "-m", "pgparity.handlers"])
        self._runner.__enter__()

    def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            runner.__exit__(None, None, None)
            assert runner.exception is None, runner.output

    @property
    def output(self) -> str:
        return str(self._runner.output) if self._runner is not None else ""


@pytest.fixture
def running_operator(operator_plane: dict[str, str]) -> Iterator[Operator]:
    operator = Operator()
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


@dataclass
class OperatorProcess:
    """``pgparity operator`` in a process of its own, the way the Deployment runs it."""

    process: subprocess.Popen[bytes]
    metrics_port: int

    def ticks(self) -> int:
        """CPU time used so far (user + system), in clock ticks."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def memory_mb(self, field_name: str) -> float:
        """A /proc/PID/status memory figure (VmRSS, VmHWM) in MB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field_name} in /proc/{self.process.pid}/status")

    def metric(self, name: str) -> float | None:
        """The first sample of a metric on the operator's /metrics, or None."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith((name + " ", name + "{")):
                    return float(line.rsplit(" ", 1)[1])
        return None

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def operator_process(environment: Mapping[str, str], log_path: Path) -> Iterator[OperatorProcess]:
    """Run the operator with ``environment`` (KUBECONFIG, PGPARITY_*) until the block ends."""
    metrics_port, liveness_port = free_port(), free_port()
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "PGPARITY_"))}
    env = {
        **inherited,
        **environment,
        "PGPARITY_METRICS_PORT": str(metrics_port),
        "PGPARITY_LIVENESS_PORT": str(liveness_port),
    }
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "pgparity"), "operator", "--log-format", "plain"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = OperatorProcess(process, metrics_port)
    try:
        wait_for("the operator's /healthz", lambda: _healthy(liveness_port))
        yield running
    finally:
        running.stop()


@pytest.fixture
def small_clone_db(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    """A database marked as a clone, with one empty table: a clone that is quick to check."""
    db = _create_database(pg_cluster, clone=True)
    db.execute("CREATE TABLE items (id int PRIMARY KEY)")
    pg_cluster.wait_replay()
    yield db
    _drop_database(pg_cluster, db.name)


class JobPlayer:
    """Plays the kubelet for one Job: mounts, environment, the command, the pod's phase."""

    def __init__(
        self, plane: ControlPlane, namespace: str, job: dict[str, Any], workdir: Path
    ) -> None:
        self.plane, self.namespace, self.job, self.workdir = plane, namespace, job, workdir
        self.container = job["spec"]["template"]["spec"]["containers"][0]

    def mounts(self) -> dict[str, Path]:
        """ConfigMap volumes written to directories, as the kubelet mounts them. (The Job's
        emptyDir at /tmp needs no playing: the command runs where /tmp is writable.)"""
        volumes = {v["name"]: v for v in self.job["spec"]["template"]["spec"]["volumes"]}
        mounted = {}
        for mount in self.container.get("volumeMounts", []):
            source = volumes[mount["name"]]
            if "configMap" not in source:
                continue
            directory = self.workdir / mount["name"]
            directory.mkdir(parents=True, exist_ok=True)
            configmap = get(self.plane, self.namespace, "configmap", source["configMap"]["name"])
            assert configmap is not None
            for key, value in (configmap.get("data") or {}).items():
                (directory / key).write_text(value)
            mounted[mount["mountPath"]] = directory
        return mounted

    def environment(self) -> dict[str, str]:
        # Nothing of this process's own configuration or credentials: only what the Job says.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PGPARITY_", "KUBE", "AWS_", "GOOGLE_", "AZURE_"))
        }
        for item in self.container.get("env", []):
            source = item.get("valueFrom", {})
            if "value" in item:
                env[item["name"]] = item["value"]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                secret = get(self.plane, self.namespace, "secret", ref["name"])
                data = (secret or {}).get("data", {})
                if ref["key"] in data:
                    env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
                elif not ref.get("optional"):
                    raise AssertionError(f"missing secret key {ref}")
            elif "fieldRef" in source:
                assert source["fieldRef"]["fieldPath"] == "metadata.namespace"
                env[item["name"]] = self.namespace
        account = self.job["spec"]["template"]["spec"].get("serviceAccountName")
        if account:  # seeding Jobs run without one: they never call the API server
            env["KUBECONFIG"] = str(
                token_kubeconfig(
                    self.plane, self.namespace, account, self.workdir / "job-kubeconfig"
                )
            )
        return env

    def run(self) -> subprocess.CompletedProcess[str]:
        mounted = self.mounts()
        command = list(self.container["command"])
        assert command[0] == "pgparity"
        for path, directory in mounted.items():
            command = [arg.replace(path, str(directory)) for arg in command]
        return subprocess.run(
            [sys.executable, "-m", "pgparity", *command[1:]],
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def finish(self, succeeded: bool) -> None:
        """Report the pod's end; the real job controller then completes or fails the Job."""
        pod = wait_for(
            "the Job's pod",
            lambda: next(
                iter(
                    listed(
                        self.plane,
                        self.namespace,
                        "pod",
                        f"job-name={self.job['metadata']['name']}",
                    )
                ),
                None,
            ),
        )
        phase = "Succeeded" if succeeded else "Failed"
        code = 0 if succeeded else 4
        state = {
            "terminated": {
                "exitCode": code,
                "reason": "Completed" if succeeded else "Error",
                "startedAt": "2026-11-25T10:00:00Z",
                "finishedAt": "2026-11-25T10:00:05Z",
            }
        }
        status = {
            "status": {
                "phase": phase,
                "containerStatuses": [
                    {
                        "name": self.container["name"],
                        "ready": False,
                        "restartCount": 0,
                        "image": self.container["image"],
                        "imageID": "",
                        "state": state,
                    }
                ],
            }
        }
        self.plane.kubectl(
            "patch",
            "pod",
            pod["metadata"]["name"],
            "-n",
            self.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )


@pytest.fixture
def player_workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pgparity-job-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
