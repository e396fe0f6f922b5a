"""Project configuration: ``[tool.pgparity.lint]`` in pyproject.toml, or ``[lint]`` in
pgparity.toml.

```toml
[tool.pgparity.lint]
enable = ["not-re-runnable"]                       # rules that are off by default
disable = { prefer-bigint = "ids are bounded by the tenant count" }   # a reason is required
severity = { drop-column = "error" }
assume-in-transaction = true                       # the migration tool wraps each file
```

Read strictly: an unknown key, an unknown rule id or a disable without a reason is bad input
(exit 2) with the file named, never silently ignored (squawk#214).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgparity.errors import UsageError
from pgparity.inputs import InputKind, read_text
from pgparity.lint.catalog import CATALOG, Category, Rule, closest_rule
from pgparity.models.report import Severity

CONFIG_FILE = InputKind("lint configuration file", 4 * 1024 * 1024)
_KEYS = ("enable", "disable", "severity", "assume-in-transaction")


@dataclass(frozen=True)
class LintConfig:
    enable: frozenset[Rule] = frozenset()
    disable: Mapping[Rule, str] = field(default_factory=dict)  # rule → the reason
    severity: Mapping[Rule, Severity] = field(default_factory=dict)
    assume_in_transaction: bool = False
    source: str | None = None

    def reported(self, rule: Rule) -> bool:
        """Off-by-default rules are reported only when enabled; disabled ones are still found,
        and reported as acknowledged by the configuration, with its reason."""
        return CATALOG[rule].enabled or rule in self.enable or rule in self.disable

    def severity_of(self, rule: Rule) -> Severity:
        return self.severity.get(rule, CATALOG[rule].severity)


def find_config(start: Path) -> Path | None:
    """The nearest pgparity.toml, or pyproject.toml with ``[tool.pgparity.lint]``, from
    ``start`` up to the filesystem root."""
    for directory in (start.resolve(), *start.resolve().parents):
        candidate = directory / "pgparity.toml"
        if candidate.is_file():
            return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and "pgparity" in _tool_table(pyproject):
            return pyproject
    return None


def load_config(path: Path | None) -> LintConfig:
    if path is None:
        return LintConfig()
    document = _read_toml(path)
    if path.name == "pyproject.toml":
        table = document.get("tool", {}).get("pgparity", {}).get("lint", {})
        where = f"{path} [tool.pgparity.lint]"
    else:
        table = document.get("lint", {})
        where = f"{path} [lint]"
    return parse_config(table, where)


def parse_config(table: Mapping[str, Any], where: str) -> LintConfig:
    if not isinstance(table, Mapping):
        raise UsageError(f"{where} must be a table")
    for key in table:
        if key.replace("_", "-") not in _KEYS:
            raise UsageError(f"{where}: unknown key {key!r}{_did_you_mean(key, _KEYS)}")
    values = {key.replace("_", "-"): value for key, value in table.items()}
    return LintConfig(
        enable=frozenset(_rules(values.get("enable", []), f"{where} enable")),
        disable=_disabled(values.get("disable", {}), f"{where} disable"),
        severity=_severities(values.get("severity", {}), f"{where} severity"),
        assume_in_transaction=_boolean(values.get("assume-in-transaction", False), where),
        source=where,
    )


def _rules(names: Any, where: str) -> list[Rule]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{where} must be a list of rule ids")
    return [rule_id(name, where) for name in names]


def _disabled(table: Any, where: str) -> dict[Rule, str]:
    if not isinstance(table, Mapping):
        raise UsageError(f'{where} must be a table of rule = "reason"')
    disabled = {}
    for name, reason in table.items():
        rule = rule_id(name, where)
        if CATALOG[rule].category is Category.META and rule is not Rule.UNUSED_ACKNOWLEDGEMENT:
            raise UsageError(f"{where}: {rule.value} cannot be disabled")
        if not isinstance(reason, str) or not reason.strip():
            raise UsageError(f'{where}: {rule.value} needs a reason ({rule.value} = "why")')
        disabled[rule] = reason.strip()
    return disabled


def _severities(table: Any, where: str) -> dict[Rule, Severity]:
    if not isinstance(table, Mapping):
        raise UsageError(f'{where} must be a table of rule = "error" | "warning"')
    severities = {}
    for name, level in table.items():
        rule = rule_id(name, where)
        try:
            severities[rule] = Severity(level)
        except ValueError as exc:
            raise UsageError(
                f'{where}: {rule.value} = {level!r}: use "error" or "warning"'
            ) from exc
    return severities


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise UsageError(f"{where}: assume-in-transaction must be true or false")
    return value


def rule_id(name: str, where: str) -> Rule:
    """A rule by its id, or bad input naming the nearest id."""
    try:
        return Rule(name)
    except ValueError as exc:
        hint = _did_you_mean(name, [r.value for r in Rule], closest_rule(name))
        raise UsageError(f"{where}: unknown rule {name!r}{hint}") from exc


def _did_you_mean(name: str, choices: Any, closest: str | None = None) -> str:
    guess = closest or next(iter(difflib.get_close_matches(name, list(choices), n=1)), None)
    return f"; did you mean {guess}?" if guess else ""


def _read_toml(path: Path) -> dict[str, Any]:
    text = read_text(path, CONFIG_FILE)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}") from exc


def _tool_table(pyproject: Path) -> Mapping[str, Any]:
    try:
        tool = _read_toml(pyproject).get("tool", {})
    except UsageError:
        return {}  # an unrelated broken pyproject.toml is not ours to judge
    return tool if isinstance(tool, Mapping) else {}
