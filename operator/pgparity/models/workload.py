"""Files that shape a dry-run's surroundings: traffic workloads and EXPLAIN expectations.

Both are YAML documents with camelCase keys (the same names the MigrationValidation CRD uses);
snake_case keys (``uses_index``) are accepted too. ``parse`` names the bad field path; a key
that is not in the schema is an error naming the closest valid one (``codec.FILE``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pgparity.errors import SpecError
from pgparity.inputs import sql_control_character
from pgparity.models.codec import FILE, decode
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.quantities import in_range, parse_duration

MAX_CLIENTS = 256
MAX_RATE = 100_000.0  # transactions per second per client
MAX_WEIGHT = 1_000_000.0
# Longest pauses and runs a workload may ask for, in PostgreSQL's duration syntax.
MAX_PAUSE_MS = 10 * 60_000
MAX_RUN_MS = 24 * 3_600_000


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
        problem = sql_control_character(self.sql)
        if problem:
            return [("sql", problem)]
        if not 0 < self.weight <= MAX_WEIGHT:
            return [("weight", f"must be positive and at most {MAX_WEIGHT:g}")]
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
        if not 1 <= self.clients <= MAX_CLIENTS:
            found.append(("clients", f"must be between 1 and {MAX_CLIENTS}"))
        if not 0 <= self.rate <= MAX_RATE:
            found.append(("rate", f"must be between 0 (as fast as possible) and {MAX_RATE:g}"))
        for name, longest in (
            ("warmup", MAX_PAUSE_MS),
            ("cooldown", MAX_PAUSE_MS),
            ("duration", MAX_RUN_MS),
        ):
            value = getattr(self, name)
            if value is not None and not in_range(
                value, partial(parse_duration, maximum_ms=longest)
            ):
                found.append((name, f"must be a PostgreSQL duration up to {longest // 1000}s"))
        return found

    @classmethod
    def parse(cls, doc: Any) -> Workload:
        return decode(cls, doc, rules=FILE)


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
        parsed = decode(cls, doc, rules=FILE)
        names = [q.name for q in parsed.queries]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SpecError("queries", f"duplicate query names: {', '.join(duplicates)}")
        return parsed
