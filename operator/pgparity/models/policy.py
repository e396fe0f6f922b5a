"""The anonymization policy: every column of every table, kept or transformed (default-deny).

```yaml
version: 1
tables:
  public.users:
    columns:
      id: keep
      email: {transform: email, unique: true}
      full_name: name
      ssn: null                       # the transform "null", not YAML's null: see below
      born: {transform: date_shift, days: 30}
  public.audit_log:
    rows: none                        # keep the table's schema, copy no rows
```

A column rule is a transform name or a mapping ``{transform: NAME, …parameters}``. YAML reads a
bare ``null`` as nothing, so ``ssn: null`` and ``ssn: {transform: "null"}`` mean the same: the
column is copied as NULL. ``parse`` names the bad field path; whether a transform exists and fits
the column is checked against the database by ``pgparity policy check``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pgparity.errors import SpecError

POLICY_VERSION = 1
_POLICY_KEYS = ("version", "tables")
_TABLE_KEYS = ("columns", "rows")


# The pg_stats metrics the data parity report compares (``pgparity parity``).
ALL_STATISTICS = frozenset({"null_frac", "n_distinct", "avg_width", "correlation"})
# For each transform, the metrics its output keeps close to the input's: the parity report
# checks only these on a masked column (a name-like mask reduces distinct values by design).
# Shared knowledge of seeding (``seed.transforms``) and data parity (``parity``), kept here as
# data so that neither depends on the other.
KEPT_STATISTICS: Mapping[str, frozenset[str]] = {
    "keep": ALL_STATISTICS,
    "null": frozenset(),
    "constant": frozenset({"null_frac"}),
    # hash: the output's length is clamped to 16–64 characters or fixed by ``length``
    "hash": frozenset({"null_frac", "n_distinct"}),
    "hash_int": frozenset({"null_frac"}),
    "uuid": frozenset({"null_frac", "n_distinct", "avg_width"}),
    "email": frozenset({"null_frac", "n_distinct"}),
    "name": frozenset({"null_frac"}),
    "phone": frozenset({"null_frac"}),
    "partial": frozenset({"null_frac", "avg_width"}),
    "noise": frozenset({"null_frac", "avg_width", "correlation"}),
    "date_shift": frozenset({"null_frac", "avg_width", "correlation"}),
    "date_trunc": frozenset({"null_frac", "avg_width", "correlation"}),
    "fill": frozenset({"null_frac", "avg_width"}),
    "permute": frozenset({"null_frac", "n_distinct", "avg_width"}),
    "jsonb_mask": frozenset({"null_frac"}),
}


def kept_statistics(transform: str) -> frozenset[str]:
    """What a column masked by ``transform`` keeps; an unknown transform is compared fully."""
    return KEPT_STATISTICS.get(transform, ALL_STATISTICS)


class RowsMode(StrEnum):
    ALL = "all"
    NONE = "none"


@dataclass(frozen=True)
class ColumnRule:
    transform: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def keeps(self) -> bool:
        return self.transform == "keep"

    def signature(self) -> str:
        """Transform and parameters: equal signatures give equal outputs for equal inputs."""
        return json.dumps(
            {"transform": self.transform, "params": dict(self.params)}, sort_keys=True, default=str
        )


@dataclass(frozen=True)
class TableRule:
    columns: Mapping[str, ColumnRule]
    rows: RowsMode = RowsMode.ALL


@dataclass(frozen=True)
class Policy:
    tables: Mapping[str, TableRule]
    version: int = POLICY_VERSION

    @property
    def sha256(self) -> str:
        """Hash of the policy's meaning (not its formatting), recorded with every seed."""
        canonical = json.dumps(
            {
                name: {
                    "rows": t.rows.value,
                    "columns": {c: json.loads(r.signature()) for c, r in t.columns.items()},
                }
                for name, t in self.tables.items()
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def rule(self, table: str, column: str) -> ColumnRule | None:
        found = self.tables.get(table)
        return None if found is None else found.columns.get(column)

    @classmethod
    def parse(cls, doc: Any) -> Policy:
        if not isinstance(doc, Mapping):
            raise SpecError("(policy)", "must be a mapping with 'version' and 'tables'")
        _check_keys(doc, _POLICY_KEYS, "")
        version = doc.get("version", POLICY_VERSION)
        if version != POLICY_VERSION:
            raise SpecError(
                "version", f"unsupported policy version {version!r} (expected {POLICY_VERSION})"
            )
        tables = doc.get("tables")
        if not isinstance(tables, Mapping) or not tables:
            raise SpecError("tables", "must map table names to their column rules")
        return cls(
            tables={str(name): _table(rule, f"tables.{name}") for name, rule in tables.items()},
            version=version,
        )


def _table(doc: Any, path: str) -> TableRule:
    if not isinstance(doc, Mapping):
        raise SpecError(path, "must be a mapping with 'columns'")
    _check_keys(doc, _TABLE_KEYS, f"{path}.")
    rows_text = doc.get("rows", RowsMode.ALL.value)
    try:
        rows = RowsMode(str(rows_text))
    except ValueError as exc:
        raise SpecError(f"{path}.rows", "must be all or none") from exc
    columns = doc.get("columns", {})
    if not isinstance(columns, Mapping) or (not columns and rows is RowsMode.ALL):
        raise SpecError(f"{path}.columns", "must map every column to keep or a transform")
    return TableRule(
        columns={str(c): _column(r, f"{path}.columns.{c}") for c, r in columns.items()}, rows=rows
    )


def _column(doc: Any, path: str) -> ColumnRule:
    if doc is None:
        return ColumnRule(transform="null")
    if isinstance(doc, str):
        return ColumnRule(transform=doc.strip())
    if isinstance(doc, Mapping):
        transform = doc.get("transform")
        if not isinstance(transform, str) or not transform:
            raise SpecError(f"{path}.transform", "is required (a transform name)")
        params = {str(k): v for k, v in doc.items() if k not in ("transform", "review")}
        return ColumnRule(transform=transform, params=params)
    raise SpecError(path, "must be a transform name or {transform: NAME, …}")


def _check_keys(doc: Mapping[Any, Any], known: tuple[str, ...], prefix: str) -> None:
    """A misspelt key would be ignored (``colums:`` leaves a table unclassified): refuse it."""
    for key in doc:
        if key not in known:
            closest = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {closest[0]!r}?)" if closest else ""
            raise SpecError(f"{prefix}{key}", f"unknown key{hint}; known: {', '.join(known)}")
