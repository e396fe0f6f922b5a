"""The operator's side of the parity floor, pure: the parity Job, the result it delivers, and
the gate a validation passes."""

from __future__ import annotations

import json

import pytest

from pgparity.errors import SpecError
from pgparity.handlers.migration_validation import clone_parity
from pgparity.manifests.clone import CloneRef
from pgparity.manifests.parity import build_parity_objects, check_round, parity_names
from pgparity.models.common import LocalObjectRef
from pgparity.models.migration_validation import CloneParity
from pgparity.models.parity_report import parse_floor, parse_parameters
from pgparity.models.staging_clone import ParitySpec

CLONE = CloneRef("shop", "team", "uid-1")
PARITY = ParitySpec(LocalObjectRef("prod-conn"), role="app", interval_minutes=10)


def _objects() -> dict[str, dict[str, object]]:
    built = build_parity_objects(CLONE, PARITY, "shop-conn", 7, image="pgparity:1")
    return {str(o["kind"]): o for o in built}


def test_the_job_runs_the_floor_with_dsns_from_secrets() -> None:
    job = _objects()["Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["command"] == [
        "pgparity",
        "parity",
        "--floor-only",
        "--format",
        "json",
        "--report-configmap",
        "shop-parity",
        "--role",
        "app",
    ]
    refs = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in container["env"]}
    assert refs["PGPARITY_PRODUCTION_DSN"] == {"name": "prod-conn", "key": "dsn"}
    assert refs["PGPARITY_STAGING_DSN"] == {"name": "shop-conn", "key": "dsn"}
    assert job["spec"]["backoffLimit"] == 0  # type: ignore[index]
    owner = job["metadata"]["ownerReferences"][0]  # type: ignore[index]
    assert (owner["kind"], owner["uid"]) == ("StagingClone", "uid-1")


def test_the_job_may_write_only_its_report() -> None:
    rules = _objects()["Role"]["rules"]
    assert rules == [
        {
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": ["shop-parity"],
            "verbs": ["get", "patch", "update"],
        }
    ]


def test_a_new_job_each_round_and_each_spec() -> None:
    first = parity_names("shop", PARITY, 7)["job"]
    assert parity_names("shop", PARITY, 8)["job"] != first
    other = ParitySpec(LocalObjectRef("prod-conn"), role="other")
    assert parity_names("shop", other, 7)["job"] != first
    assert parity_names("x" * 63, PARITY, 10**9)["job"].__len__() <= 63
    assert check_round(599.0, PARITY) == 0
    assert check_round(600.0, PARITY) == 1


def _floor(**floor: object) -> str:
    return json.dumps({"ok": False, "floor": floor})


def test_the_result_names_the_first_broken_dimension() -> None:
    summary = parse_floor(
        _floor(
            ok=False,
            first_broken="topology",
            broken=1,
            dimensions={"topology": False},
            checks=[
                {
                    "dimension": "topology",
                    "name": "streaming replicas",
                    "status": "fail",
                    "production": "1",
                    "staging": "0",
                    "note": "…",
                },
                {"dimension": "server", "name": "encoding", "status": "pass"},
            ],
        )
    )
    assert summary.reason == "TopologyBroken"
    assert summary.describe() == ("1 of 2 checks fail: streaming replicas: production 1, clone 0")
    assert parse_floor(_floor(ok=True)).reason == "ParityHolds"


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"floor": 1}', '{"floor": {"ok": "x"}}'])
def test_an_unreadable_result_is_an_error(text: str) -> None:
    with pytest.raises(SpecError):
        parse_floor(text)


@pytest.mark.parametrize(
    ("condition", "state"),
    [
        (None, CloneParity.NOT_CHECKED),
        (("True", "ParityHolds", ""), CloneParity.VERIFIED),
        (("False", "ServerBroken", ""), CloneParity.BROKEN),
        (("Unknown", "Checking", ""), CloneParity.UNKNOWN),
    ],
)
def test_a_validation_sees_the_clones_parity(
    condition: tuple[str, str, str] | None, state: CloneParity
) -> None:
    assert clone_parity(condition) is state


@pytest.mark.parametrize(
    "parameters",
    [
        {"search_path": "a\nshared_preload_libraries = 'evil'"},
        {"work_mem": "4MB\r"},
        {"work_mem = 1\nfsync": "off"},
        {"": "x"},
    ],
)
def test_derived_parameters_never_become_extra_configuration_lines(
    parameters: dict[str, str],
) -> None:
    with pytest.raises(SpecError):
        parse_parameters(json.dumps({"parameters": parameters}))


def test_derived_parameters() -> None:
    derived = parse_parameters(json.dumps({"parameters": {"work_mem": "48MB", "app.x": "y"}}))
    assert derived.parameters == {"work_mem": "48MB", "app.x": "y"}


def test_the_validation_job_records_the_clones_parity_state() -> None:
    from pgparity.manifests.validation import ValidationInputs, validate_command
    from pgparity.models.migration_validation import MigrationValidationSpec

    spec = MigrationValidationSpec.parse(
        {"cloneRef": {"name": "shop"}, "migration": {"sql": "SELECT 1;"}}
    )
    inputs = ValidationInputs("SELECT 1;", "shop", "shop-conn", None, None)
    command = validate_command(spec, inputs, "r", CloneParity.BROKEN.value)
    assert command[command.index("--parity-state") + 1] == "Broken"
    assert "--parity-state" not in validate_command(spec, inputs, "r")
