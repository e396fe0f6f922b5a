"""Check a policy against the source's catalog, and suggest a starting policy from it.

Both are pure functions over a ``SourceCatalog``. The check is default-deny: every column of
every table must be classified; every problem is listed at once, so one run of ``pgparity policy
check`` tells a reviewer everything to fix.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pgparity.models.policy import ColumnRule, Policy, RowsMode
from pgparity.seed.catalog import SourceCatalog, TableInfo
from pgparity.seed.transforms import TRANSFORMS, ColumnInfo, Param, Transform


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
    if not fits_type(transform, column):
        messages.append(f"transform {transform.name} does not apply to type {column.type}")
    elif not messages:
        messages += transform.check(rule.params, column)
    if transform.name == "null" and column.not_null:
        messages.append("transform null on a NOT NULL column")
    if is_key and not transform.unique(rule.params):
        messages.append(
            f"transform {transform.name} can make different values equal, but the "
            "column is in a primary key, unique index or foreign key (use keep, "
            "permute, uuid, email with unique: true or hash with length: 32+)"
        )
    return messages


def fits_type(transform: Transform, column: ColumnInfo) -> bool:
    if transform.base_types:
        return column.base_type in transform.base_types
    return "*" in transform.categories or column.category in transform.categories


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
        problem = _param_problem(param, params[param.name])
        if problem:
            messages.append(f"parameter {param.name!r} of {transform.name} {problem}")
    return messages


def _param_problem(param: Param, value: Any) -> str | None:
    """What is wrong with one parameter's value: its type, its range, its choices."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if param.kind is float and number:
        value = float(value)
    elif param.kind is not object and (
        not isinstance(value, param.kind) or (param.kind is int and isinstance(value, bool))
    ):
        return f"must be {param.kind.__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number (got {value})"
    low, high = param.minimum, param.maximum
    if number and ((low is not None and value < low) or (high is not None and value > high)):
        return f"must be between {_number(low)} and {_number(high)} (got {value})"
    if param.choices and value not in param.choices:
        return f"must be one of {', '.join(param.choices)} (got {value!r})"
    return None


def _number(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else str(value)


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


# Types that nest values (and so can hold personal data anywhere inside), by base type name;
# arrays (category A) and composite types (C) too, and domains over any of them.
STRUCTURED_TYPES = frozenset({"json", "jsonb", "xml", "bytea", "hstore", "tsvector"})
STRUCTURED_CATEGORIES = frozenset({"A", "C"})


@dataclass(frozen=True)
class Suggestion:
    rule: str  # policy YAML
    why: str
    review: bool = True


def suggest_rule(column: ColumnInfo, is_key: bool) -> Suggestion:
    """A starting rule for a column, with the reason for it."""
    if column.base_type in STRUCTURED_TYPES or column.category in STRUCTURED_CATEGORIES:
        return _suggest_structured(column, is_key)
    for pattern, suggestion, why in _SUGGESTIONS:
        if re.search(pattern, column.name, re.IGNORECASE):
            return Suggestion(_fit(suggestion, column, is_key), why)
    return Suggestion("keep", "no personal data suggested by the name or type", review=False)


def _suggest_structured(column: ColumnInfo, is_key: bool) -> Suggestion:
    if is_key:
        return Suggestion(
            "keep", f"{column.type} is part of a key: no structured mask keeps keys unique"
        )
    if column.base_type in ("json", "jsonb"):
        return Suggestion(
            "jsonb_mask", "JSON can hold personal data anywhere: keys and shape kept, leaves masked"
        )
    why = f"{column.type} can hold personal data anywhere inside"
    if not column.not_null:
        return Suggestion("null", why)
    if column.empty_value is None:
        return Suggestion("keep", f"{why}; NOT NULL, and no empty value is known: write a mask")
    return Suggestion(
        f"{{transform: constant, value: {_yaml_scalar(column.empty_value)}}}", f"{why} (NOT NULL)"
    )


def _fit(suggestion: str, column: ColumnInfo, is_key: bool) -> str:
    name, *params = suggestion.split()
    transform = TRANSFORMS[name]
    if not fits_type(transform, column):
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
            suggestion = suggest_rule(column, column.name in keys)
            review = f"  # REVIEW: {_comment(suggestion.why)}" if suggestion.review else ""
            lines.append(f"      {_yaml_key(column.name)}: {suggestion.rule}{review}")
    return "\n".join(lines) + "\n"


def _comment(text: str) -> str:
    return " ".join(text.split())  # a type name with a newline must not end the comment


def _yaml_scalar(text: str) -> str:
    """A YAML double-quoted scalar that reads back as exactly ``text`` (newlines included)."""
    return '"' + "".join(_yaml_char(c) for c in text) + '"'


def _yaml_char(char: str) -> str:
    code = ord(char)
    if char in '"\\':
        return "\\" + char
    if (
        0x20 <= code <= 0x7E
        or (0xA0 <= code <= 0xFFFD and not _escaped_in_yaml(code))
        or code >= 0x10000
    ):
        return char
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _escaped_in_yaml(code: int) -> bool:
    # Surrogates, the byte-order mark and the line and paragraph separators: not printable,
    # or read as line breaks, inside a YAML scalar.
    return 0xD800 <= code <= 0xDFFF or code in (0xFEFF, 0x2028, 0x2029)


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
    return _yaml_scalar(name)
