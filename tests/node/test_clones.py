"""Builtin StagingClones on real Pods: seeded live from a production database, and restored
from an anonymized archive on a claim; a primary and a replica streaming through the primary's
Service; garbage collection of everything a deleted clone owned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from fix_kube import wait_for
from fix_node import Clone, Cluster, Production, conditions, ready

pytestmark = pytest.mark.node

CHECKSUM = (
    "SELECT count(*) || ':' || md5(string_agg(email || full_name, ',' ORDER BY id)) FROM customers"
)
ARCHIVE = "/archives/shop"


def pods_ready(cluster: Cluster, clone: Clone) -> None:
    for role in ("primary", "replica"):
        pod = cluster.get(clone.namespace, "pod", clone.pod(role))
        assert pod is not None, role
        assert pod["status"]["phase"] == "Running", role
        assert all(s["ready"] for s in pod["status"]["containerStatuses"]), role


def assert_streams_through_the_service(cluster: Cluster, clone: Clone) -> None:
    """The replica is in recovery, receiving WAL from the primary's Service (not a pod IP)."""
    primary, replica = clone.pod("primary"), clone.pod("replica")
    receiver = cluster.psql(
        clone.namespace,
        replica,
        "SELECT pg_is_in_recovery(), status, conninfo FROM pg_stat_wal_receiver",
    )
    in_recovery, state, conninfo = receiver.split("|")
    assert (in_recovery, state) == ("t", "streaming")
    assert f"host={clone.name}-rw " in conninfo
    senders = cluster.psql(clone.namespace, primary, "SELECT state FROM pg_stat_replication")
    assert senders.splitlines() == ["streaming"]


def test_live_seeded_clone_is_ready_streaming_and_masked(
    operator_release: Cluster, live_clone: Clone, production: Production
) -> None:
    cluster = operator_release
    status = cluster.status(live_clone.namespace, "stc", live_clone.name)
    marks = conditions(status)
    assert {
        t: marks[t]["status"] for t in ("Provisioned", "Seeded", "ReplicaStreaming", "Ready")
    } == {
        "Provisioned": "True",
        "Seeded": "True",
        "ReplicaStreaming": "True",
        "Ready": "True",
    }
    assert status["schemaDigest"].startswith("sha256:")
    assert status["replicasReady"] == 1
    assert status["data"]["tables"] == 2
    pods_ready(cluster, live_clone)
    assert_streams_through_the_service(cluster, live_clone)
    # Every row came over, every email and name masked inside production.
    source = cluster.psql(production.namespace, production.pod, CHECKSUM, "shop", "app")
    primary = cluster.psql(live_clone.namespace, live_clone.pod("primary"), CHECKSUM)
    assert primary.split(":")[0] == source.split(":")[0] == "5000"
    assert primary != source
    assert (
        cluster.psql(
            live_clone.namespace,
            live_clone.pod("primary"),
            "SELECT count(*) FROM customers WHERE email LIKE 'customer%@example.com'",
        )
        == "0"
    )

    # The replica has what the primary has.
    def replica_checksum() -> str | None:
        found = cluster.psql(live_clone.namespace, live_clone.pod("replica"), CHECKSUM)
        return found if found == primary else None

    replica = wait_for("the replica caught up", replica_checksum)
    assert replica == primary
    # The seeding Job waited for the primary and succeeded at its first attempt.
    seed = cluster.get(live_clone.namespace, "job", f"{live_clone.name}-seed")
    assert seed is not None
    assert seed["status"].get("succeeded") == 1
    assert not seed["status"].get("failed")


def snapshot_job(image: str, clone: Clone) -> dict[str, Any]:
    """``pgparity snapshot`` of ``clone`` onto the claim ``archives`` (the DSN from the clone's
    Secret, in the environment: never in argv)."""
    container = {
        "name": "snapshot",
        "image": image,
        "command": ["sh", "-c", f'exec pgparity snapshot --dsn "$CLONE_DSN" --output {ARCHIVE}'],
        "env": [
            {
                "name": "CLONE_DSN",
                "valueFrom": {"secretKeyRef": {"name": f"{clone.name}-credentials", "key": "dsn"}},
            }
        ],
        "volumeMounts": [{"name": "archives", "mountPath": "/archives"}],
    }
    pod = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
        "containers": [container],
        "volumes": [{"name": "archives", "persistentVolumeClaim": {"claimName": "archives"}}],
    }
    # The clone's label: its NetworkPolicy admits the pod (where policies are enforced).
    template = {"metadata": {"labels": {"pgparity.io/clone": clone.name}}, "spec": pod}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "snapshot"},
        "spec": {"backoffLimit": 0, "template": template},
    }


@pytest.fixture(scope="module")
def archive_clone(operator_release: Cluster, live_clone: Clone) -> Iterator[Clone]:
    """A snapshot of the live clone on a claim, and a clone restored from it."""
    cluster, namespace = operator_release, live_clone.namespace
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "archives"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    cluster.apply(namespace, claim, snapshot_job(cluster.image, live_clone))
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", "job/snapshot", "--timeout=300s"
    )
    clone = Clone(namespace, "shop-archive")
    spec = {
        "replicas": 1,
        "postgres": {"version": 15, "storage": {"size": "1Gi"}},
        "source": {"archive": {"url": f"file://{ARCHIVE}", "claimName": "archives"}},
    }
    kind = {"apiVersion": "pgparity.io/v1alpha1", "kind": "StagingClone"}
    cluster.apply(namespace, {**kind, "metadata": {"name": clone.name}, "spec": spec})
    ready(cluster, clone)
    yield clone
    cluster.kubectl("delete", "-n", namespace, "stc", clone.name, "--wait=false", check=False)


def test_archive_restored_clone_matches_the_clone_it_was_taken_from(
    operator_release: Cluster, live_clone: Clone, archive_clone: Clone
) -> None:
    cluster = operator_release
    status = cluster.status(archive_clone.namespace, "stc", archive_clone.name)
    assert conditions(status)["Ready"]["status"] == "True"
    assert conditions(status)["Seeded"]["reason"] == "SeedJobComplete"
    live = cluster.status(live_clone.namespace, "stc", live_clone.name)
    assert status["schemaDigest"] == live["schemaDigest"]
    pods_ready(cluster, archive_clone)
    assert_streams_through_the_service(cluster, archive_clone)
    assert cluster.psql(archive_clone.namespace, archive_clone.pod("primary"), CHECKSUM) == (
        cluster.psql(live_clone.namespace, live_clone.pod("primary"), CHECKSUM)
    )


def test_deleting_a_clone_removes_its_pods_and_claims(
    operator_release: Cluster, archive_clone: Clone
) -> None:
    cluster = operator_release
    namespace, selector = archive_clone.namespace, f"pgparity.io/clone={archive_clone.name}"
    claims = [f"data-{archive_clone.pod(role)}" for role in ("primary", "replica")]
    for claim in claims:
        assert cluster.get(namespace, "pvc", claim) is not None
    cluster.kubectl("delete", "-n", namespace, "stc", archive_clone.name, "--timeout=120s")
    for kind in ("statefulset", "pod", "job", "service", "secret", "configmap", "networkpolicy"):
        wait_for(
            f"the clone's {kind}s collected",
            lambda k=kind: not cluster.listed(namespace, k, selector),  # type: ignore[misc]
            timeout=180,
        )
    # The StatefulSets owned their claims: the volumes went with them.
    for claim in claims:
        wait_for(
            f"claim {claim} deleted",
            lambda c=claim: cluster.get(namespace, "pvc", c) is None,  # type: ignore[misc]
            timeout=180,
        )
    assert cluster.get(namespace, "pvc", "archives") is not None  # not the clone's


def test_parity_is_checked_by_a_job_pod(
    operator_release: Cluster, live_clone: Clone, production: Production
) -> None:
    """spec.parity on the live clone: a real Pod runs ``pgparity parity --floor-only`` against
    production and the clone, writes the floor into its ConfigMap with its own token, and the
    operator turns it into ParityVerified. The clone runs with PARAMETERS (lock_timeout,
    statement_timeout, work_mem) that production does not set: the floor names configuration."""
    cluster, namespace = operator_release, live_clone.namespace

    def set_parity(parity: dict[str, Any] | None) -> None:
        patch = json.dumps({"spec": {"parity": parity}})  # null removes it
        cluster.kubectl(
            "patch", "stc", live_clone.name, "-n", namespace, "--type=merge", "-p", patch
        )

    def checked() -> dict[str, Any] | None:
        status = cluster.status(namespace, "stc", live_clone.name)
        verified = conditions(status).get("ParityVerified", {})
        return status if verified.get("status") in ("True", "False") else None

    def unchecked() -> bool:
        status = cluster.status(namespace, "stc", live_clone.name)
        return "ParityVerified" not in conditions(status)

    set_parity({"productionSecretRef": {"name": "production-readonly"}})
    try:
        status = wait_for("ParityVerified from the parity Job's Pod", checked, timeout=240)
    finally:
        # A broken floor holds validations back: the clone is shared with test_validations.
        set_parity(None)
        wait_for("ParityVerified gone with spec.parity", unchecked, timeout=120)
    verified = conditions(status)["ParityVerified"]
    assert verified["status"] == "False"
    assert verified["reason"].endswith("Broken")
    assert status["parity"]["dimensions"]["configuration"] is False
    assert status["parity"]["dimensions"]["topology"] is True  # a replica streams
    assert status["phase"] == "Ready"
    job = cluster.get(namespace, "job", status["parity"]["jobName"])
    assert job is not None
    assert job["status"].get("succeeded") == 1
    assert production.dsn not in json.dumps(job)  # the DSN by reference only
