"""The parity floor in the operator: ParityVerified, its Events and metric, and validations that
wait on a clone whose parity is broken.

Real API server and controller-manager, real PostgreSQL: "production" and the clone are two
databases of the session cluster. What a real cluster does and this test plays instead: the
kubelet running the parity Job's command and reporting its pod (``JobPlayer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fix_kube import wait_for
from fix_operator import (
    JobPlayer,
    Operator,
    condition,
    external_clone,
    get,
    listed,
    ready_clone,
    status_of,
    wait_status,
)
from fix_pg import PgDatabase
from kubeplane import ControlPlane
from pgparity import metrics

pytestmark = pytest.mark.kube


@pytest.fixture
def production_db(pg_plain_db: PgDatabase) -> PgDatabase:
    return pg_plain_db


@pytest.fixture
def clone_db(pg_db: PgDatabase) -> PgDatabase:
    return pg_db


def _with_parity(
    plane: ControlPlane, namespace: str, name: str, production: PgDatabase, **parity: Any
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "production"},
        "stringData": {"dsn": production.dsn},
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(secret))
    patch = {"spec": {"parity": {"productionSecretRef": {"name": "production"}, **parity}}}
    plane.kubectl("patch", "stc", name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def _play_parity_job(
    plane: ControlPlane, namespace: str, clone: str, seen: set[str], workdir: Path
) -> dict[str, Any]:
    """Run the next parity Job the operator creates (one not in ``seen``), as a kubelet
    would; the Job."""
    job = wait_for(
        "a new parity Job",
        lambda: next(
            (
                j
                for j in listed(plane, namespace, "job", "app.kubernetes.io/component=parity")
                if j["metadata"]["name"] not in seen
            ),
            None,
        ),
    )
    seen.add(job["metadata"]["name"])
    player = JobPlayer(plane, namespace, job, workdir)
    result = player.run()
    assert result.returncode == 0, result.stderr
    player.finish(True)
    return dict(job)


def _validation(plane: ControlPlane, namespace: str, name: str, clone: str, **spec: Any) -> None:
    body = {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "MigrationValidation",
        "metadata": {"name": name},
        "spec": {"cloneRef": {"name": clone}, "migration": {"sql": "SELECT 1;"}, **spec},
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def test_parity_verified_gates_validations(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    production_db: PgDatabase,
    clone_db: PgDatabase,
    player_workdir: Path,
) -> None:
    plane, ns = kube_plane, kube_namespace
    clone_db.execute(f"ALTER DATABASE {clone_db.name} SET work_mem = '64MB'")
    external_clone(plane, ns, "shop", clone_db)
    ready_clone(plane, ns, "shop")
    _with_parity(plane, ns, "shop", production_db)
    seen: set[str] = set()

    # The floor is broken (a database-level work_mem): named in the reason, an Event, a metric.
    job = _play_parity_job(plane, ns, "shop", seen, player_workdir)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PGPARITY_PRODUCTION_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "production"
    assert production_db.dsn not in json.dumps(job)  # DSNs by reference, never in the spec
    status = wait_status(
        plane,
        ns,
        "stc",
        "shop",
        "ParityVerified False",
        condition("ParityVerified", "reason", "ConfigurationBroken"),
    )
    verified = {c["type"]: c for c in status["conditions"]}["ParityVerified"]
    assert verified["status"] == "False"
    assert "work_mem" in verified["message"]
    assert status["parity"]["firstBroken"] == "configuration"
    assert status["parity"]["dimensions"]["configuration"] is False
    assert status["phase"] == "Ready"  # parity is not readiness
    labels = {"namespace": ns, "name": "shop"}
    assert (
        metrics.REGISTRY.get_sample_value(
            "pgparity_clone_parity", {**labels, "dimension": "configuration"}
        )
        == 0
    )
    assert (
        metrics.REGISTRY.get_sample_value(
            "pgparity_clone_parity", {**labels, "dimension": "server"}
        )
        == 1
    )
    events = json.loads(plane.kubectl("get", "events", "-n", ns, "-o", "json").stdout)
    assert "ConfigurationBroken" in {e["reason"] for e in events["items"]}

    # A validation waits on it; one that allows drift runs and records the state it ran under.
    _validation(plane, ns, "waits", "shop")
    waiting = wait_status(
        plane,
        ns,
        "mv",
        "waits",
        "waiting on parity",
        condition("Validated", "reason", "ParityBroken"),
    )
    assert waiting["phase"] == "WaitingForClone"
    assert "allowParityDrift" in waiting["message"]
    _validation(plane, ns, "drifts", "shop", allowParityDrift=True)
    running = wait_status(
        plane, ns, "mv", "drifts", "running despite drift", lambda s: bool(s.get("jobName"))
    )
    assert running["parity"] == "Broken"
    drift_job = get(plane, ns, "job", running["jobName"])
    assert drift_job is not None
    command = drift_job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--parity-state") + 1] == "Broken"  # into the report too

    # Brought to parity, and checked again (a changed spec.parity is checked at once): the
    # condition holds and the waiting validation goes ahead.
    clone_db.execute(f"ALTER DATABASE {clone_db.name} RESET work_mem")
    _with_parity(plane, ns, "shop", production_db, intervalMinutes=11)
    _play_parity_job(plane, ns, "shop", seen, player_workdir)
    wait_status(
        plane,
        ns,
        "stc",
        "shop",
        "ParityVerified True",
        condition("ParityVerified", "reason", "ParityHolds"),
    )
    assert (
        metrics.REGISTRY.get_sample_value(
            "pgparity_clone_parity", {**labels, "dimension": "configuration"}
        )
        == 1
    )
    # (It then waits for the clone behind "drifts", whose Job nobody plays: CloneBusy.)
    wait_status(
        plane,
        ns,
        "mv",
        "waits",
        "no longer waiting on parity",
        lambda s: bool(s.get("phase")) and not condition("Validated", "reason", "ParityBroken")(s),
    )


def test_a_failed_parity_check_is_unknown_and_does_not_gate(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    production_db: PgDatabase,
    clone_db: PgDatabase,
    player_workdir: Path,
) -> None:
    plane, ns = kube_plane, kube_namespace
    external_clone(plane, ns, "shop", clone_db)
    ready_clone(plane, ns, "shop")
    _with_parity(plane, ns, "shop", production_db)
    job = wait_for(
        "the parity Job",
        lambda: next(iter(listed(plane, ns, "job", "app.kubernetes.io/component=parity")), None),
    )
    JobPlayer(plane, ns, job, player_workdir).finish(False)  # production unreachable, say
    status = wait_status(
        plane,
        ns,
        "stc",
        "shop",
        "ParityVerified Unknown",
        condition("ParityVerified", "reason", "ParityCheckFailed"),
    )
    assert {c["type"]: c for c in status["conditions"]}["ParityVerified"]["status"] == "Unknown"
    _validation(plane, ns, "goes", "shop")
    running = wait_status(plane, ns, "mv", "goes", "running", lambda s: bool(s.get("jobName")))
    assert running["parity"] == "Unknown"
    assert get(plane, ns, "configmap", "shop-parity") is not None
    assert status_of(plane, ns, "stc", "shop")["phase"] == "Ready"


def test_a_clone_without_spec_parity_is_not_checked(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    clone_db: PgDatabase,
) -> None:
    plane, ns = kube_plane, kube_namespace
    external_clone(plane, ns, "plain", clone_db)
    status = ready_clone(plane, ns, "plain")
    assert "ParityVerified" not in {c["type"] for c in status["conditions"]}
    assert listed(plane, ns, "job", "app.kubernetes.io/component=parity") == []
    _validation(plane, ns, "v", "plain")
    running = wait_status(plane, ns, "mv", "v", "running", lambda s: bool(s.get("jobName")))
    assert running["parity"] == "NotChecked"


def test_a_builtin_clone_takes_its_parameters_from_production(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    production_db: PgDatabase,
    player_workdir: Path,
) -> None:
    """Before its servers exist, a Job reads production's effective values; the clone's
    postgresql.conf has them, overridden by spec.postgres.parameters. (Builtin clones' pods do
    not run in this tier: the node tier runs them.)"""
    plane, ns = kube_plane, kube_namespace
    production_db.execute(f"ALTER DATABASE {production_db.name} SET work_mem = '48MB'")
    production_db.execute(f"ALTER DATABASE {production_db.name} SET lock_timeout = '7s'")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "production"},
        "stringData": {"dsn": production_db.dsn},
    }
    clone = {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "StagingClone",
        "metadata": {"name": "derived"},
        "spec": {
            "postgres": {"parameters": {"lock_timeout": "5s"}},
            "source": {"archive": {"url": "file:///archives/shop", "claimName": "archives"}},
            "parity": {"productionSecretRef": {"name": "production"}},
        },
    }
    plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(secret))
    plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(clone))
    deriving = wait_status(
        plane,
        ns,
        "stc",
        "derived",
        "deriving",
        condition("Provisioned", "reason", "DerivingParameters"),
    )
    assert deriving["phase"] == "Provisioning"
    assert get(plane, ns, "statefulset", "derived-primary") is None  # not before its settings
    job = wait_for(
        "the derivation Job",
        lambda: next(iter(listed(plane, ns, "job", "app.kubernetes.io/component=parity")), None),
    )
    env = [e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "PGPARITY_STAGING_DSN" not in env  # production only: there is no clone yet
    player = JobPlayer(plane, ns, job, player_workdir)
    result = player.run()
    assert result.returncode == 0, result.stderr
    player.finish(True)
    config = wait_for(
        "the clone's configuration", lambda: get(plane, ns, "configmap", "derived-config")
    )
    conf = config["data"]["postgresql.conf"]
    assert "work_mem = '48MB'" in conf
    assert "lock_timeout = '5s'" in conf  # the spec's own value wins
    status = wait_status(
        plane,
        ns,
        "stc",
        "derived",
        "derived parameters",
        lambda s: bool(s.get("derivedParameters")),
    )
    assert status["derivedParameters"]["work_mem"] == "48MB"
    assert status["derivedParameters"]["lock_timeout"] == "7s"
    assert status["parameters"]["lock_timeout"] == "5s"
    assert get(plane, ns, "statefulset", "derived-primary") is not None


def test_spec_parity_added_to_a_running_builtin_clone_does_not_reconfigure_it(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    production_db: PgDatabase,
) -> None:
    """Parameters are derived only before the servers exist: added later, spec.parity checks
    the clone and leaves its configuration (and its Provisioned condition) alone."""
    plane, ns = kube_plane, kube_namespace
    clone = {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "StagingClone",
        "metadata": {"name": "running"},
        "spec": {
            "postgres": {"parameters": {"work_mem": "16MB"}},
            "source": {"archive": {"url": "file:///archives/shop", "claimName": "archives"}},
        },
    }
    plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(clone))
    wait_status(
        plane,
        ns,
        "stc",
        "running",
        "objects created",
        condition("Provisioned", "reason", "ObjectsCreated"),
    )
    _with_parity(plane, ns, "running", production_db)
    status = wait_status(
        plane,
        ns,
        "stc",
        "running",
        "ParityVerified set",
        condition("ParityVerified", "reason", "CloneNotReady"),  # its pods never run here
    )
    assert {c["type"]: c for c in status["conditions"]}["Provisioned"]["reason"] == (
        "ObjectsCreated"
    )
    assert status.get("derivedParameters") is None
    assert status["parameters"] == {"work_mem": "16MB"}
    assert listed(plane, ns, "job", "app.kubernetes.io/component=parity") == []
