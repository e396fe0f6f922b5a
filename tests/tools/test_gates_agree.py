"""Argo CD and Flux gate alike: for every status the operator's builders make — each phase and
reason of a validation, each way a clone can be observed — Argo CD's health check (in its Lua
interpreter) and kstatus (cli-utils, as Flux uses it) give the same answer:

    Healthy      <->  Current   (and Ready True)
    Degraded     <->  Failed    (Stalled True)
    Progressing  <->  InProgress (Reconciling True, or an older generation)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fix_tools import json_tool
from pgparity.clonecheck import CloneHealth
from pgparity.manifests.clone_status import CloneObservation, ConditionState, clone_status
from pgparity.manifests.status import completed_status, progress_status
from pgparity.models.common import ConditionStatus
from pgparity.models.migration_validation import (
    MigrationValidationStatus,
    ReportRef,
    ValidationPhase,
)
from pgparity.models.report import (
    Finding,
    MigrationInfo,
    Severity,
    TargetInfo,
    ValidationReport,
    Verdict,
)
from pgparity.models.staging_clone import StagingCloneSpec, StagingCloneStatus

ROOT = Path(__file__).resolve().parents[2]
HEALTH = ROOT / "deploy" / "argocd" / "resource_customizations" / "pgparity.io"
AGREE = {"Healthy": "Current", "Degraded": "Failed", "Progressing": "InProgress"}
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN
Phase = ValidationPhase


def obj(kind: str, status: dict[str, Any], generation: int = 2) -> dict[str, Any]:
    return {
        "apiVersion": "pgparity.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "spec": {},
        "status": status,
    }


def report(verdict: Verdict, *findings: Finding) -> ValidationReport:
    return ValidationReport(
        verdict=verdict,
        migration=MigrationInfo("m.sql", "f" * 64),
        target=TargetInfo(digest_before="sha256:" + "1" * 64),
        settings={},
        statements=(),
        findings=findings,
    )


def validation_statuses() -> dict[str, MigrationValidationStatus]:
    start = MigrationValidationStatus()
    made: dict[str, MigrationValidationStatus] = {}
    for phase, reason in (
        (Phase.PENDING, "Queued"),
        (Phase.PENDING, "MigrationNotFound"),
        (Phase.WAITING_FOR_CLONE, "CloneNotFound"),
        (Phase.WAITING_FOR_CLONE, "CloneNotReady"),
        (Phase.WAITING_FOR_CLONE, "CloneBusy"),
        (Phase.RUNNING, "JobCreated"),
        (Phase.RUNNING, "JobRunning"),
        (Phase.FAILED, "InvalidSpec"),
        (Phase.FAILED, "InvalidMigration"),
        (Phase.FAILED, "JobBackoffLimitExceeded"),
        (Phase.FAILED, "JobDeadlineExceeded"),
        (Phase.FAILED, "ReportUnreadable"),
    ):
        made[f"{phase.value}/{reason}"] = progress_status(
            start,
            phase,
            reason,
            f"{reason} happened",
            now="t",
            generation=2,
            failed=phase is Phase.FAILED,
        )
    for verdict, findings in (
        (Verdict.VALIDATED, (Finding("table-rewrite", Severity.WARNING, "rewrote t", 1),)),
        (Verdict.REJECTED, (Finding("lock-timeout", Severity.ERROR, "waited 2 s", 1),)),
        (Verdict.REJECTED, (Finding("schema-drift", Severity.ERROR, "not the schema", None),)),
    ):
        made[f"Completed/{verdict.value}/{findings[0].rule}"] = completed_status(
            start,
            report(verdict, *findings),
            now="t",
            generation=2,
            key="k",
            report_ref=ReportRef("r", "report.json"),
            job_name="j",
            started_at="t0",
            duration_seconds=3.0,
        )
    return made


Part = tuple[ConditionStatus, str, str]


def Observed(
    provisioned: Part,
    seeded: Part,
    streaming: Part,
    secret: str | None = None,
    health: CloneHealth | None = None,
) -> CloneObservation:
    parts = (ConditionState(*provisioned), ConditionState(*seeded), ConditionState(*streaming))
    return CloneObservation(*parts, secret, health)


def _status(
    previous: StagingCloneStatus, observed: CloneObservation, spec: StagingCloneSpec, gen: int
) -> StagingCloneStatus:
    parameters = spec.postgres.parameters
    return clone_status(previous, observed, parameters, now="2026-01-01T00:00:00Z", generation=gen)


def clone_statuses() -> dict[str, StagingCloneStatus]:
    spec = StagingCloneSpec.parse(
        {"provider": "external", "external": {"secretRef": {"name": "s"}}}
    )
    ok = (TRUE, "External", "fine")
    streaming = (TRUE, "Streaming", "1 replica(s) streaming")
    made = {
        "ready": Observed(ok, ok, streaming, "s", CloneHealth(True, True, 1, True, "", "")),
        "invalid spec": Observed(
            (FALSE, "InvalidSpec", "bad"),
            (UNKNOWN, "InvalidSpec", ""),
            (UNKNOWN, "InvalidSpec", ""),
        ),
        "seed job failed": Observed(
            (TRUE, "ObjectsCreated", "ok"), (FALSE, "SeedJobFailed", "backoff"), streaming, "s"
        ),
        "seeding": Observed(
            (TRUE, "ObjectsCreated", "ok"),
            (UNKNOWN, "Seeding", "running"),
            (UNKNOWN, "PrimaryNotReady", "not ready"),
            "s",
        ),
        "replicas not ready": Observed(
            (TRUE, "ObjectsCreated", "ok"), ok, (FALSE, "ReplicasNotReady", "0/1"), "s"
        ),
    }
    for reason in ("Unreachable", "CheckTimedOut", "NotAClone", "NotAPrimary", "SecretNotFound"):
        made[reason] = Observed((FALSE, reason, "m"), ok, (UNKNOWN, reason, "m"), "s")
    for reason in ("NoReplicaDsn", "NoStreamingReplica", "ReplicaNotStreaming"):
        made[reason] = Observed(ok, ok, (FALSE, reason, "m"), "s")
    made["seed incomplete"] = Observed(ok, (FALSE, "SeedIncomplete", "m"), streaming, "s")
    return {
        name: _status(StagingCloneStatus(), observed, spec, 2) for name, observed in made.items()
    }


@pytest.mark.parametrize("kind", ["MigrationValidation", "StagingClone"])
def test_argocd_and_kstatus_agree_on_every_built_status(
    argocd_health: Path, kstatus: Path, kind: str
) -> None:
    built: dict[str, Any] = (
        validation_statuses() if kind == "MigrationValidation" else clone_statuses()
    )
    objects = [obj(kind, status.to_dict()) for status in built.values()]
    health = json_tool(argocd_health, objects, "eval", str(HEALTH / kind / "health.lua"))
    judged = json_tool(kstatus, objects)
    seen = set()
    for name, argo, flux, status in zip(built, health, judged, built.values(), strict=True):
        assert "error" not in argo, (name, argo)
        assert AGREE[argo["status"]] == flux["status"], (name, argo, flux)
        ready = next(c for c in status.conditions if c.type == "Ready")
        assert (argo["status"] == "Healthy") == (ready.status is TRUE), name
        seen.add(argo["status"])
    assert seen == {"Healthy", "Degraded", "Progressing"}
    # A status for the generation before: both wait.
    older = [obj(kind, status.to_dict(), generation=3) for status in built.values()]
    script = str(HEALTH / kind / "health.lua")
    assert {r["status"] for r in json_tool(argocd_health, older, "eval", script)} == {"Progressing"}
    assert {r["status"] for r in json_tool(kstatus, older)} == {"InProgress"}


def test_the_verdicts_map_as_the_readme_says(argocd_health: Path) -> None:
    built = validation_statuses()
    objects = [obj("MigrationValidation", s.to_dict()) for s in built.values()]
    script = str(HEALTH / "MigrationValidation" / "health.lua")
    judged = json_tool(argocd_health, objects, "eval", script)
    health = {name: result["status"] for name, result in zip(built, judged, strict=True)}
    assert health["Completed/VALIDATED/table-rewrite"] == "Healthy"
    assert health["Completed/REJECTED/lock-timeout"] == "Degraded"
    assert health["Completed/REJECTED/schema-drift"] == "Degraded"
    assert {health[k] for k in built if k.startswith("Failed/")} == {"Degraded"}
    assert {
        health[k] for k in built if k.split("/")[0] in ("Pending", "WaitingForClone", "Running")
    } == {"Progressing"}
