"""MigrationValidations on real Pods: each verdict comes from a validation Job's Pod running
the pgparity image, which writes its report with its own narrow ServiceAccount token; the
verdict is a condition ``kubectl wait`` can wait for; an operator Pod deleted mid-validation is
replaced, and the new one finishes the validation without a second Job."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fix_kube import wait_for
from fix_node import (
    OPERATOR_NAMESPACE,
    Clone,
    Cluster,
    can,
    running_operator_pod,
    wait_status,
)

pytestmark = pytest.mark.node

# A catalog-only column, and an index built CONCURRENTLY: rehearsed on the clone on its own
# (outside a transaction), then dropped again.
SAFE = """\
ALTER TABLE customers ADD COLUMN IF NOT EXISTS nickname text;
CREATE INDEX CONCURRENTLY IF NOT EXISTS customers_created_idx ON customers (created);
"""
# Rewrites orders under ACCESS EXCLUSIVE; --strict makes that an error (REJECTED).
REWRITE = "ALTER TABLE orders ALTER COLUMN amount_cents TYPE bigint;\n"


def validate(cluster: Cluster, clone: Clone, name: str, sql: str, **spec: Any) -> None:
    cluster.apply(
        clone.namespace,
        {
            "apiVersion": "pgparity.io/v1alpha1",
            "kind": "MigrationValidation",
            "metadata": {"name": name},
            "spec": {"cloneRef": {"name": clone.name}, "migration": {"sql": sql}, **spec},
        },
    )


def jobs_of(cluster: Cluster, namespace: str, name: str) -> list[dict[str, Any]]:
    return cluster.listed(namespace, "job", f"pgparity.io/validation={name}")


def job_pod(cluster: Cluster, namespace: str, job: str) -> dict[str, Any]:
    return wait_for(
        f"the Pod of Job {job}",
        lambda: next(iter(cluster.listed(namespace, "pod", f"job-name={job}")), None),
    )


def assert_verdict_from_a_job_pod(
    cluster: Cluster, clone: Clone, name: str, verdict: str
) -> dict[str, Any]:
    """The Job's one Pod ran the pgparity image to completion and wrote the report."""
    [job] = jobs_of(cluster, clone.namespace, name)
    pod = job_pod(cluster, clone.namespace, job["metadata"]["name"])
    assert pod["status"]["phase"] == "Succeeded"  # exit 0: a verdict was delivered
    [container] = pod["status"]["containerStatuses"]
    assert container["state"]["terminated"]["exitCode"] == 0
    assert pod["spec"]["containers"][0]["image"] == cluster.image
    assert pod["spec"]["serviceAccountName"] == f"{name}-validator"
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["spec"]["volumes"])
    configmap = cluster.get(clone.namespace, "configmap", f"{name}-report")
    assert configmap is not None
    report: dict[str, Any] = json.loads(configmap["data"]["report.json"])
    assert report["verdict"] == verdict
    status = cluster.status(clone.namespace, "mv", name)
    assert status["verdict"] == verdict
    assert status["reportRef"]["configMapName"] == f"{name}-report"
    clone_status = cluster.status(clone.namespace, "stc", clone.name)
    assert status["cloneDigest"] == clone_status["schemaDigest"]
    return report


def test_safe_migration_is_validated_by_a_job_pod(
    operator_release: Cluster, live_clone: Clone
) -> None:
    cluster, namespace = operator_release, live_clone.namespace
    validate(cluster, live_clone, "add-nickname", SAFE)
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Validated", "mv/add-nickname", "--timeout=300s"
    )
    report = assert_verdict_from_a_job_pod(cluster, live_clone, "add-nickname", "VALIDATED")
    assert [s["executed"] for s in report["statements"]] == [True, True]
    assert report["settings"]["lock_timeout"] == "2s"  # the clone's parity settings
    # The report was written with the Job's own token: it may touch that ConfigMap, nothing else.
    account = f"system:serviceaccount:{namespace}:add-nickname-validator"
    assert can(cluster, account, "patch", "configmap/add-nickname-report", "-n", namespace)
    assert not can(cluster, account, "patch", "configmap/add-nickname-inputs", "-n", namespace)
    assert not can(cluster, account, "get", "secrets", "-n", namespace)
    # Rolled back and compensated: the clone's schema is what it was.
    assert report["target"]["digest_after"] == report["target"]["digest_before"]
    left = cluster.psql(
        namespace,
        live_clone.pod("primary"),
        "SELECT count(*) FROM information_schema.columns WHERE column_name = 'nickname'"
        " UNION ALL SELECT count(*) FROM pg_indexes WHERE indexname = 'customers_created_idx'",
    )
    assert left.splitlines() == ["0", "0"]


def test_rewriting_migration_is_rejected_by_a_job_pod(
    operator_release: Cluster, live_clone: Clone
) -> None:
    cluster, namespace = operator_release, live_clone.namespace
    validate(cluster, live_clone, "widen-amount", REWRITE, strict=True)
    cluster.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=condition=Validated=False",
        "mv/widen-amount",
        "--timeout=300s",
    )
    report = assert_verdict_from_a_job_pod(cluster, live_clone, "widen-amount", "REJECTED")
    rules = {f["rule"]: f["severity"] for f in report["findings"]}
    assert rules["table-rewrite"] == "error"  # a warning, made an error by strict
    assert rules["blocking-lock"] == "error"  # ACCESS EXCLUSIVE on orders
    assert "public.orders" in report["statements"][0]["rewrites"]  # and its indexes
    status = cluster.status(namespace, "mv", "widen-amount")
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Validated"] == "Rejected"


def test_operator_pod_deleted_mid_validation_finishes_it_without_a_second_job(
    operator_release: Cluster, live_clone: Clone
) -> None:
    cluster, namespace = operator_release, live_clone.namespace
    before = running_operator_pod(cluster)["metadata"]["name"]
    validate(
        cluster, live_clone, "slow", "SELECT pg_sleep(20);\n", timeouts={"statementTimeout": "60s"}
    )
    [job] = wait_for("the Job of slow", lambda: jobs_of(cluster, namespace, "slow") or None)
    wait_for(
        "the validation Pod running",
        lambda: (
            job_pod(cluster, namespace, job["metadata"]["name"])["status"].get("phase") == "Running"
        ),
    )
    cluster.kubectl("delete", "pod", before, "-n", OPERATOR_NAMESPACE, "--wait=false")
    after = running_operator_pod(cluster, other_than=before)["metadata"]["name"]
    assert after != before
    done = wait_status(
        cluster, namespace, "mv", "slow", "the verdict", lambda s: bool(s.get("verdict")), 300
    )
    assert done["verdict"] == "VALIDATED"
    assert len(jobs_of(cluster, namespace, "slow")) == 1
    assert_verdict_from_a_job_pod(cluster, live_clone, "slow", "VALIDATED")
