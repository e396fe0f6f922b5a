"""The objects of one validation run: the Job, its inputs, its report, its narrow permissions.

The Job runs ``pgparity validate`` in the operator's image against the clone named by the
MigrationValidation, with the clone's connection strings from its Secret, and writes the JSON
report into a ConfigMap the operator created for it (owned by the MigrationValidation). Its
ServiceAccount may do exactly that: get and patch that one ConfigMap. ``backoffLimit: 0`` —
a retry could run statements that cannot be rolled back a second time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from pgparity.manifests.labels import (
    CLONE_LABEL,
    KEY_LABEL,
    VALIDATION_LABEL,
    child_name,
    labels,
    metadata,
    owner_reference,
)
from pgparity.manifests.pods import (
    report_writer_access,
    restricted_container,
    restricted_pod,
    tmp_mount,
    tmp_volume,
)
from pgparity.models.codec import encode
from pgparity.models.migration_validation import (
    KIND,
    MigrationValidationSpec,
    ProductionTables,
    TrafficMode,
)

INPUTS_DIR = "/pgparity/inputs"
MIGRATION_KEY = "migration.sql"
WORKLOAD_KEY = "workload.yaml"
EXPLAIN_KEY = "explain.yaml"
REPORT_KEY = "report.json"
PRODUCTION_KEY = "production.yaml"


@dataclass(frozen=True)
class ValidationRef:
    name: str
    namespace: str
    uid: str

    @property
    def owner(self) -> dict[str, Any]:
        return owner_reference(KIND, self.name, self.uid)


@dataclass(frozen=True)
class ValidationInputs:
    """What one run validates: resolved by the operator, hashed into the validation key."""

    sql: str
    clone: str
    clone_secret: str
    lock_timeout: str | None
    statement_timeout: str | None
    workload: str | None = None  # YAML text from the traffic workload ConfigMap

    @property
    def migration_sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def validation_key(spec: MigrationValidationSpec, inputs: ValidationInputs) -> str:
    """Hash of everything the verdict depends on: an unchanged key is not validated again."""
    relevant = {
        "migration": inputs.migration_sha256,
        "clone": inputs.clone,
        "timeouts": [inputs.lock_timeout, inputs.statement_timeout],
        "workload": inputs.workload,
        "spec": {k: v for k, v in encode(spec).items() if k not in ("migration", "cloneRef")},
    }
    canonical = json.dumps(relevant, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ValidationNames:
    """The names of a validation's objects (its Job's carries the key's first 10 digits)."""

    inputs: str
    report: str
    account: str
    job: str


def names(validation: str, key: str) -> ValidationNames:
    return ValidationNames(
        inputs=child_name(validation, "inputs"),
        report=child_name(validation, "report"),
        account=child_name(validation, "validator"),
        job=child_name(validation, key[:10]),
    )


def _labels(ref: ValidationRef, clone: str, key: str) -> dict[str, str]:
    return labels(
        ref.name,
        "validation",
        **{VALIDATION_LABEL: ref.name, CLONE_LABEL: clone, KEY_LABEL: key[:63]},
    )


def build_inputs(
    ref: ValidationRef, spec: MigrationValidationSpec, inputs: ValidationInputs, key: str
) -> dict[str, Any]:
    """The migration (and workload, explain queries) exactly as validated, for the Job."""
    data = {MIGRATION_KEY: inputs.sql}
    if inputs.workload is not None:
        data[WORKLOAD_KEY] = inputs.workload
    if spec.explain is not None and spec.explain.queries:
        data[EXPLAIN_KEY] = yaml.safe_dump(encode(spec.explain), sort_keys=False)
    if spec.production is not None and spec.production.tables:
        tables = encode(ProductionTables(tables=spec.production.tables))
        data[PRODUCTION_KEY] = yaml.safe_dump(tables, sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            names(ref.name, key).inputs,
            ref.namespace,
            ref.owner,
            _labels(ref, inputs.clone, key),
        ),
        "data": data,
    }


def build_report_holder(ref: ValidationRef, clone: str, key: str) -> dict[str, Any]:
    """The empty ConfigMap the Job writes its report into."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            names(ref.name, key).report, ref.namespace, ref.owner, _labels(ref, clone, key)
        ),
        "data": {},
    }


def build_job_access(ref: ValidationRef, clone: str, key: str) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding: get and patch the report ConfigMap, nothing else."""
    n = names(ref.name, key)
    meta = metadata(n.account, ref.namespace, ref.owner, _labels(ref, clone, key))
    return report_writer_access(n.account, n.report, meta, ref.namespace)


def validate_command(
    spec: MigrationValidationSpec,
    inputs: ValidationInputs,
    report: str,
    parity: str | None = None,
) -> list[str]:
    """The Job's command: ``pgparity validate`` with everything the spec asks for."""
    command = [
        "pgparity",
        "validate",
        "--migration",
        f"{INPUTS_DIR}/{MIGRATION_KEY}",
        "--format",
        "json",
        "--report-configmap",
        report,
    ]
    if inputs.lock_timeout:
        command += ["--lock-timeout", inputs.lock_timeout]
    if inputs.statement_timeout:
        command += ["--statement-timeout", inputs.statement_timeout]
    if spec.expect_digest:
        command += ["--expect-digest", spec.expect_digest]
    if spec.strict:
        command.append("--strict")
    if parity:
        command += ["--parity-state", parity]
    command += _traffic_args(spec, inputs)
    if spec.explain is not None and spec.explain.queries:
        command += ["--explain", f"{INPUTS_DIR}/{EXPLAIN_KEY}"]
    command += _margin_args(spec)
    budgets = spec.budgets
    if budgets is not None:
        if budgets.max_lock_wait:
            command += ["--max-lock-wait", budgets.max_lock_wait]
        if budgets.max_blocked_sessions is not None:
            command += ["--max-blocked-sessions", str(budgets.max_blocked_sessions)]
        if budgets.max_replication_lag:
            command += ["--max-replication-lag", budgets.max_replication_lag]
    return command


def _margin_args(spec: MigrationValidationSpec) -> list[str]:
    """Headroom, repeats and production's sizes (the DSN comes from the environment)."""
    args: list[str] = []
    if spec.headroom is not None:
        args += ["--headroom", f"{spec.headroom.factor:g}"]
        args += ["--headroom-severity", spec.headroom.severity.value]
    if spec.repeat > 1:
        args += ["--repeat", str(spec.repeat)]
    if spec.production is not None and spec.production.tables:
        args += ["--production-sizes", f"{INPUTS_DIR}/{PRODUCTION_KEY}"]
    return args


def _production_env(spec: MigrationValidationSpec) -> list[dict[str, Any]]:
    """Production's read-only DSN from its Secret, never on the command line."""
    ref = spec.production.secret_ref if spec.production else None
    if ref is None:
        return []
    return [
        {
            "name": "PGPARITY_PRODUCTION_DSN",
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
        }
    ]


def _traffic_args(spec: MigrationValidationSpec, inputs: ValidationInputs) -> list[str]:
    traffic = spec.traffic
    if traffic is None:
        return []
    args: list[str] = []
    if traffic.mode is TrafficMode.AUTO:
        args += [
            "--traffic",
            "auto",
            "--traffic-clients",
            str(traffic.clients),
            "--traffic-rate",
            str(traffic.rate),
        ]
    elif traffic.mode is TrafficMode.WORKLOAD and inputs.workload is not None:
        args += ["--traffic", f"{INPUTS_DIR}/{WORKLOAD_KEY}"]
    for hold in traffic.hold_locks:
        args += ["--hold-lock", f"{hold.table}:{hold.duration}"]
    return args


def build_job(
    ref: ValidationRef,
    spec: MigrationValidationSpec,
    inputs: ValidationInputs,
    key: str,
    *,
    image: str,
    cpu: str,
    memory: str,
    parity: str | None = None,
) -> dict[str, Any]:
    n = names(ref.name, key)
    lab = _labels(ref, inputs.clone, key)
    secret = inputs.clone_secret
    container = {
        "name": "validate",
        "image": image,
        "command": validate_command(spec, inputs, n.report, parity),
        "env": [
            {"name": "PGPARITY_DSN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "dsn"}}},
            {
                "name": "PGPARITY_REPLICA_DSN",
                "valueFrom": {
                    "secretKeyRef": {"name": secret, "key": "replicaDsn", "optional": True}
                },
            },
            {
                "name": "POD_NAMESPACE",
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
            },
            *_production_env(spec),
        ],
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": cpu, "memory": memory},
        },
        "volumeMounts": [
            {"name": "inputs", "mountPath": INPUTS_DIR, "readOnly": True},
            tmp_mount(),
        ],
        "securityContext": restricted_container(),
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(n.job, ref.namespace, ref.owner, lab),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": spec.deadline_seconds,
            "template": {
                "metadata": {"labels": lab},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": n.account,
                    "securityContext": restricted_pod(),
                    "containers": [container],
                    "volumes": [
                        {"name": "inputs", "configMap": {"name": n.inputs}},
                        tmp_volume(),
                    ],
                },
            },
        },
    }
