"""The GitOps examples say what the README says: in Argo CD the migration and its validation are
PreSync hooks (the migration first), re-created at each sync, and the application's migration Job
and Deployment come after them in the Sync phase; in Flux the application depends on the gate.
(The kube tier has the API server accept every manifest; the tools tier runs the health checks.)"""

# mypy: disable-error-code="no-redef, operator"
# (the helper named annotations() shadows the __future__ import for mypy, not for Python)
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "examples" / "argocd"
HOOK = "argocd.argoproj.io/hook"
WAVE = "argocd.argoproj.io/sync-wave"
DELETE = "argocd.argoproj.io/hook-delete-policy"


def objects(directory: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = obj["metadata"].get("annotations", {})
    return found


def order(obj: dict[str, Any]) -> tuple[int, int]:
    """Argo CD's order: phase (PreSync before Sync), then wave."""
    phase = 0 if annotations(obj).get(HOOK) == "PreSync" else 1
    return phase, int(annotations(obj).get(WAVE, "0"))


def test_the_validation_gates_the_migration_job_and_the_deployment() -> None:
    app = objects(ARGOCD / "shop")
    configmap, gate = app["ConfigMap"], app["MigrationValidation"]
    job, deployment = app["Job"], app["Deployment"]
    assert annotations(gate)[HOOK] == "PreSync"
    assert annotations(configmap)[HOOK] == "PreSync"
    for hook in (configmap, gate, job):
        assert annotations(hook)[DELETE] == "BeforeHookCreation"
    assert order(configmap) < order(gate) < order(job) < order(deployment)
    # The gate validates the very text the Job then runs.
    ref = gate["spec"]["migration"]["configMapRef"]
    assert ref["name"] == configmap["metadata"]["name"]
    assert ref["key"] in configmap["data"]
    [volume] = job["spec"]["template"]["spec"]["volumes"]
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert gate["spec"]["expectDigest"].startswith("sha256:")


def test_the_application_syncs_that_directory() -> None:
    application = yaml.safe_load((ARGOCD / "application.yaml").read_text())
    assert application["kind"] == "Application"
    assert application["spec"]["source"]["path"] == "examples/argocd/shop"
    assert application["spec"]["destination"]["namespace"] == "shop"


def test_flux_holds_the_application_back_until_the_gate_is_ready() -> None:
    flux = ROOT / "examples" / "flux"
    gate, app = yaml.safe_load_all((flux / "kustomizations.yaml").read_text())
    assert gate["spec"]["wait"] is True
    assert gate["spec"]["path"] == "./examples/flux/gate"
    assert app["spec"]["dependsOn"] == [{"name": gate["metadata"]["name"]}]
    validation = yaml.safe_load((flux / "gate" / "migrationvalidation.yaml").read_text())
    # Inline: a changed migration is a changed generation, which kstatus waits for.
    assert "sql" in validation["spec"]["migration"]


def test_the_ci_workflow_runs_the_tested_script() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "ci" / "pgparity.yml").read_text())
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    steps = workflow["jobs"]["validate"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert "examples/ci/validate-migrations.sh pgparity-out" in runs
    comment = next(s for s in steps if s.get("uses", "").startswith("actions/github-script"))
    assert "<!-- pgparity-report -->" in comment["with"]["script"]
    assert comment["if"].startswith("always()")
    validate = next(s for s in steps if s.get("name") == "Validate")
    # Secrets reach pgparity through its environment, never a command line.
    assert "secrets." not in validate["run"]
    assert validate["env"]["PGPARITY_DSN"] == "${{ secrets.PGPARITY_STAGING_DSN }}"
