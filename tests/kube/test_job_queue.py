"""The validation queue on the real control plane: limits, order, restart, hand-over.

The operator runs as its own process (``pgparity operator``, as the Deployment runs it) with
``PGPARITY_MAX_CONCURRENT_JOBS=2``, watching only the test's namespace. Five external clones on
one real primary + replica; six validations created one after another. What the kubelet would
do — end a Job's pod — the test plays (``JobPlayer.finish``), and nothing else.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fix_kube import wait_for
from fix_operator import (
    JobPlayer,
    OperatorProcess,
    conditions,
    external_clone,
    listed,
    operator_process,
    ready_clone,
    status_of,
)
from fix_pg import PgDatabase
from kubeplane import ControlPlane

pytestmark = pytest.mark.kube

LIMIT = 2


class LimitedOperator:
    """The operator process for one namespace, restartable."""

    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.environment, self.log = environment, log
        self._context: Any = None
        self.process: OperatorProcess | None = None

    def start(self) -> None:
        self._context = operator_process(self.environment, self.log)
        self.process = self._context.__enter__()

    def stop(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)

    def metric(self, name: str) -> float | None:
        assert self.process is not None
        return self.process.metric(name)


@pytest.fixture
def limited_operator(
    operator_plane: dict[str, str], kube_namespace: str, tmp_path: Path
) -> Iterator[LimitedOperator]:
    environment = {
        **operator_plane,
        "PGPARITY_NAMESPACES": kube_namespace,
        "PGPARITY_MAX_CONCURRENT_JOBS": str(LIMIT),
    }
    operator = LimitedOperator(environment, tmp_path / "operator.log")
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


def _create(plane: ControlPlane, namespace: str, *validations: tuple[str, str]) -> None:
    items = [
        {
            "apiVersion": "pgparity.io/v1alpha1",
            "kind": "MigrationValidation",
            "metadata": {"name": name},
            "spec": {"cloneRef": {"name": clone}, "migration": {"sql": f"SELECT '{name}';"}},
        }
        for name, clone in validations
    ]
    listing = {"apiVersion": "v1", "kind": "List", "items": items}
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(listing))


def _state(status: dict[str, Any]) -> tuple[Any, ...]:  # (phase, reason, queue position)
    reason = conditions(status).get("Validated", {}).get("reason")
    return status.get("phase"), reason, status.get("queuePosition")


def _states(plane: ControlPlane, namespace: str) -> dict[str, tuple[str | None, ...]]:
    out = plane.kubectl("get", "mv", "-n", namespace, "-o", "json").stdout
    return {o["metadata"]["name"]: _state(o.get("status") or {}) for o in json.loads(out)["items"]}


def _wait_states(
    plane: ControlPlane, namespace: str, expected: dict[str, tuple[Any, ...]]
) -> dict[str, tuple[str | None, ...]]:
    """Until every named validation is in the expected (phase, reason, position)."""

    def matches(state: tuple[str | None, ...], want: tuple[Any, ...]) -> bool:
        return all(w is Any or s == w for s, w in zip(state, want, strict=True))

    last: dict[str, tuple[str | None, ...]] = {}

    def probe() -> bool:
        nonlocal last
        last = _states(plane, namespace)
        return all(matches(last.get(n, (None,) * 3), want) for n, want in expected.items())

    try:
        wait_for("the queue", probe)
    finally:
        print("last seen:", last)  # shown when the wait fails
    return last


RUNNING = ("Running", Any, None)
BUSY = ("WaitingForClone", "CloneBusy", None)


def queued(position: int) -> tuple[str, str, int]:
    return ("Pending", "Queued", position)


def _finish(plane: ControlPlane, namespace: str, validation: str, workdir: Path) -> None:
    jobs = listed(plane, namespace, "job", f"pgparity.io/validation={validation}")
    assert len(jobs) == 1, jobs
    JobPlayer(plane, namespace, jobs[0], workdir).finish(succeeded=False)


def _jobs(plane: ControlPlane, namespace: str) -> list[str]:
    found = listed(plane, namespace, "job", "app.kubernetes.io/component=validation")
    return sorted(j["metadata"]["labels"]["pgparity.io/validation"] for j in found)


def test_job_limit_queue_order_restart_and_hand_over(
    kube_plane: ControlPlane,
    kube_namespace: str,
    small_clone_db: PgDatabase,
    limited_operator: LimitedOperator,
    player_workdir: Path,
) -> None:
    ns = kube_namespace
    for i in range(5):
        external_clone(kube_plane, ns, f"c{i}", small_clone_db)
    for i in range(5):
        ready_clone(kube_plane, ns, f"c{i}")
    # One after another, a second apart: creation order is queue order, whatever the names.
    for name, clone in (("zeta", "c0"), ("yank", "c1"), ("omega", "c0"), ("xray", "c2")):
        _create(kube_plane, ns, (name, clone))
        time.sleep(1.1)
    _create(kube_plane, ns, ("beta", "c4"), ("alpha", "c3"))  # most likely the same second
    created = {
        o["metadata"]["name"]: o["metadata"]["creationTimestamp"]
        for o in json.loads(kube_plane.kubectl("get", "mv", "-n", ns, "-o", "json").stdout)["items"]
    }
    first, second = sorted(("alpha", "beta"), key=lambda n: (created[n], n))

    expected = {
        "zeta": RUNNING,
        "yank": RUNNING,
        "omega": BUSY,  # waits for c0 without taking a slot
        "xray": queued(1),  # created before alpha and beta: ahead of them
        first: queued(2),
        second: queued(3),
    }
    _wait_states(kube_plane, ns, expected)
    assert _jobs(kube_plane, ns) == ["yank", "zeta"]
    assert conditions(status_of(kube_plane, ns, "mv", "omega"))["Validated"]["message"] == (
        "another validation (zeta) is running on StagingClone c0"
    )
    wait_for(
        "the queue metrics",
        lambda: (
            limited_operator.metric("pgparity_validation_queue_length") == 3
            and limited_operator.metric("pgparity_validation_jobs_running") == LIMIT
        ),
    )
    header, row = kube_plane.kubectl(
        "get", "mv", "xray", "-n", ns, "-o", "wide"
    ).stdout.splitlines()
    column = header.index("QUEUE")  # kubectl aligns the columns under their headers
    assert row[column:].split()[0] == "1"

    # A restarted operator rebuilds the same queue from the API objects: nothing moves.
    before = _states(kube_plane, ns)
    limited_operator.stop()
    limited_operator.start()
    wait_for(
        "the restarted operator's queue",
        lambda: limited_operator.metric("pgparity_validation_queue_length") == 3,
    )
    time.sleep(2)  # two resyncs (PGPARITY_RECONCILE_SECONDS=1): nothing may have moved
    assert _states(kube_plane, ns) == before
    assert _jobs(kube_plane, ns) == ["yank", "zeta"]

    # zeta ends: c0 is free and omega, the earliest waiting, takes the slot — not xray.
    _finish(kube_plane, ns, "zeta", player_workdir)
    _wait_states(
        kube_plane,
        ns,
        {"zeta": ("Failed", Any, None), "omega": RUNNING, "xray": queued(1), first: queued(2)},
    )
    # yank ends: the head of the queue starts, the rest move up.
    _finish(kube_plane, ns, "yank", player_workdir)
    _wait_states(
        kube_plane, ns, {"xray": RUNNING, first: queued(1), second: queued(2), "omega": RUNNING}
    )
    assert _jobs(kube_plane, ns) == ["omega", "xray", "yank", "zeta"]
    wait_for(
        "the queue metrics",
        lambda: limited_operator.metric("pgparity_validation_queue_length") == 2,
    )
