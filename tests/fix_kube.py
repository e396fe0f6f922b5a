"""pytest fixtures for a real Kubernetes control plane (see kubeplane.py).

Load them from a conftest.py (``pytest_plugins = ["fix_kube"]``, with ``tests`` on sys.path,
e.g. ``pythonpath = ["tests"]`` in the pytest config) or with ``pytest -p fix_kube``.

* ``kube_plane`` (session): one etcd + kube-apiserver + kube-controller-manager per session;
  has ``.kubeconfig`` (Path), ``.server`` (URL) and ``.kubectl(*args)``. The binaries come from
  ``KUBEBUILDER_ASSETS`` or ``scripts/kube-assets.sh`` (built on first use: minutes when cold).
* ``kube_namespace`` (function): a fresh, uniquely named namespace, deleted afterwards without
  waiting for the deletion to finish.
* ``wait_for(what, probe)``: poll until the API server (or anything else) shows a result;
  ``wait_established(plane, *crds)``: until CRDs are Established.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from kubeplane import ControlPlane

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def wait_established(plane: ControlPlane, *crds: str) -> None:
    """Wait until the CRDs are Established. ``kubectl wait`` fails at once (rather than waiting)
    while a new CRD has no status conditions at all, so it is tried again until it waits."""

    def established() -> bool:
        done = plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            *(f"crd/{name}" for name in crds),
            check=False,
        )
        return done.returncode == 0

    wait_for(f"CRDs {', '.join(crds)} established", established, timeout=90)


@pytest.fixture(scope="session")
def kube_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane()
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()


@pytest.fixture
def kube_namespace(kube_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    # A DNS-1123 label (at most 63 characters) from the test name, unique by a random suffix.
    base = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{base or 'test'}-{uuid.uuid4().hex[:8]}"
    kube_plane.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kube_plane.kubectl("delete", "namespace", name, "--wait=false", check=False)
