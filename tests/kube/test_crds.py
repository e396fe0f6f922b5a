"""The CRDs against a real kube-apiserver: admission, OpenAPI validation, CEL, status, printing."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from fix_kube import wait_established
from kubeplane import ControlPlane
from pgparity.models.common import Condition, ConditionStatus
from pgparity.models.migration_validation import (
    FindingSummary,
    LockSummary,
    Maxima,
    MigrationValidationSpec,
    MigrationValidationStatus,
    ReportRef,
    StatementSummary,
    ValidationPhase,
)
from pgparity.models.report import Verdict
from pgparity.models.staging_clone import (
    ClonePhase,
    DataSummary,
    Endpoints,
    StagingCloneSpec,
    StagingCloneStatus,
)

ROOT = Path(__file__).resolve().parents[2]
CRD_NAMES = ("stagingclones.pgparity.io", "migrationvalidations.pgparity.io")

CLONE: dict[str, Any] = {
    "apiVersion": "pgparity.io/v1alpha1",
    "kind": "StagingClone",
    "metadata": {"name": "clone"},
    "spec": {"source": {"archive": {"url": "s3://bucket/archive"}}},
}
VALIDATION: dict[str, Any] = {
    "apiVersion": "pgparity.io/v1alpha1",
    "kind": "MigrationValidation",
    "metadata": {"name": "validation"},
    "spec": {"cloneRef": {"name": "clone"}, "migration": {"sql": "SELECT 1"}},
}


@pytest.fixture(scope="module")
def crds(kube_plane: ControlPlane) -> ControlPlane:
    kube_plane.kubectl("apply", "-f", str(ROOT / "crds"))
    wait_established(kube_plane, *CRD_NAMES)
    return kube_plane


def _apply(plane: ControlPlane, namespace: str, doc: dict[str, Any], verb: str = "create") -> Any:
    return plane.kubectl(verb, "-n", namespace, "-f", "-", input=json.dumps(doc), check=False)


def _get(plane: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = plane.kubectl("get", "-n", namespace, kind, name, "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with ``spec.a.b`` set to ``value`` (or removed for ...)."""
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return doc


def test_crds_are_established(crds: ControlPlane) -> None:
    for name in CRD_NAMES:
        crd = json.loads(crds.kubectl("get", "crd", name, "-o", "json").stdout)
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions["Established"] == "True"
        assert conditions["NamesAccepted"] == "True"


def test_examples_apply_cleanly_and_read_back_as_the_models(
    crds: ControlPlane, kube_namespace: str
) -> None:
    parsers = {
        "StagingClone": StagingCloneSpec.parse,
        "MigrationValidation": MigrationValidationSpec.parse,
    }
    checked = 0
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        crds.kubectl("apply", "-n", kube_namespace, "-f", str(path))
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] not in parsers:
                continue
            stored = _get(crds, kube_namespace, doc["kind"], doc["metadata"]["name"])
            parse = parsers[doc["kind"]]
            # The API server applied the CRD's defaults; the models apply the same ones.
            assert parse(stored["spec"]) == parse(doc["spec"]), path.name
            checked += 1
    assert checked >= 5


INVALID: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    (
        "replicas of the wrong type",
        _with(CLONE, "spec.replicas", "two"),
        ("spec.replicas", "integer"),
    ),
    (
        "no replica",
        _with(CLONE, "spec.replicas", 0),
        ("spec.replicas", "greater than or equal to 1"),
    ),
    (
        "unknown provider",
        _with(CLONE, "spec.provider", "cnpg"),
        ("spec.provider", "Unsupported value"),
    ),
    (
        "builtin clone without a source",
        _with(CLONE, "spec.source", ...),
        ("spec.source", "source is required when provider is builtin"),
    ),
    (
        "external clone without its Secret",
        _with(_with(CLONE, "spec.provider", "external"), "spec.source", ...),
        ("spec.external", "external is required when provider is external"),
    ),
    (
        "two clone sources",
        _with(
            CLONE,
            "spec.source.live",
            {
                "secretRef": {"name": "s"},
                "policy": {"name": "p", "key": "k"},
                "maskingKeyRef": {"name": "m", "key": "k"},
            },
        ),
        ("spec.source", "exactly one of archive or live"),
    ),
    (
        "no clone source",
        _with(CLONE, "spec.source", {}),
        ("spec.source", "exactly one of archive or live"),
    ),
    (
        "archive without a URL",
        _with(CLONE, "spec.source.archive", {}),
        ("spec.source.archive.url", "Required value"),
    ),
    (
        "bad parity timeout",
        _with(CLONE, "spec.postgres", {"parameters": {"lock_timeout": "5 parsecs"}}),
        ("spec.postgres.parameters", "PostgreSQL durations"),
    ),
    (
        "bad storage size",
        _with(CLONE, "spec.postgres", {"storage": {"size": "lots"}}),
        ("spec.postgres.storage.size", "should match"),
    ),
    (
        "unsupported major version",
        _with(CLONE, "spec.postgres", {"version": 9}),
        ("spec.postgres.version", "greater than or equal to 13"),
    ),
    (
        "validation without a clone",
        _with(VALIDATION, "spec.cloneRef", ...),
        ("spec.cloneRef", "Required value"),
    ),
    (
        "two migration sources",
        _with(VALIDATION, "spec.migration.configMapRef", {"name": "cm", "key": "m.sql"}),
        ("spec.migration", "exactly one of sql or configMapRef"),
    ),
    (
        "no migration source",
        _with(VALIDATION, "spec.migration", {}),
        ("spec.migration", "exactly one of sql or configMapRef"),
    ),
    (
        "bad lock timeout",
        _with(VALIDATION, "spec.timeouts", {"lockTimeout": "soon"}),
        ("spec.timeouts.lockTimeout", "PostgreSQL duration"),
    ),
    (
        "bad statement timeout",
        _with(VALIDATION, "spec.timeouts", {"statementTimeout": "5 sec"}),
        ("spec.timeouts.statementTimeout", "PostgreSQL duration"),
    ),
    (
        "negative blocked-sessions budget",
        _with(VALIDATION, "spec.budgets", {"maxBlockedSessions": -1}),
        ("spec.budgets.maxBlockedSessions", "greater than or equal to 0"),
    ),
    (
        "zero lock-wait budget",
        _with(VALIDATION, "spec.budgets", {"maxLockWait": "0s"}),
        ("spec.budgets.maxLockWait", "positive PostgreSQL duration"),
    ),
    (
        "bad lag budget",
        _with(VALIDATION, "spec.budgets", {"maxReplicationLag": "-64MB"}),
        ("spec.budgets.maxReplicationLag", "positive size"),
    ),
    (
        "unknown traffic mode",
        _with(VALIDATION, "spec.traffic", {"mode": "chaos"}),
        ("spec.traffic.mode", "Unsupported value"),
    ),
    (
        "workload traffic without a workload",
        _with(VALIDATION, "spec.traffic", {"mode": "workload"}),
        ("spec.traffic.workloadRef", "workloadRef is required"),
    ),
    (
        "malformed digest",
        _with(VALIDATION, "spec.expectDigest", "md5:abc"),
        ("spec.expectDigest", "should match"),
    ),
    (
        "explain query without SQL",
        _with(VALIDATION, "spec.explain", {"queries": [{"name": "q"}]}),
        ("spec.explain.queries[0].sql", "Required value"),
    ),
    (
        "deadline too short",
        _with(VALIDATION, "spec.deadlineSeconds", 5),
        ("spec.deadlineSeconds", "greater than or equal to 60"),
    ),
    (
        "strict of the wrong type",
        _with(VALIDATION, "spec.strict", "yes"),
        ("spec.strict", "boolean"),
    ),
    (
        "headroom below 1",
        _with(VALIDATION, "spec.headroom", {"factor": 0.5}),
        ("spec.headroom.factor", "greater than or equal to 1"),
    ),
    (
        "unknown headroom severity",
        _with(VALIDATION, "spec.headroom", {"severity": "fatal"}),
        ("spec.headroom.severity", "Unsupported value"),
    ),
    (
        "too many repeats",
        _with(VALIDATION, "spec.repeat", 50),
        ("spec.repeat", "less than or equal to 20"),
    ),
    (
        "production with neither secret nor tables",
        _with(VALIDATION, "spec.production", {}),
        ("spec.production", "exactly one of secretRef or tables"),
    ),
    (
        "production with both secret and tables",
        _with(
            VALIDATION,
            "spec.production",
            {"secretRef": {"name": "p", "key": "dsn"}, "tables": [{"name": "t", "size": "1GB"}]},
        ),
        ("spec.production", "exactly one of secretRef or tables"),
    ),
    (
        "production table with a bad size",
        _with(VALIDATION, "spec.production", {"tables": [{"name": "t", "size": "huge"}]}),
        ("spec.production.tables[0].size", "size such as 120GB"),
    ),
]


@pytest.mark.parametrize(("case", "doc", "needles"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_manifests_are_rejected_naming_the_field(
    crds: ControlPlane,
    kube_namespace: str,
    case: str,
    doc: dict[str, Any],
    needles: tuple[str, ...],
) -> None:
    result = _apply(crds, kube_namespace, doc)
    assert result.returncode != 0, f"{case}: accepted"
    for needle in needles:
        assert needle in result.stderr, f"{case}: {needle!r} not in {result.stderr}"


@pytest.mark.parametrize(
    ("kind_doc", "path", "value", "needle"),
    [
        (CLONE, "spec.provider", "external", "provider is immutable"),
        (CLONE, "spec.postgres", {"version": 16}, "postgres.version is immutable"),
        (VALIDATION, "spec.cloneRef", {"name": "another"}, "cloneRef is immutable"),
    ],
)
def test_immutable_fields_cannot_change(
    crds: ControlPlane,
    kube_namespace: str,
    kind_doc: dict[str, Any],
    path: str,
    value: Any,
    needle: str,
) -> None:
    original = kind_doc
    if path == "spec.provider":  # a valid external clone, so only immutability can fail
        original = _with(kind_doc, "spec.external", {"secretRef": {"name": "s"}})
    assert _apply(crds, kube_namespace, original).returncode == 0
    changed = _with(original, path, value)
    result = _apply(crds, kube_namespace, changed, verb="apply")
    assert result.returncode != 0
    assert needle in result.stderr, result.stderr


def _wait_explain(plane: ControlPlane, resource: str) -> str:
    # The aggregated OpenAPI of a new CRD is published a moment after it is Established.
    deadline = time.monotonic() + 60
    while True:
        result = plane.kubectl("explain", resource, check=False)
        if result.returncode == 0:
            return result.stdout
        if time.monotonic() > deadline:
            raise AssertionError(result.stderr)
        time.sleep(0.5)


def test_kubectl_explain_shows_the_descriptions(crds: ControlPlane) -> None:
    spec = _wait_explain(crds, "migrationvalidation.spec")
    assert "The migration to validate and the limits it must meet." in spec
    for field in (
        "cloneRef",
        "migration",
        "timeouts",
        "expectDigest",
        "traffic",
        "explain",
        "budgets",
    ):
        assert field in spec
    budgets = _wait_explain(crds, "mv.spec.budgets.maxLockWait")
    assert "Longest any session may wait for a lock" in budgets
    clone = _wait_explain(crds, "stagingclone.spec.provider")
    assert "Immutable" in clone


def test_printer_columns_and_category(crds: ControlPlane, kube_namespace: str) -> None:
    assert _apply(crds, kube_namespace, CLONE).returncode == 0
    assert _apply(crds, kube_namespace, VALIDATION).returncode == 0
    mv = crds.kubectl("get", "mv", "-n", kube_namespace).stdout.splitlines()
    assert mv[0].split() == [
        "NAME",
        "VERDICT",
        "PHASE",
        "CLONE",
        "MAX",
        "LOCK",
        "WAIT",
        "MAX",
        "LAG",
        "DURATION",
        "AGE",
    ]
    assert mv[1].split()[:2] == ["validation", "clone"]  # no verdict or phase yet
    clones = crds.kubectl("get", "stc", "-n", kube_namespace).stdout.splitlines()
    assert clones[0].split() == ["NAME", "PHASE", "PROVIDER", "REPLICAS", "READY", "DIGEST", "AGE"]
    everything = crds.kubectl("get", "pgparity", "-n", kube_namespace).stdout
    assert "stagingclone.pgparity.io/clone" in everything
    assert "migrationvalidation.pgparity.io/validation" in everything


def _full_validation_status() -> MigrationValidationStatus:
    condition = Condition(
        type="Validated",
        status=ConditionStatus.FALSE,
        reason="StatementTimeout",
        message="statement 2 ran past 30s",
        last_transition_time="2026-11-25T10:00:00Z",
        observed_generation=1,
    )
    return MigrationValidationStatus(
        phase=ValidationPhase.COMPLETED,
        verdict=Verdict.REJECTED,
        conditions=(condition,),
        statements=(
            StatementSummary(
                index=1,
                line=2,
                sql="ALTER TABLE users ALTER COLUMN id TYPE bigint",
                transactional=True,
                executed=True,
                duration_ms=30000.5,
                wal_bytes=123456789,
                locks=(
                    LockSummary(
                        relation="public.users", mode="AccessExclusiveLock", held_ms=30000.5
                    ),
                ),
                rewrites=("public.users",),
                error="57014 canceling statement",
                max_blocked_sessions=7,
                max_replication_lag_bytes=99999,
            ),
        ),
        findings=(
            FindingSummary(
                rule="statement-timeout",
                severity="error",
                statement=1,
                message="statement 1 (line 2) ran past statement_timeout",
            ),
        ),
        errors=1,
        warnings=0,
        maxima=Maxima(
            lock_wait_seconds=12.5,
            lock_hold_seconds=30.0,
            blocked_sessions=7,
            replication_lag_bytes=99999,
            replication_lag_seconds=1.25,
        ),
        report_ref=ReportRef(config_map_name="validation-report", key="report.json"),
        migration_checksum="sha256:" + "a" * 64,
        clone_digest="sha256:" + "b" * 64,
        job_name="validation-1",
        started_at="2026-11-25T10:00:00Z",
        completed_at="2026-11-25T10:00:31Z",
        duration_seconds=31.0,
        message="rejected",
        observed_generation=1,
    )


def test_status_round_trips_through_the_status_subresource(
    crds: ControlPlane, kube_namespace: str
) -> None:
    assert _apply(crds, kube_namespace, VALIDATION).returncode == 0
    status = _full_validation_status()
    crds.kubectl(
        "patch",
        "-n",
        kube_namespace,
        "mv",
        "validation",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status.to_dict()}),
    )
    stored = _get(crds, kube_namespace, "mv", "validation")
    # Nothing pruned: every field the operator writes is declared in the schema.
    assert stored["status"] == status.to_dict()
    assert MigrationValidationStatus.parse(stored["status"]) == status
    row = crds.kubectl("get", "mv", "validation", "-n", kube_namespace).stdout.splitlines()[1]
    assert row.split()[:6] == ["validation", "REJECTED", "Completed", "clone", "12.5", "99999"]
    # The main resource ignores status: only the subresource writes it.
    overwrite = _with(stored, "status.verdict", "VALIDATED")
    crds.kubectl("replace", "-n", kube_namespace, "-f", "-", input=json.dumps(overwrite))
    assert _get(crds, kube_namespace, "mv", "validation")["status"]["verdict"] == "REJECTED"


def test_clone_status_round_trips(crds: ControlPlane, kube_namespace: str) -> None:
    assert _apply(crds, kube_namespace, CLONE).returncode == 0
    status = StagingCloneStatus(
        phase=ClonePhase.READY,
        conditions=(
            Condition(
                type="Ready",
                status=ConditionStatus.TRUE,
                reason="Streaming",
                message="1/1 replicas streaming",
                last_transition_time="2026-11-25T10:00:00Z",
                observed_generation=1,
            ),
        ),
        endpoints=Endpoints(
            primary="clone-rw.ns.svc:5432", replica="clone-ro.ns.svc:5432", secret_name="clone-app"
        ),
        schema_digest="sha256:" + "c" * 64,
        schema_digest_short="c" * 12,
        data=DataSummary(
            tables=12,
            rows=8_000_000,
            bytes=3_000_000_000,
            seeded_at="2026-11-25T09:00:00Z",
            source="s3://bucket/archive",
        ),
        replicas_ready=1,
        parameters={"lock_timeout": "5s"},
        message="ready",
        observed_generation=1,
    )
    crds.kubectl(
        "patch",
        "-n",
        kube_namespace,
        "stc",
        "clone",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status.to_dict()}),
    )
    stored = _get(crds, kube_namespace, "stc", "clone")
    assert stored["status"] == status.to_dict()
    assert StagingCloneStatus.parse(stored["status"]) == status
    row = crds.kubectl("get", "stc", "clone", "-n", kube_namespace).stdout.splitlines()[1]
    assert row.split()[:6] == ["clone", "Ready", "builtin", "1", "1", "c" * 12]


def test_undeclared_status_fields_are_refused_not_silently_kept(
    crds: ControlPlane, kube_namespace: str
) -> None:
    """A field the schema does not declare is pruned; the tests above show none is needed."""
    assert _apply(crds, kube_namespace, VALIDATION).returncode == 0
    crds.kubectl(
        "patch",
        "-n",
        kube_namespace,
        "mv",
        "validation",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Running", "undeclared": "x"}}),
    )
    stored = _get(crds, kube_namespace, "mv", "validation")["status"]
    # observedGeneration 0 is the CRD's default status, which the patch was merged into.
    assert stored == {"phase": "Running", "observedGeneration": 0}
