"""A builtin StagingClone restored from an archive in an S3-compatible store, as
``examples/stagingclone-builtin.yaml`` declares it — applied as written.

Real: the API server and controller-manager, the operator (kopf, in this process), PostgreSQL,
the S3-compatible server (versitygw on loopback, ``fix_s3``), ``pgparity snapshot`` and the
seeding Job's ``pgparity restore``. Played: the kubelet (``JobPlayer`` injects the Job's Secret
references and runs its command here) and the clone's primary Pod — builtin clones' Pods never
run in this tier, so the clone's credentials Secret is pointed at a local database before the
Job is played. The node tier runs the same example on real Pods (``tests/node/
test_archive_store.py``).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fix_kube import wait_for
from fix_operator import JobPlayer, Operator, condition, get, wait_status
from fix_pg import PgDatabase, _drop_database, completed_seed
from fix_s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from kubeplane import ControlPlane
from pgparity.pg.clone import database_settings
from pgparity.pg.localcluster import LocalCluster

pytestmark = pytest.mark.kube

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "stagingclone-builtin.yaml"
BUCKET = "acme-pgparity"  # the example's bucket
CLONE = """
CREATE TABLE orders (id bigint PRIMARY KEY, amount numeric(12, 2) NOT NULL, note text);
INSERT INTO orders SELECT g, g % 997, 'order ' || g FROM generate_series(1, 30000) g;
CREATE INDEX orders_amount_idx ON orders (amount);
"""


@pytest.fixture
def archived(pg_cluster: LocalCluster, s3_server: S3Server) -> Iterator[PgDatabase]:
    """A seeded clone, snapshotted the way the nightly Job does into the example's bucket."""
    (s3_server.root / BUCKET).mkdir(exist_ok=True)
    db = completed_seed(pg_cluster, CLONE, "orders-nightly", policy_sha256="f" * 64)
    made = subprocess.run(
        [sys.executable, "-m", "pgparity", "snapshot", "--dsn", db.dsn,
         "--output", f"s3://{BUCKET}/orders/", "--keep", "3"],
        capture_output=True, text=True, env=s3_server.environment(), timeout=300, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    yield db
    _drop_database(pg_cluster, db.name)


def store_secret(server: S3Server) -> dict[str, object]:
    data = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": server.endpoint,
        "UNRELATED_KEY": "must-not-reach-the-job",
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "pgparity-archive-credentials"},
        "stringData": data,
    }


def test_the_builtin_example_restores_from_s3(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    s3_server: S3Server,
    archived: PgDatabase,
    pg_plain_db: PgDatabase,
    tmp_path: Path,
) -> None:
    ns = kube_namespace
    kube_plane.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(store_secret(s3_server)))
    kube_plane.kubectl("apply", "-n", ns, "-f", str(EXAMPLE))
    job = wait_for("the seeding Job", lambda: get(kube_plane, ns, "job", "orders-staging-seed"))
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "pgparity", "restore", "--archive", "s3://acme-pgparity/orders/latest.pgparity",
        "--replace",
    ]  # fmt: skip
    spec_text = json.dumps(job)
    assert SECRET_KEY not in spec_text
    assert ACCESS_KEY not in spec_text
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    assert refs["AWS_SECRET_ACCESS_KEY"] == {
        "name": "pgparity-archive-credentials", "key": "AWS_SECRET_ACCESS_KEY", "optional": True,
    }  # fmt: skip
    assert "UNRELATED_KEY" not in refs

    # The primary Pod never runs in this tier: its Secret (made by the operator, never
    # rewritten) is pointed at an empty database standing in for it.
    wait_for(
        "the clone's Secret", lambda: get(kube_plane, ns, "secret", "orders-staging-credentials")
    )
    dsn = base64.b64encode(pg_plain_db.dsn.encode()).decode()
    kube_plane.kubectl(
        "patch", "secret", "orders-staging-credentials", "-n", ns, "--type=merge",
        "-p", json.dumps({"data": {"dsn": dsn}}),
    )  # fmt: skip
    player = JobPlayer(kube_plane, ns, job, tmp_path)
    assert "UNRELATED_KEY" not in player.environment()
    result = player.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restored s3://acme-pgparity/orders/" in result.stdout
    assert SECRET_KEY not in result.stdout + result.stderr
    player.finish(succeeded=True)
    status = wait_status(
        kube_plane, ns, "stc", "orders-staging", "Seeded", condition("Seeded", "status", "True")
    )
    seeded = next(c for c in status["conditions"] if c["type"] == "Seeded")
    assert seeded["reason"] == "SeedJobComplete"
    assert pg_plain_db.scalar("SELECT count(*) FROM orders") == 30000
    assert pg_plain_db.scalar("SELECT sum(amount) FROM orders") == archived.scalar(
        "SELECT sum(amount) FROM orders"
    )
    with pg_plain_db.connect() as conn:
        assert database_settings(conn)["seed_state"] == "complete"
