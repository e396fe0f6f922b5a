"""The operator end to end: a real API server and controller-manager, real PostgreSQL.

What a real cluster does and these tests play instead (nothing else is simulated): the kubelet
— mounting the validation Job's ConfigMap, injecting its Secret and field references and its
ServiceAccount token, running its command, and reporting the pod's phase (``JobPlayer``).
Pods of builtin clones never run here (no kubelet, no storage provisioner).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fix_kube import wait_for
from fix_operator import (
    JobPlayer,
    Operator,
    condition,
    conditions,
    external_clone,
    get,
    listed,
    ready_clone,
    status_of,
    wait_status,
)
from fix_pg import PgDatabase, _create_database, _drop_database
from kubeplane import ControlPlane
from pgparity.pg.localcluster import LocalCluster

pytestmark = pytest.mark.kube

TABLE = """
CREATE TABLE accounts (id bigint PRIMARY KEY, balance int NOT NULL, note text);
INSERT INTO accounts SELECT g, g % 1000, 'note ' || g FROM generate_series(1, 300000) g;
ANALYZE accounts;
"""


def validation(
    plane: ControlPlane, namespace: str, name: str, clone: str, sql_text: str, **spec: Any
) -> None:
    body = {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "MigrationValidation",
        "metadata": {"name": name},
        "spec": {"cloneRef": {"name": clone}, "migration": {"sql": sql_text}, **spec},
    }
    plane.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def job_of(plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    return wait_for(
        f"the Job of {name}",
        lambda: next(iter(listed(plane, namespace, "job", f"pgparity.io/validation={name}")), None),
    )


def play(
    plane: ControlPlane,
    namespace: str,
    job: dict[str, Any],
    workdir: Path,
    succeeded: bool | None = None,
) -> Any:
    player = JobPlayer(plane, namespace, job, workdir)
    result = player.run()
    player.finish(result.returncode == 0 if succeeded is None else succeeded)
    return result


@pytest.fixture
def clone_db(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    db = _create_database(pg_cluster, clone=True)
    db.execute(TABLE)
    pg_cluster.wait_replay()
    yield db
    _drop_database(pg_cluster, db.name)


def test_builtin_clone_objects_are_owned_and_collected(
    kube_plane: ControlPlane, kube_namespace: str, running_operator: Operator
) -> None:
    clone = {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": "StagingClone",
        "metadata": {"name": "shop"},
        "spec": {
            "replicas": 2,
            "postgres": {
                "version": 15,
                "storage": {"size": "5Gi"},
                "parameters": {"lock_timeout": "5s", "work_mem": "16MB"},
            },
            "source": {"archive": {"url": "file:///archives/shop", "claimName": "archives"}},
        },
    }
    kube_plane.kubectl("apply", "-n", kube_namespace, "-f", "-", input=json.dumps(clone))
    owner = get(kube_plane, kube_namespace, "stc", "shop")
    assert owner is not None
    uid = owner["metadata"]["uid"]
    children = [
        ("secret", "shop-credentials"),
        ("configmap", "shop-config"),
        ("service", "shop-hl"),
        ("service", "shop-rw"),
        ("service", "shop-ro"),
        ("statefulset", "shop-primary"),
        ("statefulset", "shop-replica"),
        ("networkpolicy", "shop-network"),
        ("job", "shop-seed"),
    ]
    for kind, name in children:
        found = wait_for(
            f"{kind} {name}",
            lambda k=kind, n=name: get(  # type: ignore[misc]
                kube_plane, kube_namespace, k, n
            ),
        )
        refs = found["metadata"]["ownerReferences"]
        assert [(r["kind"], r["uid"], r["controller"]) for r in refs] == [
            ("StagingClone", uid, True)
        ], (kind, name)
    replica = get(kube_plane, kube_namespace, "statefulset", "shop-replica")
    assert replica is not None
    assert replica["spec"]["replicas"] == 2
    init = replica["spec"]["template"]["spec"]["initContainers"][0]["command"][-1]
    assert "pg_basebackup -h shop-rw" in init
    assert " -R " in init
    assert replica["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "5Gi"
    }
    config = get(kube_plane, kube_namespace, "configmap", "shop-config")
    assert config is not None
    assert "lock_timeout = '5s'" in config["data"]["postgresql.conf"]
    assert "wal_level = replica" in config["data"]["postgresql.conf"]
    seed = get(kube_plane, kube_namespace, "job", "shop-seed")
    assert seed is not None
    assert seed["spec"]["template"]["spec"]["containers"][0]["command"][:3] == [
        "pgparity",
        "restore",
        "--archive",
    ]
    policy = get(kube_plane, kube_namespace, "networkpolicy", "shop-network")
    assert policy is not None
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    status = wait_status(
        kube_plane,
        kube_namespace,
        "stc",
        "shop",
        "clone status",
        condition("Provisioned", "status", "True"),
    )
    assert status["phase"] == "Seeding"
    assert conditions(status)["ReplicaStreaming"]["reason"] == "PrimaryNotReady"
    assert conditions(status)["Ready"]["status"] == "False"
    kube_plane.kubectl("delete", "-n", kube_namespace, "stc", "shop", "--wait=false")
    wait_for(
        "the clone gone",
        lambda: get(kube_plane, kube_namespace, "stc", "shop") is None,
        timeout=120,
    )
    for kind, name in children:
        wait_for(
            f"{kind} {name} collected",
            lambda k=kind, n=name: (
                get(  # type: ignore[misc]
                    kube_plane, kube_namespace, k, n
                )
                is None
            ),
            timeout=180,
        )


def test_external_clone_ready_only_with_a_streaming_replica(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    clone_db: PgDatabase,
    pg_plain_db: PgDatabase,
) -> None:
    external_clone(kube_plane, kube_namespace, "staging", clone_db)
    status = ready_clone(kube_plane, kube_namespace, "staging")
    marks = conditions(status)
    assert marks["ReplicaStreaming"]["status"] == "True"
    assert marks["Ready"]["reason"] == "Ready"
    assert status["schemaDigest"].startswith("sha256:")
    assert status["replicasReady"] >= 1
    assert status["data"]["tables"] == 1
    row = kube_plane.kubectl("get", "stc", "staging", "-n", kube_namespace).stdout
    assert "Ready" in row
    assert status["schemaDigestShort"] in row
    # The replica of the same server is named as primary: refused with a reason.
    with LocalCluster(durable=False, replicas=0) as lonely:
        with psycopg.connect(lonely.primary_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE postgres SET pgparity.clone = 'lonely'"))
        alone = PgDatabase("postgres", lonely.primary_dsn, "", lonely)
        external_clone(kube_plane, kube_namespace, "alone", alone, replica=False)
        blocked = wait_status(
            kube_plane,
            kube_namespace,
            "stc",
            "alone",
            "alone not ready",
            condition("ReplicaStreaming", "status", "False"),
        )
        assert conditions(blocked)["ReplicaStreaming"]["reason"] == "NoStreamingReplica"
        assert blocked["phase"] != "Ready"
    external_clone(kube_plane, kube_namespace, "prod", pg_plain_db)
    refused = wait_status(
        kube_plane,
        kube_namespace,
        "stc",
        "prod",
        "prod refused",
        condition("Provisioned", "reason", "NotAClone"),
    )
    assert conditions(refused)["Ready"]["status"] == "False"
    events = kube_plane.kubectl("get", "events", "-n", kube_namespace, "-o", "json").stdout
    assert "NotAClone" in events


def test_validation_job_and_verdicts(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    clone_db: PgDatabase,
    player_workdir: Path,
) -> None:
    external_clone(
        kube_plane,
        kube_namespace,
        "staging",
        clone_db,
        parameters={"lock_timeout": "2s", "statement_timeout": "150ms"},
    )
    clone_status = ready_clone(kube_plane, kube_namespace, "staging")
    validation(
        kube_plane,
        kube_namespace,
        "safe",
        "staging",
        "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS flag boolean;",
        budgets={"maxBlockedSessions": 5},
        deadlineSeconds=600,
    )
    job = job_of(kube_plane, kube_namespace, "safe")
    spec = job["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 600
    assert container["image"] == "pgparity:test"
    assert container["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    command = container["command"]
    assert command[:4] == ["pgparity", "validate", "--migration", "/pgparity/inputs/migration.sql"]
    assert command[command.index("--statement-timeout") + 1] == "150ms"
    assert command[command.index("--lock-timeout") + 1] == "2s"
    assert command[command.index("--max-blocked-sessions") + 1] == "5"
    env = {e["name"]: e.get("valueFrom", {}) for e in container["env"]}
    assert env["PGPARITY_DSN"] == {"secretKeyRef": {"name": "staging-conn", "key": "dsn"}}
    assert all(clone_db.dsn not in arg for arg in command)  # credentials never in argv
    running = status_of(kube_plane, kube_namespace, "mv", "safe")
    assert running["phase"] == "Running"
    assert conditions(running)["Validated"]["status"] == "Unknown"

    result = play(kube_plane, kube_namespace, job, player_workdir)
    assert result.returncode == 0, result.stderr
    done = wait_status(
        kube_plane, kube_namespace, "mv", "safe", "safe validated", lambda s: bool(s.get("verdict"))
    )
    assert done["verdict"] == "VALIDATED"
    assert done["phase"] == "Completed"
    marks = conditions(done)
    assert {t: marks[t]["status"] for t in marks} == {
        "DriftChecked": "True",
        "DryRunSucceeded": "True",
        "LocksWithinBudget": "True",
        "ReplicationLagWithinBudget": "True",
        "PlansAsExpected": "True",
        "WithinHeadroom": "True",
        "Validated": "True",
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert done["statements"][0]["locks"][0]["mode"] == "AccessExclusiveLock"
    assert done["cloneDigest"] == clone_status["schemaDigest"]
    assert done["migrationChecksum"].startswith("sha256:")
    assert done["reportRef"]["configMapName"] == "safe-report"
    assert done["observedGeneration"] == 1
    kube_plane.kubectl(
        "wait", "--for=condition=Validated", "mv/safe", "-n", kube_namespace, "--timeout=10s"
    )

    validation(
        kube_plane,
        kube_namespace,
        "rewrite",
        "staging",
        # Each row's conversion waits 1 ms, so the rewrite outlasts the 150 ms statement_timeout
        # however fast the machine (a plain rewrite of 300k rows can finish inside it).
        "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint "
        "USING balance + length(pg_sleep(0.001)::text);",
    )
    rejected_job = job_of(kube_plane, kube_namespace, "rewrite")
    play(kube_plane, kube_namespace, rejected_job, player_workdir)
    rejected = wait_status(
        kube_plane,
        kube_namespace,
        "mv",
        "rewrite",
        "rewrite judged",
        lambda s: bool(s.get("verdict")),
    )
    assert rejected["verdict"] == "REJECTED"
    assert conditions(rejected)["DryRunSucceeded"]["reason"] == "StatementTimeout"
    assert conditions(rejected)["Validated"]["reason"] == "Rejected"
    # The static finding the trace confirmed (the rewrite ran past statement_timeout) first.
    first, *rest = rejected["findings"]
    assert first["rule"] == "column-type-change"
    assert "confirmed by the trace: the statement ran past statement_timeout" in first["message"]
    assert rest[0]["rule"] == "statement-timeout"
    assert "lint: 1 confirmed" in rejected["message"]
    assert "57014" in rejected["statements"][0]["error"]
    row = kube_plane.kubectl("get", "mv", "-n", kube_namespace).stdout
    assert "VALIDATED" in row
    assert "REJECTED" in row
    events = kube_plane.kubectl("get", "events", "-n", kube_namespace, "-o", "json").stdout
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert {"JobCreated", "Validated", "Rejected"} <= reasons

    # Unchanged: no second run. Changed: a new Job, a fresh status.
    kube_plane.kubectl("label", "mv", "safe", "-n", kube_namespace, "team=payments")
    time.sleep(2.5)
    assert len(listed(kube_plane, kube_namespace, "job", "pgparity.io/validation=safe")) == 1
    validation(
        kube_plane,
        kube_namespace,
        "safe",
        "staging",
        "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS other int;",
    )
    jobs = wait_for(
        "a second Job",
        lambda: (
            j
            if len(j := listed(kube_plane, kube_namespace, "job", "pgparity.io/validation=safe"))
            == 2
            else None
        ),
    )
    assert len({j["metadata"]["name"] for j in jobs}) == 2
    rerun = wait_status(
        kube_plane,
        kube_namespace,
        "mv",
        "safe",
        "re-validation running",
        lambda s: s.get("phase") == "Running",
    )
    assert "verdict" not in rerun
    assert rerun["observedGeneration"] == 2


def test_failed_job_and_busy_clone(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    clone_db: PgDatabase,
    player_workdir: Path,
) -> None:
    external_clone(kube_plane, kube_namespace, "staging", clone_db)
    ready_clone(kube_plane, kube_namespace, "staging")
    validation(kube_plane, kube_namespace, "first", "staging", "SELECT 1;")
    first = job_of(kube_plane, kube_namespace, "first")
    validation(kube_plane, kube_namespace, "second", "staging", "SELECT 2;")
    waiting = wait_status(
        kube_plane,
        kube_namespace,
        "mv",
        "second",
        "second waits",
        condition("Validated", "reason", "CloneBusy"),
    )
    assert waiting["phase"] == "WaitingForClone"
    assert listed(kube_plane, kube_namespace, "job", "pgparity.io/validation=second") == []
    JobPlayer(kube_plane, kube_namespace, first, player_workdir).finish(succeeded=False)
    failed = wait_status(
        kube_plane,
        kube_namespace,
        "mv",
        "first",
        "first failed",
        lambda s: s.get("phase") == "Failed",
    )
    assert "verdict" not in failed
    assert conditions(failed)["Validated"]["reason"] == "JobBackoffLimitExceeded"
    assert "no verdict" in conditions(failed)["Validated"]["message"]
    job_of(kube_plane, kube_namespace, "second")  # the clone is free: the second one starts


def test_operator_restart_mid_validation(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    clone_db: PgDatabase,
    player_workdir: Path,
) -> None:
    external_clone(kube_plane, kube_namespace, "staging", clone_db)
    ready_clone(kube_plane, kube_namespace, "staging")
    validation(
        kube_plane,
        kube_namespace,
        "restart",
        "staging",
        "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS later text;",
    )
    job = job_of(kube_plane, kube_namespace, "restart")
    running_operator.stop()  # the operator goes away while the Job runs
    result = play(kube_plane, kube_namespace, job, player_workdir)
    assert result.returncode == 0, result.stderr
    running_operator.start()
    done = wait_status(
        kube_plane,
        kube_namespace,
        "mv",
        "restart",
        "converged",
        lambda s: bool(s.get("verdict")),
    )
    assert done["verdict"] == "VALIDATED"
    assert len(listed(kube_plane, kube_namespace, "job", "pgparity.io/validation=restart")) == 1


def _metrics(port: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
    return text


def test_metrics(
    kube_plane: ControlPlane,
    kube_namespace: str,
    running_operator: Operator,
    operator_plane: dict[str, str],
    clone_db: PgDatabase,
    player_workdir: Path,
) -> None:
    port = operator_plane["PGPARITY_METRICS_PORT"]
    external_clone(kube_plane, kube_namespace, "metered", clone_db)
    ready_clone(kube_plane, kube_namespace, "metered")
    label = f'name="metered",namespace="{kube_namespace}"'
    wait_for("clone_ready", lambda: f"pgparity_clone_ready{{{label}}} 1.0" in _metrics(port))
    holder = clone_db.connect()
    waiter = clone_db.connect()
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        waiter.execute("SET statement_timeout = '20s'")
        waiter.pgconn.send_query(b"SELECT count(*) FROM accounts")  # waits for the lock
        text = wait_for(
            "lock gauges",
            lambda: (
                t
                if f"pgparity_lock_waiting_sessions{{{label}}} 1.0" in (t := _metrics(port))
                else None
            ),
        )
        assert f"pgparity_lock_wait_seconds_max{{{label}}}" in text
        assert f"pgparity_replication_lag_bytes{{{label}}}" in text
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        waiter.close()
    validation(kube_plane, kube_namespace, "counted", "metered", "SELECT 1;")
    play(kube_plane, kube_namespace, job_of(kube_plane, kube_namespace, "counted"), player_workdir)
    text = wait_for(
        "validation counted",
        lambda: (
            t
            if 'pgparity_validations_total{verdict="VALIDATED"}' in (t := _metrics(port))
            else None
        ),
    )
    assert "pgparity_validation_duration_seconds_count" in text
    kube_plane.kubectl("delete", "stc", "metered", "-n", kube_namespace, "--timeout=60s")
    wait_for("series removed", lambda: f"pgparity_clone_ready{{{label}}}" not in _metrics(port))


def test_job_rbac_is_narrow(
    kube_plane: ControlPlane, kube_namespace: str, running_operator: Operator, clone_db: PgDatabase
) -> None:
    external_clone(kube_plane, kube_namespace, "staging", clone_db)
    ready_clone(kube_plane, kube_namespace, "staging")
    validation(kube_plane, kube_namespace, "narrow", "staging", "SELECT 1;")
    job = job_of(kube_plane, kube_namespace, "narrow")
    account = job["spec"]["template"]["spec"]["serviceAccountName"]
    who = f"system:serviceaccount:{kube_namespace}:{account}"

    def can(*args: str) -> bool:
        result = kube_plane.kubectl(
            "auth", "can-i", *args, "-n", kube_namespace, "--as", who, check=False
        )
        return result.stdout.strip() == "yes"

    assert can("patch", "configmap/narrow-report")
    assert not can("patch", "configmap/narrow-inputs")
    assert not can("get", "secrets")
    assert not can("create", "configmaps")
    assert not can("list", "pods")
    operator = "system:serviceaccount:pgparity-system:pgparity-operator"
    assert (
        kube_plane.kubectl(
            "auth",
            "can-i",
            "delete",
            "secrets",
            "-n",
            kube_namespace,
            "--as",
            operator,
            check=False,
        ).stdout.strip()
        == "no"
    )
    secret = get(kube_plane, kube_namespace, "secret", "staging-conn")
    assert secret is not None
    assert base64.b64decode(secret["data"]["dsn"]).decode() == clone_db.dsn
