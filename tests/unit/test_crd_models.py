"""The Python models and the CRDs in crds/ describe the same fields, types and defaults."""

from __future__ import annotations

import copy
import dataclasses
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml

from pgparity.errors import SpecError
from pgparity.models.codec import decode, encode, field_types, json_name, optional_inner
from pgparity.models.migration_validation import (
    MigrationValidationSpec,
    MigrationValidationStatus,
)
from pgparity.models.staging_clone import StagingCloneSpec, StagingCloneStatus

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"


def crd_schema(filename: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    (version,) = crd["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def _scalar_type(hint: Any) -> str | None:
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(hint)


def compare(model: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Every difference between a model dataclass and an object schema, as readable lines."""
    problems: list[str] = []
    if schema.get("type") != "object":
        return [f"{path}: schema is {schema.get('type')}, model is an object"]
    fields = {json_name(f): f for f in dataclasses.fields(model)}
    properties = schema.get("properties", {})
    problems += [f"{path}.{n}: in the model, not in the CRD" for n in fields.keys() - properties]
    problems += [f"{path}.{n}: in the CRD, not in the model" for n in properties.keys() - fields]
    required = {
        n
        for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    if required != set(schema.get("required", [])):
        problems.append(
            f"{path}: required {sorted(schema.get('required', []))} in the CRD, "
            f"{sorted(required)} in the model"
        )
    hints = field_types(model)
    for name in fields.keys() & properties.keys():
        field = fields[name]
        problems += compare_value(hints[field.name], properties[name], f"{path}.{name}")
        problems += compare_default(field, properties[name], f"{path}.{name}")
    return problems


def compare_value(hint: Any, schema: dict[str, Any], path: str) -> list[str]:
    hint = optional_inner(hint) or hint
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return compare(hint, schema, path)
    if origin is tuple:
        if schema.get("type") != "array":
            return [f"{path}: CRD type {schema.get('type')}, model a list"]
        return compare_value(get_args(hint)[0], schema["items"], f"{path}[]")
    if origin is not None and get_args(hint)[:1] == (str,):  # Mapping[str, str]
        values = schema.get("additionalProperties")
        if schema.get("type") != "object" or not isinstance(values, dict):
            return [f"{path}: the model has a map, the CRD does not"]
        if get_args(hint)[1:] == (bool,):  # Mapping[str, bool]
            return [] if values.get("type") == "boolean" else [f"{path}: map values differ"]
        if values.get("type", "string") != "string" and not values.get(
            "x-kubernetes-int-or-string"
        ):
            return [f"{path}: map values are {values.get('type')} in the CRD"]
        return []
    if isinstance(hint, type) and issubclass(hint, Enum):
        if sorted(schema.get("enum", [])) != sorted(m.value for m in hint):
            return [
                f"{path}: enum {schema.get('enum')} in the CRD, "
                f"{[m.value for m in hint]} in the model"
            ]
        return []
    if _scalar_type(hint) != schema.get("type"):
        return [f"{path}: CRD type {schema.get('type')}, model {hint}"]
    return []


def model_default_instance(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    factory: Any = field.default_factory  # a dataclass field has a default or a factory
    return factory()


def with_defaults(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """What the API server stores for ``doc``: defaults applied where properties are absent."""
    out = dict(doc)
    for name, sub in schema.get("properties", {}).items():
        if name not in out and "default" in sub:
            out[name] = copy.deepcopy(sub["default"])
        if isinstance(out.get(name), dict) and sub.get("type") == "object":
            out[name] = with_defaults(sub, out[name])
    return out


def compare_default(field: dataclasses.Field[Any], schema: dict[str, Any], path: str) -> list[str]:
    if "default" not in schema:
        return []
    if field.default is not dataclasses.MISSING:
        model_default = encode(field.default)
    elif field.default_factory is not dataclasses.MISSING:
        model_default = encode(field.default_factory())
    else:
        return [f"{path}: the CRD has a default, the model requires the field"]
    if schema["default"] == {} and dataclasses.is_dataclass(model_default_instance(field)):
        # An empty object default makes the API server apply the nested defaults.
        defaulted = decode(type(model_default_instance(field)), with_defaults(schema, {}))
        if defaulted != model_default_instance(field):
            return [f"{path}: nested CRD defaults give {defaulted}, the model {model_default}"]
        return []
    if model_default != schema["default"]:
        return [f"{path}: default {schema['default']!r} in the CRD, {model_default!r} in the model"]
    return []


@pytest.mark.parametrize(
    ("filename", "part", "model"),
    [
        ("pgparity.io_stagingclones.yaml", "spec", StagingCloneSpec),
        ("pgparity.io_stagingclones.yaml", "status", StagingCloneStatus),
        ("pgparity.io_migrationvalidations.yaml", "spec", MigrationValidationSpec),
        ("pgparity.io_migrationvalidations.yaml", "status", MigrationValidationStatus),
    ],
)
def test_model_and_crd_are_in_step(filename: str, part: str, model: Any) -> None:
    schema = crd_schema(filename)["properties"][part]
    assert compare(model, schema, part) == []


def test_the_comparison_notices_differences() -> None:
    schema = crd_schema("pgparity.io_migrationvalidations.yaml")["properties"]["spec"]
    broken = {
        **schema,
        "properties": {k: v for k, v in schema["properties"].items() if k != "strict"},
    }
    broken["properties"]["deadlineSeconds"] = {
        **schema["properties"]["deadlineSeconds"],
        "default": 60,
    }
    problems = compare(MigrationValidationSpec, broken, "spec")
    assert "spec.strict: in the model, not in the CRD" in problems
    assert any("deadlineSeconds: default 60" in p for p in problems)


def test_every_crd_field_has_a_description() -> None:
    missing = []

    def walk(schema: dict[str, Any], path: str) -> None:
        for name, sub in schema.get("properties", {}).items():
            if (
                name not in ("apiVersion", "kind", "metadata")
                and "description" not in sub
                and "items" not in sub
            ):
                missing.append(f"{path}.{name}")
            walk(sub, f"{path}.{name}")
        if "items" in schema:
            walk(schema["items"], f"{path}[]")

    for filename in ("pgparity.io_stagingclones.yaml", "pgparity.io_migrationvalidations.yaml"):
        walk(crd_schema(filename), filename)
    assert missing == []


def examples() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        docs += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def test_examples_parse_as_models() -> None:
    parsed = {"StagingClone": 0, "MigrationValidation": 0}
    for _, doc in examples():
        if doc["kind"] == "StagingClone":
            StagingCloneSpec.parse(doc["spec"])
        elif doc["kind"] == "MigrationValidation":
            MigrationValidationSpec.parse(doc["spec"])
        else:
            continue
        parsed[doc["kind"]] += 1
    assert parsed["StagingClone"] >= 3
    assert parsed["MigrationValidation"] >= 2


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"migration": {"sql": "SELECT 1"}}, "spec.cloneRef: is required"),
        (
            {"cloneRef": {"name": "c"}, "migration": {}},
            "spec.migration: exactly one of sql or configMapRef must be set",
        ),
        (
            {
                "cloneRef": {"name": "c"},
                "migration": {"sql": "x"},
                "budgets": {"maxBlockedSessions": "3"},
            },
            "spec.budgets.maxBlockedSessions: must be an integer",
        ),
        (
            {
                "cloneRef": {"name": "c"},
                "migration": {"sql": "x"},
                "timeouts": {"lockTimeout": "soon"},
            },
            "spec.timeouts.lockTimeout: must be a PostgreSQL duration",
        ),
        (
            {"cloneRef": {"name": "c"}, "migration": {"sql": "x"}, "traffic": {"mode": "chaos"}},
            "spec.traffic.mode: must be one of none, auto, workload",
        ),
        (
            {
                "cloneRef": {"name": "c"},
                "migration": {"sql": "x"},
                "explain": {"queries": [{"name": "q"}]},
            },
            r"spec.explain.queries[0].sql: is required",
        ),
    ],
)
def test_model_parse_names_the_bad_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        MigrationValidationSpec.parse(doc)
    assert str(caught.value).startswith(message)


def test_staging_clone_parse_checks_cross_field_rules() -> None:
    with pytest.raises(SpecError, match=r"spec\.source: is required when provider is builtin"):
        StagingCloneSpec.parse({"provider": "builtin"})
    with pytest.raises(SpecError, match=r"spec\.source: exactly one of archive or live"):
        StagingCloneSpec.parse({"source": {}})
    with pytest.raises(SpecError, match=r"spec\.postgres\.parameters\.lock_timeout"):
        StagingCloneSpec.parse(
            {
                "provider": "external",
                "external": {"secretRef": {"name": "s"}},
                "postgres": {"parameters": {"lock_timeout": "5 parsecs"}},
            }
        )
