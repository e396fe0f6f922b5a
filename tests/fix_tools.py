"""pytest fixtures for the GitOps and monitoring tools (``scripts/gitops-tools.sh``).

Each is located — built or unpacked on first use, then cached under
``~/.cache/pgparity/tools`` by version — once per session:

* ``argocd_health``: Argo CD's Lua runner (``hack/argocd-health``, gopher-lua).
* ``kstatus``: cli-utils' kstatus, as Flux uses it (``hack/kstatus``).
* ``promtool``, ``prometheus``: Debian's prometheus package, unpacked (never installed).
* ``helm``: the helm the node tier builds (``scripts/kube-assets.sh build helm``).
* ``prometheus_operator_crds``: the CRD files of the prometheus-operator Go module.
* ``prometheus_server``: starts ``PrometheusServer``s (loopback, temporary data) for a test.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from fix_kube import wait_for
from pgparity.pg.localcluster import free_port

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gitops-tools.sh"


def load_hack(relative: str) -> ModuleType:
    """A script under hack/ (the generators of committed files) as a module."""
    path = ROOT / "hack" / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def json_tool(tool: Path, objects: list[Any], *args: str) -> list[dict[str, str]]:
    """Run argocd-health (``eval SCRIPT``) or kstatus on objects: one result per object."""
    done = subprocess.run(
        [str(tool), *args], input=json.dumps(objects), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, str]] = json.loads(done.stdout)
    return results


def tool_dir(which: str) -> Path:
    """The directory ``scripts/gitops-tools.sh`` prints last for ``which``."""
    done = subprocess.run(
        [str(SCRIPT), "build", which], capture_output=True, text=True, check=False, timeout=1800
    )
    if done.returncode != 0:
        pytest.fail(f"scripts/gitops-tools.sh build {which} failed:\n{done.stderr}")
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def argocd_health() -> Path:
    return tool_dir("lua") / "argocd-health"


@pytest.fixture(scope="session")
def kstatus() -> Path:
    return tool_dir("kstatus") / "kstatus"


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    return tool_dir("prometheus") / "bin"


@pytest.fixture(scope="session")
def promtool(prometheus_bin: Path) -> Path:
    return prometheus_bin / "promtool"


@pytest.fixture(scope="session")
def helm() -> Path:
    return tool_dir("helm") / "helm"


@pytest.fixture(scope="session")
def prometheus_operator_crds() -> Path:
    return tool_dir("promcrds")


class PrometheusServer:
    """A Prometheus server of the test's own: loopback, a temporary data directory, scraping
    ``targets`` as job ``pgparity`` every second and evaluating ``rules`` every second. Started
    and stopped by process id; never a system service."""

    def __init__(self, binary: Path, workdir: Path, targets: list[str], rules: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "scrape_configs": [
                {
                    "job_name": "pgparity",
                    # As the chart's monitors: the series keep their own namespace label.
                    "honor_labels": True,
                    "static_configs": [{"targets": targets}],
                }
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.console.templates=/nonexistent",
                    "--web.console.libraries=/nonexistent",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>: its data; fails the test on an error status."""
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def ready(self) -> bool:
        assert self.process.poll() is None, self.log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def prometheus_server(
    prometheus_bin: Path, tmp_path: Path
) -> Iterator[Callable[[list[str], Path], PrometheusServer]]:
    """Start Prometheus servers (targets, rule file); all are stopped after the test."""
    started: list[PrometheusServer] = []

    def start(targets: list[str], rules: Path) -> PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        server = PrometheusServer(prometheus_bin / "prometheus", workdir, targets, rules)
        started.append(server)
        wait_for("Prometheus ready", server.ready)
        return server

    yield start
    for server in started:
        server.stop()
