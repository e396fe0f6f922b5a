"""Check a policy against the source's catalog, and suggest a starting policy from it.

Both are pure functions over a ``SourceCatalog``. The check is default-deny: every column of
every table must be classified; every problem is listed at once, so one run of ``pgparity policy
check`` tells a reviewer everything to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgparity.models.policy import ColumnRule, Policy, RowsMode
from pgparity.seed.catalog import SourceCatalog, TableInfo
from pgparity.seed.transforms import TRANSFORMS, ColumnInfo, Transform


@dataclass(frozen=True)
class PolicyProblem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def check_policy(policy: Policy, catalog: SourceCatalog) -> list[PolicyProblem]:
    problems: list[PolicyProblem] = []
    for name in sorted(set(policy.tables) - set(catalog.tables)):
        problems.append(PolicyProblem(name, "unknown table (not in the source database)"))
    for name, table in sorted(catalog.tables.items()):
        rule = policy.tables.get(name)
        if rule is None:
            problems += [
                PolicyProblem(
                    f"{name}.{c.name}", "unclassified column (the table is not in the policy)"
                )
                for c in table.copied_columns
            ]
            continue
        if rule.rows is RowsMode.NONE:
            continue
        problems += _check_table(name, table, rule.columns, catalog)
    problems += _check_foreign_keys(policy, catalog)
    return problems


def _check_table(
    name: str, table: TableInfo, rules: Mapping[str, ColumnRule], catalog: SourceCatalog
) -> list[PolicyProblem]:
    problems = []
    columns = {c.name: c for c in table.copied_columns}
    for column in sorted(set(rules) - set(columns) - table.generated):
        problems.append(PolicyProblem(f"{name}.{column}", "unknown column"))
    for column in sorted(set(rules) & table.generated):
        if not rules[column].keeps:
            problems.append(
                PolicyProblem(
                    f"{name}.{column}",
                    "a generated column is computed again from the masked columns; use keep",
                )
            )
    keys = catalog.key_columns(name)
    for column_name, info in columns.items():
        rule = rules.get(column_name)
        where = f"{name}.{column_name}"
        if rule is None:
            problems.append(PolicyProblem(where, "unclassified column"))
            continue
        problems += [PolicyProblem(where, m) for m in _check_rule(rule, info, column_name in keys)]
    return problems


def _check_rule(rule: ColumnRule, column: ColumnInfo, is_key: bool) -> list[str]:
    transform = TRANSFORMS.get(rule.transform)
    if transform is None:
        return [f"unknown transform {rule.transform!r} (known: {', '.join(sorted(TRANSFORMS))})"]
    messages = _check_params(transform, rule.params)
    if "*" not in transform.categories and column.category not in transform.categories:
        messages.append(f"transform {transform.name} does not apply to type {column.type}")
    if transform.name == "permute" and column.base_type not in ("int4", "int8"):
        messages.append("permute applies to integer and bigint columns")
    if transform.name == "null" and column.not_null:
        messages.append("transform null on a NOT NULL column")
    if is_key and not transform.unique(rule.params):
        messages.append(
            f"transform {transform.name} can make different values equal, but the "
            "column is in a primary key, unique index or foreign key (use keep, "
            "permute, uuid, email with unique: true or hash with length: 32+)"
        )
    return messages


def _check_params(transform: Transform, params: Mapping[str, Any]) -> list[str]:
    known = {p.name: p for p in transform.params}
    messages = [
        f"unknown parameter {name!r} for {transform.name}"
        for name in sorted(set(params) - set(known))
    ]
    for param in transform.params:
        if param.name not in params:
            if param.required:
                messages.append(f"{transform.name} needs parameter {param.name!r}")
            continue
        value = params[param.name]
        wrong = (param.kind is not object and not isinstance(value, param.kind)) or (
            param.kind is int and isinstance(value, bool)
        )
        if param.kind is float and isinstance(value, int) and not isinstance(value, bool):
            wrong = False
        if wrong:
            messages.append(
                f"parameter {param.name!r} of {transform.name} must be {param.kind.__name__}"
            )
    return messages


def _check_foreign_keys(policy: Policy, catalog: SourceCatalog) -> list[PolicyProblem]:
    """Both sides of a foreign key must be masked the same way, or the joins break."""
    problems = []
    for fk in catalog.foreign_keys:
        for column, ref_column in zip(fk.columns, fk.ref_columns, strict=True):
            mine = policy.rule(fk.table, column)
            theirs = policy.rule(fk.ref_table, ref_column)
            if mine is None or theirs is None:
                continue
            if mine.signature() != theirs.signature():
                problems.append(
                    PolicyProblem(
                        f"{fk.table}.{column}",
                        f"foreign key {fk.name} references {fk.ref_table}.{ref_column}, which is "
                        f"masked differently ({theirs.transform} vs {mine.transform}): joins "
                        "would break",
                    )
                )
    return problems


# -- suggestions for `pgparity policy init` -----------------------------------------------

_SUGGESTIONS: list[tuple[str, str, str]] = [
    # (name pattern, transform, why) — first match wins.
    (r"e[-_]?mail", "email", "looks like an email address"),
    (r"phone|mobile|fax|tel(ephone)?$", "phone", "looks like a phone number"),
    (r"(first|given)[-_]?name", "name part=first", "looks like a first name"),
    (r"(last|family|sur)[-_]?name", "name part=last", "looks like a last name"),
    (r"(^|_)(full[-_]?)?name$|display[-_]?name|contact", "name", "looks like a person's name"),
    (r"pass(word)?|secret|token|api[-_]?key|salt", "null", "looks like a credential"),
    (
        r"ssn|social[-_]?security|national[-_]?id|passport|tax[-_]?id|iban|card[-_]?number",
        "null",
        "looks like a national id or account number",
    ),
    (r"birth|dob", "date_shift days=30", "looks like a birth date"),
    (r"address|street|city|zip|postal", "fill", "looks like part of an address"),
    (r"(^|_)ip([-_]?addr(ess)?)?$", "hash", "looks like an IP address"),
    (r"note|comment|description|message|bio|body", "fill", "free text can hold anything"),
]


def suggest_rule(column: ColumnInfo, is_key: bool) -> tuple[str, str]:
    """A starting rule for a column, as policy YAML, with the reason for it."""
    for pattern, suggestion, why in _SUGGESTIONS:
        if re.search(pattern, column.name, re.IGNORECASE):
            return _fit(suggestion, column, is_key), why
    return "keep", "no personal data suggested by the name or type"


def _fit(suggestion: str, column: ColumnInfo, is_key: bool) -> str:
    name, *params = suggestion.split()
    transform = TRANSFORMS[name]
    if "*" not in transform.categories and column.category not in transform.categories:
        return "null" if not column.not_null else "fill" if column.category == "S" else "keep"
    if name == "null" and column.not_null:
        return "fill" if column.category == "S" else "keep"
    if is_key and not transform.unique({}):
        if name == "email":
            return "{transform: email, unique: true}"
        return "{transform: hash, length: 32}" if column.category == "S" else "keep"
    if not params:
        return name
    rendered = ", ".join(f"{k}: {v}" for k, v in (p.split("=") for p in params))
    return f"{{transform: {name}, {rendered}}}"


def suggested_policy_text(catalog: SourceCatalog, source: str) -> str:
    """A complete starting policy in YAML, each suggestion marked for review."""
    lines = [
        f"# pgparity anonymization policy for {source}",
        "# Every column of every table is classified: keep, or a transform (pgparity --help,",
        "# README 'Anonymization'). Suggestions come from column names and types: review them.",
        "version: 1",
        "tables:",
    ]
    for name, table in sorted(catalog.tables.items()):
        keys = catalog.key_columns(name)
        lines += [f"  {_yaml_key(name)}:", "    columns:"]
        for column in table.copied_columns:
            rule, why = suggest_rule(column, column.name in keys)
            review = "" if rule == "keep" else f"  # REVIEW: {why}"
            lines.append(f"      {_yaml_key(column.name)}: {rule}{review}")
    return "\n".join(lines) + "\n"


def _yaml_key(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", name) and name.lower() not in (
        "null",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
    ):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
