"""Which settings the parity floor compares, in which class, and how their values compare.

Two classes (the seed guide's configuration dimension): *must equal* — timeouts, planner and
storage settings, whose difference changes a plan or a verdict — and *scaled* — memory sized to
the machine (shared_buffers, effective_cache_size), reported, never enforced. A YAML file
(``pgparity parity --settings FILE``) changes the list::

    replaceDefaults: false        # true: only the names below are compared
    settings:
      work_mem: must-equal
      shared_buffers: scaled
      jit: ignored                # not compared at all
      "enable_*": must-equal      # fnmatch patterns, case-insensitive

Values are compared as the server would read them: ``64MB`` equals ``65536`` (in kB),
``1min`` equals ``60s``, ``yes`` equals ``on``, ``"$user", public`` equals ``"$user",public``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pgparity.errors import UsageError
from pgparity.inputs import load_yaml_file


class SettingClass(StrEnum):
    MUST_EQUAL = "must-equal"
    SCALED = "scaled"
    IGNORED = "ignored"


# The defaults: what changes what a migration does, how long it may wait, and which plan it gets.
MUST_EQUAL_DEFAULTS = (
    # timeouts
    "lock_timeout",
    "statement_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "deadlock_timeout",
    # planner
    "work_mem",
    "hash_mem_multiplier",
    "maintenance_work_mem",
    "random_page_cost",
    "seq_page_cost",
    "cpu_tuple_cost",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "parallel_setup_cost",
    "parallel_tuple_cost",
    "min_parallel_table_scan_size",
    "min_parallel_index_scan_size",
    "effective_io_concurrency",
    "maintenance_io_concurrency",
    "default_statistics_target",
    "jit",
    "jit_above_cost",
    "jit_inline_above_cost",
    "jit_optimize_above_cost",
    "enable_*",
    "join_collapse_limit",
    "from_collapse_limit",
    "geqo",
    "geqo_threshold",
    "plan_cache_mode",
    "constraint_exclusion",
    "cursor_tuple_fraction",
    "search_path",
    "max_parallel_workers",
    "max_parallel_workers_per_gather",
    "max_parallel_maintenance_workers",
    "max_worker_processes",
    # storage and WAL
    "default_toast_compression",
    "default_table_access_method",
    "wal_level",
    "wal_compression",
    "full_page_writes",
    "synchronous_commit",
    "max_wal_size",
    "checkpoint_timeout",
    # behaviour a migration's SQL depends on
    "default_transaction_isolation",
    "standard_conforming_strings",
    "check_function_bodies",
    "timezone",
    "datestyle",
    "intervalstyle",
)
SCALED_DEFAULTS = (
    "shared_buffers",
    "effective_cache_size",
    "max_connections",
    "wal_buffers",
    "autovacuum_work_mem",
)
# Settings whose value is a list of names the server quotes as identifiers (GUC_LIST_QUOTE):
# ``SET search_path = 'a, b'`` would name one schema "a, b", so they are set element by element.
LIST_QUOTED = frozenset(
    {
        "search_path",
        "temp_tablespaces",
        "session_preload_libraries",
        "shared_preload_libraries",
        "local_preload_libraries",
    }
)
# Never compared, emitted or changed: pgparity's own markers live under this prefix.
OWN_PREFIX = "pgparity."
_NAME = re.compile(r"[a-z_][a-z0-9_.*?\[\]-]*")


@dataclass(frozen=True)
class SettingsList:
    """Name or fnmatch pattern (lower case) → class; exact names win over patterns."""

    classes: Mapping[str, SettingClass] = field(default_factory=dict)
    defaults: bool = True

    def classify(self, name: str) -> SettingClass | None:
        name = name.lower()
        if name.startswith(OWN_PREFIX):
            return None
        tables = [self.classes] + ([_DEFAULTS] if self.defaults else [])
        for table in tables:
            found = table.get(name) or _first_pattern(table, name)
            if found is not None:
                return found
        return None

    def exact_names(self) -> frozenset[str]:
        """Names (not patterns) listed in the file: each must exist on one of the servers."""
        return frozenset(n for n, c in self.classes.items() if not _is_pattern(n))


def _first_pattern(table: Mapping[str, SettingClass], name: str) -> SettingClass | None:
    for pattern, found in table.items():
        if _is_pattern(pattern) and fnmatch.fnmatchcase(name, pattern):
            return found
    return None


def _is_pattern(name: str) -> bool:
    return any(c in name for c in "*?[")


_DEFAULTS: Mapping[str, SettingClass] = {
    **dict.fromkeys(MUST_EQUAL_DEFAULTS, SettingClass.MUST_EQUAL),
    **dict.fromkeys(SCALED_DEFAULTS, SettingClass.SCALED),
}


def load_settings_list(path: Path | None) -> SettingsList:
    if path is None:
        return SettingsList()
    return parse_settings_list(load_yaml_file(path, "--settings"), f"--settings file {path}")


def parse_settings_list(doc: Any, where: str) -> SettingsList:
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: must be a mapping with `settings:`")
    unknown = sorted(str(k) for k in doc if k not in ("settings", "replaceDefaults"))
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r} (settings, replaceDefaults)")
    replace = doc.get("replaceDefaults", False)
    if not isinstance(replace, bool):
        raise UsageError(f"{where}: replaceDefaults must be true or false")
    entries = doc.get("settings", {})
    if not isinstance(entries, dict):
        raise UsageError(f"{where}: settings must map names to {_class_names()}")
    return SettingsList(
        classes={_entry_name(k, where): _entry_class(k, v, where) for k, v in entries.items()},
        defaults=not replace,
    )


def _entry_name(name: Any, where: str) -> str:
    text = str(name).lower()
    if not isinstance(name, str) or not _NAME.fullmatch(text) or len(text) > 128:
        raise UsageError(f"{where}: settings: {str(name)[:64]!r} is not a setting name")
    if text.startswith(OWN_PREFIX):
        raise UsageError(f"{where}: settings: {text!r} is pgparity's own marker, not comparable")
    return text


def _entry_class(name: Any, value: Any, where: str) -> SettingClass:
    try:
        return SettingClass(value)
    except ValueError:
        raise UsageError(
            f"{where}: settings.{name}: {str(value)[:32]!r} is not one of {_class_names()}"
        ) from None


def _class_names() -> str:
    return ", ".join(c.value for c in SettingClass)


# --- values -----------------------------------------------------------------------------------

_MEMORY_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_TIME_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0}
_TIME_UNITS["d"] = 24 * _TIME_UNITS["h"]
_QUANTITY = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*")
_TRUE = ("on", "true", "yes", "1")
_FALSE = ("off", "false", "no", "0")


@dataclass(frozen=True)
class SettingType:
    """What pg_settings says about a setting's values: ``vartype`` and ``unit``."""

    vartype: str  # bool, enum, integer, real, string
    unit: str | None = None


def normalize(name: str, value: str, kind: SettingType) -> str:
    """``value`` in one canonical spelling, so that equal settings compare equal as text."""
    if kind.vartype == "bool":
        return _boolean(value)
    if kind.vartype in ("integer", "real"):
        return _number(value, kind.unit)
    if kind.vartype == "enum":
        return value.strip().lower()
    if name.lower() in LIST_QUOTED:
        return ", ".join(list_elements(value))
    return value.strip()


def _boolean(value: str) -> str:
    text = value.strip().lower()
    if text in _TRUE:
        return "on"
    if text in _FALSE:
        return "off"
    return text


def _number(value: str, unit: str | None) -> str:
    """Memory in bytes, time in milliseconds, plain numbers as they are (``-1`` stays)."""
    found = _QUANTITY.fullmatch(value)
    if found is None:
        return value.strip()
    number, given = float(found.group(1)), found.group(2)
    base = _base_unit(unit)
    if given:
        scale = _MEMORY_UNITS.get(given) or _TIME_UNITS.get(given)
        if scale is None:
            return value.strip()
    else:
        scale = base
    return _plain(number * scale)


def _base_unit(unit: str | None) -> float:
    """pg_settings' unit, with its multiplier: ``8kB`` is 8192 bytes, ``min`` 60000 ms."""
    if not unit:
        return 1.0
    found = re.fullmatch(r"(\d*)(\w+)", unit)
    if found is None:
        return 1.0
    count = int(found.group(1) or 1)
    return count * (_MEMORY_UNITS.get(found.group(2)) or _TIME_UNITS.get(found.group(2)) or 1.0)


def _plain(number: float) -> str:
    return str(int(number)) if number == int(number) else repr(round(number, 9))


def with_unit(setting: str, unit: str | None) -> str:
    """pg_settings' ``setting`` and ``unit`` as one value a configuration file accepts:
    ``4096`` kB → ``4096kB``; ``1`` in ``8kB`` → ``8kB``; unitless values unchanged."""
    found = re.fullmatch(r"(\d*)(\w+)", unit or "")
    if found is None or not re.fullmatch(r"-?\d+", setting.strip()) or int(setting) < 0:
        return setting
    return f"{int(setting) * int(found.group(1) or 1)}{found.group(2)}"


def list_elements(value: str) -> list[str]:
    """The elements of a list setting as the server stores it (``"$user", public``), each
    without its identifier quotes."""
    elements, current, quoted, i = [], [], False, 0
    while i < len(value):
        char = value[i]
        if char == '"':
            if quoted and value[i + 1 : i + 2] == '"':
                current.append('"')
                i += 1
            else:
                quoted = not quoted
        elif char == "," and not quoted:
            elements.append("".join(current).strip())
            current = []
        else:
            current.append(char)
        i += 1
    last = "".join(current).strip()
    if last or elements:
        elements.append(last)
    return elements
