"""pytest fixtures for a real Kubernetes control plane (see kubeplane.py).

Load them from a conftest.py (``pytest_plugins = ["fix_kube"]``, with ``tests`` on sys.path,
e.g. ``pythonpath = ["tests"]`` in the pytest config) or with ``pytest -p fix_kube``.

* ``kube_plane`` (session): one etcd + kube-apiserver + kube-controller-manager per session;
  has ``.kubeconfig`` (Path), ``.server`` (URL) and ``.kubectl(*args)``. The binaries come from
  ``KUBEBUILDER_ASSETS`` or ``scripts/kube-assets.sh`` (built on first use: minutes when cold).
* ``kube_namespace`` (function): a fresh, uniquely named namespace, deleted afterwards without
  waiting for the deletion to finish.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from kubeplane import ControlPlane


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
