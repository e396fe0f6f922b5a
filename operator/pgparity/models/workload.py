"""Files that shape a dry-run's surroundings: traffic workloads and EXPLAIN expectations.

Both are YAML documents with camelCase keys (the same names the MigrationValidation CRD uses);
snake_case keys (``uses_index``) are accepted too. ``parse`` names the bad field path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pgparity.errors import SpecError
from pgparity.models.codec import decode
from pgparity.models.common import is_pg_duration
from pgparity.models.migration_validation import ExplainQuery


@dataclass(frozen=True)
class ParamSpec:
    """Where one statement parameter's values come from: exactly one of the four."""

    int_range: tuple[int, ...] | None = None
    choice: tuple[Any, ...] | None = None
    sample: str | None = None
    value: Any = None

    def problems(self) -> list[tuple[str, str]]:
        given = [
            n for n in ("int_range", "choice", "sample", "value") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            return [("", "exactly one of intRange, choice, sample or value must be set")]
        if self.int_range is not None and (
            len(self.int_range) != 2 or self.int_range[0] > self.int_range[1]
        ):
            return [("intRange", "must be [low, high] with low <= high")]
        if self.choice is not None and not self.choice:
            return [("choice", "must not be empty")]
        return []


@dataclass(frozen=True)
class WorkloadStatement:
    sql: str
    name: str | None = None
    weight: float = 1.0
    params: dict[str, ParamSpec] = field(default_factory=dict)

    def problems(self) -> list[tuple[str, str]]:
        if self.weight <= 0:
            return [("weight", "must be positive")]
        used = set(re.findall(r"%\((\w+)\)s", self.sql))
        missing = sorted(used - set(self.params))
        if missing:
            return [("params", f"no values for {', '.join(missing)}")]
        return []


@dataclass(frozen=True)
class Workload:
    """Traffic to run against the target while the migration runs."""

    statements: tuple[WorkloadStatement, ...]
    clients: int = 4
    rate: float = 50.0
    commit: bool = False
    warmup: str = "1s"
    cooldown: str = "500ms"
    duration: str | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = []
        if not self.statements:
            found.append(("statements", "must list at least one statement"))
        if not 1 <= self.clients <= 256:
            found.append(("clients", "must be between 1 and 256"))
        if self.rate < 0:
            found.append(("rate", "must not be negative (0 = as fast as possible)"))
        for name in ("warmup", "cooldown", "duration"):
            value = getattr(self, name)
            if value is not None and not is_pg_duration(value):
                found.append((name, "must be a PostgreSQL duration such as 2s"))
        return found

    @classmethod
    def parse(cls, doc: Any) -> Workload:
        return decode(cls, camelize_keys(doc))


@dataclass(frozen=True)
class ExplainFile:
    queries: tuple[ExplainQuery, ...]
    analyze: bool = False
    analyze_tables: bool = False

    @classmethod
    def parse(cls, doc: Any) -> ExplainFile:
        """A list of queries, or ``{queries: […], analyze: bool, analyzeTables: bool}``."""
        if isinstance(doc, list):
            doc = {"queries": doc}
        parsed = decode(cls, camelize_keys(doc))
        names = [q.name for q in parsed.queries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SpecError("queries", f"duplicate query names: {', '.join(duplicates)}")
        return parsed


def camelize_keys(doc: Any) -> Any:
    """``uses_index`` → ``usesIndex`` in every mapping of a document.

    The keys of ``params`` are the statement's own placeholder names and stay as written.
    """
    if isinstance(doc, dict):
        return {
            _camel(str(k)): _params(v) if k == "params" else camelize_keys(v)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [camelize_keys(v) for v in doc]
    return doc


def _params(params: Any) -> Any:
    if not isinstance(params, dict):
        return params
    return {str(name): camelize_keys(spec) for name, spec in params.items()}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
