"""pytest fixtures for the GitOps and monitoring tools (``scripts/gitops-tools.sh``).

Each is located — built or unpacked on first use, then cached under
``~/.cache/pgparity/tools`` by version — once per session:

* ``argocd_health``: Argo CD's Lua runner (``hack/argocd-health``, gopher-lua).
* ``promtool``, ``prometheus``: Debian's prometheus package, unpacked (never installed).
* ``helm``: the helm the node tier builds (``scripts/kube-assets.sh build helm``).
* ``prometheus_operator_crds``: the CRD files of the prometheus-operator Go module.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

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
