"""Pure builders: clone objects, validation Jobs, RBAC, status; configuration parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pgparity import config
from pgparity.cli.operating import helm, operator_yaml, rbac_yaml
from pgparity.errors import UsageError
from pgparity.manifests.clone import (
    CloneRef,
    build_clone_objects,
    build_primary,
    build_replica,
    build_seed_job,
    postgresql_conf,
)
from pgparity.manifests.conditions import set_condition
from pgparity.manifests.labels import child_name
from pgparity.manifests.rbac import operator_deployment
from pgparity.manifests.status import completed_status, progress_status
from pgparity.manifests.validation import (
    ValidationInputs,
    ValidationRef,
    build_job,
    build_job_access,
    validate_command,
    validation_key,
)
from pgparity.models.common import ConditionStatus
from pgparity.models.migration_validation import (
    MigrationValidationSpec,
    MigrationValidationStatus,
    ReportRef,
    ValidationPhase,
)
from pgparity.models.report import (
    Finding,
    MigrationInfo,
    Observations,
    Observed,
    Rule,
    Severity,
    TargetInfo,
    ValidationReport,
    Verdict,
)
from pgparity.models.staging_clone import StagingCloneSpec

ROOT = Path(__file__).resolve().parents[2]
CLONE = CloneRef("shop", "team-a", "uid-1")
MV = ValidationRef("add-index", "team-a", "uid-2")
INPUTS = ValidationInputs(
    sql="CREATE INDEX CONCURRENTLY i ON t (a);",
    clone="shop",
    clone_secret="shop-credentials",
    lock_timeout="2s",
    statement_timeout="30s",
)


def _spec(**extra: object) -> MigrationValidationSpec:
    return MigrationValidationSpec.parse(
        {"cloneRef": {"name": "shop"}, "migration": {"sql": INPUTS.sql}, **extra}
    )


def test_builtin_clone_objects_are_deterministic_and_owned() -> None:
    spec = StagingCloneSpec.parse(
        {
            "replicas": 2,
            "source": {"archive": {"url": "file:///a"}},
            "postgres": {"parameters": {"lock_timeout": "5s"}},
        }
    )
    objects = build_clone_objects(
        CLONE,
        spec,
        password="pw",
        postgres_image="postgres",
        pgparity_image="pgparity:1",
        operator_namespace="ops",
    )
    again = build_clone_objects(
        CLONE,
        spec,
        password="pw",
        postgres_image="postgres",
        pgparity_image="pgparity:1",
        operator_namespace="ops",
    )
    assert objects == again
    kinds = [o["kind"] for o in objects]
    assert kinds == [
        "Secret",
        "ConfigMap",
        "Service",
        "Service",
        "Service",
        "StatefulSet",
        "StatefulSet",
        "NetworkPolicy",
        "Job",
    ]
    for obj in objects:
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert obj["metadata"]["namespace"] == "team-a"
    secret = objects[0]["stringData"]
    assert secret["dsn"] == (
        "host=shop-rw.team-a.svc port=5432 dbname=postgres user=pgparity password=pw"
    )
    primary = objects[5]["spec"]["template"]["spec"]["containers"][0]
    assert primary["image"] == "postgres:15"
    assert postgresql_conf({"search_path": "a, 'b'"}).endswith("search_path = 'a, ''b'''\n")


def test_validation_key_changes_with_what_the_verdict_depends_on() -> None:
    base = validation_key(_spec(), INPUTS)
    assert base == validation_key(_spec(), INPUTS)
    assert base != validation_key(_spec(strict=True), INPUTS)
    assert base != validation_key(
        _spec(), ValidationInputs(**{**INPUTS.__dict__, "sql": "SELECT 2;"})
    )
    assert base != validation_key(
        _spec(), ValidationInputs(**{**INPUTS.__dict__, "statement_timeout": "1s"})
    )


def test_validation_job_has_no_retries_a_deadline_and_no_credentials_in_argv() -> None:
    spec = _spec(
        deadlineSeconds=900,
        budgets={"maxLockWait": "2s"},
        traffic={"mode": "auto", "clients": 3, "holdLocks": [{"table": "t", "duration": "5s"}]},
    )
    job = build_job(MV, spec, INPUTS, "ab" * 32, image="img:1", cpu="2", memory="1Gi")
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 900
    assert pod["restartPolicy"] == "Never"
    assert pod["serviceAccountName"] == "add-index-validator"
    command = pod["containers"][0]["command"]
    assert command == validate_command(spec, INPUTS, "add-index-report")
    assert command[command.index("--traffic") : command.index("--traffic") + 4] == [
        "--traffic",
        "auto",
        "--traffic-clients",
        "3",
    ]
    assert "t:5s" in command
    assert "--max-lock-wait" in command
    assert job["metadata"]["name"] == "add-index-" + "ab" * 5  # the key's first 10 digits
    assert job["metadata"]["labels"]["pgparity.io/clone"] == "shop"


def test_job_access_is_one_configmap() -> None:
    account, role, binding = build_job_access(MV, "shop", "k" * 64)
    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["add-index-report"],
            "verbs": ["get", "patch", "update"],
        }
    ]
    assert binding["subjects"][0]["name"] == account["metadata"]["name"]


def test_names_fit_kubernetes_limits() -> None:
    long = "a" * 80
    name = child_name(long, "validator")
    assert len(name) <= 63
    assert name.endswith("-validator")
    assert child_name(long, "validator") == name
    assert child_name("short", "x") == "short-x"


def test_conditions_keep_transition_times_while_status_holds() -> None:
    first = set_condition((), "Validated", ConditionStatus.UNKNOWN, "JobCreated", "m", "t1", 1)
    same = set_condition(first, "Validated", ConditionStatus.UNKNOWN, "JobRunning", "m", "t2", 1)
    flipped = set_condition(same, "Validated", ConditionStatus.TRUE, "Validated", "m", "t3", 1)
    assert same[0].last_transition_time == "t1"
    assert same[0].reason == "JobRunning"
    assert flipped[0].last_transition_time == "t3"


def test_status_from_a_report() -> None:
    report = ValidationReport(
        verdict=Verdict.REJECTED,
        migration=MigrationInfo("m.sql", "f" * 64),
        target=TargetInfo(digest_before="sha256:" + "1" * 64),
        settings={},
        statements=(),
        findings=(
            Finding(Rule.LOCK_WAIT_BUDGET, Severity.ERROR, "waited 3 s", 1),
            Finding(Rule.TABLE_REWRITE, Severity.WARNING, "rewrote t", 1),
        ),
        observations=Observations(
            observed=Observed(max_lock_wait_seconds=3.0, max_blocked_sessions=4)
        ),
    )
    status = completed_status(
        MigrationValidationStatus(),
        report,
        now="t",
        generation=3,
        key="k",
        report_ref=ReportRef("r", "report.json"),
        job_name="j",
        started_at="s",
        duration_seconds=5.0,
    )
    marks = {c.type: c for c in status.conditions}
    assert marks["LocksWithinBudget"].status is ConditionStatus.FALSE
    assert marks["LocksWithinBudget"].reason == "LockWaitBudget"
    assert marks["DryRunSucceeded"].status is ConditionStatus.TRUE
    assert marks["Validated"].reason == "Rejected"
    assert [c.type for c in status.conditions] == [
        "DriftChecked",
        "DryRunSucceeded",
        "LocksWithinBudget",
        "ReplicationLagWithinBudget",
        "PlansAsExpected",
        "WithinHeadroom",
        "Validated",
        "Ready",
        "Reconciling",
        "Stalled",
    ]
    assert status.maxima is not None
    assert status.maxima.blocked_sessions == 4
    assert status.migration_checksum == "sha256:" + "f" * 64
    assert status.findings[0].rule == "lock-wait-budget"
    failed = progress_status(
        status,
        ValidationPhase.FAILED,
        "JobDeadlineExceeded",
        "late",
        now="t2",
        generation=3,
        failed=True,
    )
    assert failed.verdict is None  # never a verdict without evidence


@pytest.mark.parametrize(
    ("rule", "severity", "within", "reason"),
    [
        (Rule.TIMEOUT_HEADROOM, Severity.ERROR, ConditionStatus.FALSE, "TimeoutHeadroom"),
        (Rule.BUDGET_HEADROOM, Severity.ERROR, ConditionStatus.FALSE, "BudgetHeadroom"),
        # --headroom-severity warning: reported, but the margin does not fail the condition
        (Rule.TIMEOUT_HEADROOM, Severity.WARNING, ConditionStatus.TRUE, "WithinHeadroom"),
        # another rule's error is not about headroom
        (Rule.LOCK_WAIT_BUDGET, Severity.ERROR, ConditionStatus.TRUE, "WithinHeadroom"),
    ],
)
def test_within_headroom_is_decided_by_the_headroom_rules(
    rule: Rule, severity: Severity, within: ConditionStatus, reason: str
) -> None:
    report = ValidationReport(
        verdict=Verdict.REJECTED if severity is Severity.ERROR else Verdict.VALIDATED,
        migration=MigrationInfo("m.sql", "f" * 64),
        target=TargetInfo(),
        settings={},
        statements=(),
        findings=(Finding(rule, severity, "used 61 % of statement_timeout", 1),),
    )
    status = completed_status(
        MigrationValidationStatus(),
        report,
        now="t",
        generation=1,
        key="k",
        report_ref=ReportRef("r", "report.json"),
        job_name="j",
        started_at="s",
        duration_seconds=1.0,
    )
    marks = {c.type: c for c in status.conditions}
    assert (marks["WithinHeadroom"].status, marks["WithinHeadroom"].reason) == (within, reason)
    # A thin margin is not a failed dry-run: only WithinHeadroom says so.
    if rule is not Rule.LOCK_WAIT_BUDGET:
        assert marks["DryRunSucceeded"].status is ConditionStatus.TRUE


def test_configuration_from_the_environment() -> None:
    settings = config.load(
        {
            "PGPARITY_RECONCILE_SECONDS": "2.5",
            "PGPARITY_NAMESPACES": "a, b",
            "PGPARITY_JOB_MEMORY": "1Gi",
        }
    )
    assert settings.reconcile_seconds == 2.5
    assert settings.namespaces == ("a", "b")
    for variable, value in (
        ("PGPARITY_METRICS_PORT", "99999"),
        ("PGPARITY_RECONCILE_SECONDS", "-1"),
        ("PGPARITY_JOB_CPU", "lots"),
        ("PGPARITY_IMAGE", " "),
    ):
        with pytest.raises(UsageError, match=variable):
            config.load({variable: value})


def test_deploy_manifests_are_generated_from_the_builders() -> None:
    assert (ROOT / "deploy" / "operator-rbac.yaml").read_text() == rbac_yaml("pgparity-system")
    assert (ROOT / "deploy" / "operator.yaml").read_text() == operator_yaml(
        "pgparity-system", config.Settings().image, config.Settings().postgres_image
    )


def test_helm_chart_is_generated_from_the_same_builders() -> None:
    chart = ROOT / "charts" / "pgparity"
    templates = {
        "rbac.yaml": rbac_yaml("HELM-NAMESPACE"),
        "operator.yaml": operator_yaml("HELM-NAMESPACE", "HELM-IMAGE", "HELM-POSTGRES-IMAGE"),
    }
    for name, generated in templates.items():
        assert (chart / "templates" / name).read_text() == helm(generated)
    # Rendered with a release's values, a template is what deploy/ would hold for them.
    values = yaml.safe_load((chart / "values.yaml").read_text())
    rendered = (
        (chart / "templates" / "operator.yaml")
        .read_text()
        .replace("{{ .Release.Namespace }}", "team-a")
        .replace("{{ .Values.image }}", values["image"])
        .replace("{{ .Values.postgresImage }}", values["postgresImage"])
    )
    assert list(yaml.safe_load_all(rendered)) == list(
        yaml.safe_load_all(operator_yaml("team-a", values["image"], values["postgresImage"]))
    )
    assert values["image"] == config.Settings().image
    assert values["postgresImage"] == config.Settings().postgres_image
    crds = sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert sorted(p.name for p in (chart / "crds").glob("*.yaml")) == crds
    for name in crds:
        assert (chart / "crds" / name).read_text() == (ROOT / "crds" / name).read_text()


def _pods_of_the_pgparity_image() -> list[tuple[str, dict[str, Any]]]:
    archive = StagingCloneSpec.parse(
        {"source": {"archive": {"url": "file:///a", "claimName": "c"}}}
    )
    live = StagingCloneSpec.parse(
        {
            "source": {
                "live": {
                    "secretRef": {"name": "prod"},
                    "policy": {"name": "policy", "key": "policy.yaml"},
                    "maskingKeyRef": {"name": "mask", "key": "key"},
                }
            }
        }
    )
    job = build_job(MV, _spec(), INPUTS, "k" * 64, image="img:1", cpu="1", memory="1Gi")
    deployment = operator_deployment("ops", "img:1", "pg")[0]
    return [
        ("validation Job", job["spec"]["template"]["spec"]),
        ("operator", deployment["spec"]["template"]["spec"]),
        ("archive seed Job", build_seed_job(CLONE, archive, "img:1")["spec"]["template"]["spec"]),
        ("live seed Job", build_seed_job(CLONE, live, "img:1")["spec"]["template"]["spec"]),
    ]


@pytest.mark.parametrize(("what", "pod"), _pods_of_the_pgparity_image())
def test_read_only_containers_get_a_writable_tmp(what: str, pod: dict[str, Any]) -> None:
    # The Kubernetes client's discovery cache needs a temp dir: without one a validation Job
    # computed its verdict and then failed writing the report (found on a real node).
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001}, what
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, what
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}, what
        tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1, (what, container["name"])
        assert "emptyDir" in volumes[tmp[0]["name"]], what


def test_seed_job_waits_for_the_primary_behind_its_service() -> None:
    spec = StagingCloneSpec.parse({"source": {"archive": {"url": "file:///a"}}})
    pod = build_seed_job(CLONE, spec, "img:1")["spec"]["template"]["spec"]
    [wait] = pod["initContainers"]
    assert wait["image"] == "img:1"
    script = wait["command"][-1]
    assert script.startswith("until pg_isready ")
    assert "-h shop-rw.team-a.svc -p 5432" in script  # the Service: only a Ready primary
    assert pod["containers"][0]["command"][:2] == ["pgparity", "restore"]


def test_clone_claims_are_deleted_with_their_statefulsets() -> None:
    spec = StagingCloneSpec.parse({"replicas": 2, "source": {"archive": {"url": "file:///a"}}})
    for statefulset in (build_primary(CLONE, spec, "pg:15"), build_replica(CLONE, spec, "pg:15")):
        assert statefulset["spec"]["persistentVolumeClaimRetentionPolicy"] == {
            "whenDeleted": "Delete",
            "whenScaled": "Retain",
        }
