"""Archives in object storage on real Pods, both examples as a user applies them:

1. ``examples/archive-nightly.yaml`` — its CronJob, run once (``kubectl create job --from``):
   production seeded into a scratch database in a Pod of the pgparity image, and snapshotted
   into an S3-compatible store;
2. ``examples/stagingclone-builtin.yaml`` — a builtin clone restoring
   ``s3://acme-pgparity/orders/latest.pgparity`` from that store in its seeding Job (sized down
   for the test node: 1Gi of storage, no resource requests).

The store is versitygw (``fix_s3``), run by this test process on ``PGPARITY_E2E_S3_ADDRESS``:
an address of the network namespace the tests run in that Pods can reach (``make test-node``
sets the node's IP). Without it (``make e2e-kind``) these tests are skipped. Credentials reach
both Jobs only through the Secret ``pgparity-archive-credentials``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from fix_node import (
    POLICY,
    Clone,
    Cluster,
    Production,
    conditions,
    delete_namespace,
    fresh_namespace,
    ready,
)
from fix_s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server, running_s3_server

pytestmark = pytest.mark.node

ROOT = Path(__file__).resolve().parents[2]
NIGHTLY = ROOT / "examples" / "archive-nightly.yaml"
BUILTIN = ROOT / "examples" / "stagingclone-builtin.yaml"
BUCKET = "acme-pgparity"  # the examples' bucket
SCRATCH = "scratch"  # the nightly seed's target: another database of production's server
CHECKSUM = (
    "SELECT count(*) || ':' || md5(string_agg(email || full_name, ',' ORDER BY id)) FROM customers"
)


@pytest.fixture(scope="module")
def pod_store() -> Iterator[S3Server]:
    address = os.environ.get("PGPARITY_E2E_S3_ADDRESS")
    if not address:
        pytest.skip("no PGPARITY_E2E_S3_ADDRESS: an address Pods reach this process on")
    with running_s3_server(address) as server:
        server.bucket(BUCKET)
        yield server


@dataclass(frozen=True)
class Nightly:
    namespace: str
    job: str
    logs: str


def nightly_secrets(production: Production, store: S3Server) -> list[dict[str, Any]]:
    """The Secrets and the policy ConfigMap the nightly example names."""

    def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "stringData": data}  # fmt: skip

    credentials = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": store.endpoint,
    }
    scratch = production.dsn.replace("dbname=shop", f"dbname={SCRATCH}")
    return [
        secret("orders-production-readonly", {"dsn": production.dsn}),
        secret("orders-nightly-scratch", {"dsn": scratch}),
        secret("pgparity-masking-key", {"key": uuid.uuid4().hex + uuid.uuid4().hex}),
        secret("pgparity-archive-credentials", credentials),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "orders-anonymization"},
            "data": {"policy.yaml": yaml.safe_dump(POLICY)},
        },
    ]


def nightly_cronjob(image: str) -> dict[str, Any]:
    """The example as written, but for its image (this build's) and suspended: the test starts
    its Job by hand rather than waiting for 03:00."""
    cronjob: dict[str, Any] = yaml.safe_load(NIGHTLY.read_text())
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    container["image"] = image
    cronjob["spec"]["suspend"] = True
    return cronjob


def job_done(cluster: Cluster, namespace: str, job: str) -> str:
    """Wait for the Job to complete; its logs (the reason, if it failed)."""
    waited = cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Complete", f"job/{job}", "--timeout=420s",
        check=False, timeout=450,
    )  # fmt: skip
    logs = cluster.kubectl("logs", "-n", namespace, f"job/{job}", check=False).stdout
    if waited.returncode != 0:
        pytest.fail(f"job {job} did not complete: {waited.stderr.strip()}\n{logs[-3000:]}")
    return logs


@pytest.fixture(scope="module")
def nightly(
    operator_release: Cluster, production: Production, pod_store: S3Server
) -> Iterator[Nightly]:
    cluster = operator_release
    namespace = fresh_namespace(cluster, "archives")
    cluster.psql(production.namespace, production.pod, f"CREATE DATABASE {SCRATCH}", "shop", "app")
    try:
        cluster.apply(namespace, *nightly_secrets(production, pod_store))
        cluster.apply(namespace, nightly_cronjob(cluster.image))
        cluster.kubectl(
            "create", "job", "-n", namespace, "nightly-1", "--from=cronjob/orders-nightly-archive"
        )
        yield Nightly(namespace, "nightly-1", job_done(cluster, namespace, "nightly-1"))
    finally:
        delete_namespace(cluster, namespace)
        cluster.psql(
            production.namespace, production.pod, f"DROP DATABASE IF EXISTS {SCRATCH}", "shop",
            "app",
        )  # fmt: skip


def builtin_clone() -> dict[str, Any]:
    """The builtin example, sized for the test node."""
    example: dict[str, Any] = yaml.safe_load(BUILTIN.read_text())
    postgres = example["spec"]["postgres"]
    postgres["storage"]["size"] = "1Gi"
    postgres.pop("resources")
    return example


@pytest.fixture(scope="module")
def restored(operator_release: Cluster, nightly: Nightly) -> Clone:
    cluster = operator_release
    clone = Clone(nightly.namespace, "orders-staging")
    cluster.apply(nightly.namespace, builtin_clone())
    ready(cluster, clone)
    return clone


def test_the_nightly_job_writes_a_complete_archive(
    pod_store: S3Server, nightly: Nightly, production: Production
) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pgparity", "archives", "list", f"s3://{BUCKET}/orders/",
         "--format", "json"],
        capture_output=True, text=True, env=pod_store.environment(), timeout=120, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    [archive] = json.loads(listed.stdout)
    assert archive["status"] == "complete"
    assert archive["rows"] == 5000 + 20000  # customers and orders
    assert archive["policy_sha256"]
    assert archive["name"] in nightly.logs
    assert SECRET_KEY not in nightly.logs
    assert production.dsn.split("password=")[1] not in nightly.logs


def test_the_builtin_example_restores_from_s3(
    operator_release: Cluster, production: Production, restored: Clone
) -> None:
    cluster = operator_release
    status = cluster.status(restored.namespace, "stc", restored.name)
    assert conditions(status)["Seeded"]["reason"] == "SeedJobComplete"
    assert status["schemaDigest"].startswith("sha256:")
    # What the nightly seed wrote (masked), row for row; not production's own rows.
    scratch = cluster.psql(production.namespace, production.pod, CHECKSUM, SCRATCH, "app")
    source = cluster.psql(production.namespace, production.pod, CHECKSUM, "shop", "app")
    assert scratch.split(":")[0] == "5000"
    assert scratch != source
    assert cluster.psql(restored.namespace, restored.pod("primary"), CHECKSUM) == scratch
    # The seeding Job read the store's credentials from the Secret, never from its spec.
    job = cluster.get(restored.namespace, "job", f"{restored.name}-seed")
    assert job is not None
    assert job["status"].get("succeeded") == 1
    spec = json.dumps(job["spec"])
    assert SECRET_KEY not in spec
    assert ACCESS_KEY not in spec
    assert "s3://acme-pgparity/orders/latest.pgparity" in spec
