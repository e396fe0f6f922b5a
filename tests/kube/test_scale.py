"""The operator with more objects than executor threads: nothing starves.

Issue 11: a synchronous daemon per StagingClone held one executor thread each for the clone's
lifetime; with more clones than ``settings.execution.max_workers`` every synchronous timer —
all reconciliation — waited forever (on main this test saw 48 of 65 objects never get a
status). These tests create more clones than the operator has threads for blocking calls — some
Ready on a real primary + replica, some pointing at a closed port, some at a server that accepts
connections and never answers (a hung database) — plus MigrationValidations on all of them, and
require that every object gets a status and that a spec change of every object is reflected in
its status afterwards.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from fix_kube import wait_for
from fix_operator import Operator, external_clone_documents
from fix_pg import PgDatabase
from kubeplane import ControlPlane
from pgparity import config
from pgparity.pg.localcluster import free_port

pytestmark = pytest.mark.kube

READY_CLONES = 13
DOWN_CLONES = 12
HUNG_CLONES = 10
VALIDATIONS_PER_KIND = 10


@pytest.fixture
def hung_server() -> Iterator[str]:
    """A DSN whose server completes TCP handshakes (the kernel does) and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # never accepted: libpq waits for the server's reply until its timeout
    try:
        yield f"host=127.0.0.1 port={listener.getsockname()[1]} dbname=hung user=hung"
    finally:
        listener.close()


def _validation(name: str, clone: str) -> dict[str, Any]:
    return {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "MigrationValidation",
        "metadata": {"name": name},
        "spec": {"cloneRef": {"name": clone}, "migration": {"sql": "SELECT 1;"}},
    }


def _apply(plane: ControlPlane, namespace: str, documents: list[dict[str, Any]]) -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": documents}
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(listing))


def _objects(plane: ControlPlane, namespace: str) -> list[dict[str, Any]]:
    out = plane.kubectl("get", "stc,mv", "-n", namespace, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(out)["items"]
    return items


def _lagging(items: list[dict[str, Any]], test: Any) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in items if not test(o)]


def _wait_all(plane: ControlPlane, namespace: str, what: str, test: Any, count: int) -> None:
    """Every one of the ``count`` objects passes ``test``; the failure names the laggards."""
    last: list[str] = []

    def probe() -> bool:
        nonlocal last
        items = _objects(plane, namespace)
        last = _lagging(items, test) + ["(missing)"] * (count - len(items))
        return not last

    try:
        wait_for(what, probe, timeout=90)
    except pytest.fail.Exception:
        pytest.fail(f"{what}: {len(last)} of {count} objects lag: {', '.join(last[:12])}")


def _has_status(item: dict[str, Any]) -> bool:
    return bool((item.get("status") or {}).get("phase"))


def _current(item: dict[str, Any]) -> bool:
    status = item.get("status") or {}
    return bool(status.get("observedGeneration") == item["metadata"]["generation"])


def test_more_clones_than_workers_are_all_reconciled(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    small_clone_db: PgDatabase,
    hung_server: str,
) -> None:
    assert config.load().max_workers < DOWN_CLONES + HUNG_CLONES  # threads for blocking calls
    closed = f"host=127.0.0.1 port={free_port()} dbname=gone user=gone"
    documents: list[dict[str, Any]] = []
    for i in range(READY_CLONES):
        documents += external_clone_documents(
            f"ready-{i}", small_clone_db.dsn, small_clone_db.replica_dsn
        )
    for i in range(DOWN_CLONES):
        documents += external_clone_documents(f"down-{i}", closed, closed)
    for i in range(HUNG_CLONES):
        documents += external_clone_documents(f"hung-{i}", hung_server, hung_server)
    for i in range(VALIDATIONS_PER_KIND):
        documents.append(_validation(f"on-ready-{i}", f"ready-{i}"))
        documents.append(_validation(f"on-down-{i}", f"down-{i}"))
        documents.append(_validation(f"on-hung-{i}", f"hung-{i}"))
    _apply(kube_plane, kube_namespace, documents)
    total = READY_CLONES + DOWN_CLONES + HUNG_CLONES + 3 * VALIDATIONS_PER_KIND

    _wait_all(kube_plane, kube_namespace, "a status on every object", _has_status, total)
    _wait_all(
        kube_plane,
        kube_namespace,
        "every reachable clone Ready",
        lambda o: (
            o["kind"] != "StagingClone"
            or not o["metadata"]["name"].startswith("ready-")
            or o["status"]["phase"] == "Ready"
        ),
        total,
    )
    found = {o["metadata"]["name"]: o["status"] for o in _objects(kube_plane, kube_namespace)}
    for broken in ("down-0", "hung-0"):
        assert found[broken]["phase"] != "Ready"
        ready = {c["type"]: c for c in found[broken]["conditions"]}["Ready"]
        assert ready["reason"] == "Unreachable"
    assert "timeout expired" in found["hung-0"]["message"]
    assert found["on-hung-0"]["phase"] == "WaitingForClone"

    # Every object keeps being reconciled: a spec change shows in every status.
    for item in _objects(kube_plane, kube_namespace):
        name = item["metadata"]["name"]
        change: dict[str, Any]
        if item["kind"] == "StagingClone":
            kind, change = "stc", {"spec": {"postgres": {"parameters": {"work_mem": "8MB"}}}}
        else:
            kind, change = "mv", {"spec": {"deadlineSeconds": 900}}
        kube_plane.kubectl(
            "patch", kind, name, "-n", kube_namespace, "--type=merge", "-p", json.dumps(change)
        )
    _wait_all(kube_plane, kube_namespace, "every spec change in status", _current, total)
    clones = [o for o in _objects(kube_plane, kube_namespace) if o["kind"] == "StagingClone"]
    assert all(o["status"]["parameters"] == {"work_mem": "8MB"} for o in clones)
