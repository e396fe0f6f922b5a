"""The parity floor: server, configuration, extensions, topology and schema, compared.

A pure comparison of two ``Facts`` (production's and the clone's). Each check is pass or fail
with both values; ``info`` checks (scaled settings, replica settings) are reported, never
enforced. The floor breaks when any check fails; the first broken dimension, in the order of
``Dimension``, names the break (the operator's ``ParityVerified`` reason).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pgparity.parity.facts import Facts, Level, Setting
from pgparity.parity.settings import SettingClass, SettingsList, normalize

MAX_SHOWN = 200  # characters of a value read from a server, in any output


class Dimension(StrEnum):
    SERVER = "server"
    CONFIGURATION = "configuration"
    EXTENSIONS = "extensions"
    TOPOLOGY = "topology"
    SCHEMA = "schema"


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a check result, not a password
    FAIL = "fail"
    INFO = "info"  # reported, not enforced


@dataclass(frozen=True)
class FloorCheck:
    dimension: Dimension
    name: str
    production: str | None
    staging: str | None
    status: Status
    production_source: str = ""
    staging_source: str = ""
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension.value,
            "name": self.name,
            "production": self.production,
            "staging": self.staging,
            "status": self.status.value,
            "production_source": self.production_source,
            "staging_source": self.staging_source,
            "note": self.note,
        }


@dataclass(frozen=True)
class FloorReport:
    checks: tuple[FloorCheck, ...]
    role: str | None = None

    @property
    def broken(self) -> tuple[FloorCheck, ...]:
        return tuple(c for c in self.checks if c.status is Status.FAIL)

    @property
    def ok(self) -> bool:
        return not self.broken

    def dimension_ok(self, dimension: Dimension) -> bool:
        return not any(c.dimension is dimension for c in self.broken)

    @property
    def first_broken(self) -> Dimension | None:
        return next((d for d in Dimension if not self.dimension_ok(d)), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "broken": len(self.broken),
            "first_broken": self.first_broken.value if self.first_broken else None,
            "role": self.role,
            "dimensions": {d.value: self.dimension_ok(d) for d in Dimension},
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True)
class MigrationExtension:
    """A ``CREATE EXTENSION`` in the migration: the clone must offer production's version."""

    name: str
    version: str | None = None


def compare_floor(
    production: Facts,
    staging: Facts,
    settings: SettingsList,
    creates: Sequence[MigrationExtension] = (),
) -> FloorReport:
    checks = [
        *server_checks(production, staging),
        *configuration_checks(production, staging, settings),
        *extension_checks(production, staging, creates),
        *topology_checks(production, staging),
        _check(
            Dimension.SCHEMA,
            "schema digest",
            production.schema_digest,
            staging.schema_digest,
        ),
    ]
    return FloorReport(tuple(checks), production.role)


def shown(value: str | None) -> str | None:
    """A server's value as it may be printed: one line, cut short."""
    if value is None:
        return None
    text = "".join(c if c.isprintable() else "?" for c in value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def _check(
    dimension: Dimension,
    name: str,
    production: str | None,
    staging: str | None,
    *,
    equal: bool | None = None,
    note: str = "",
) -> FloorCheck:
    same = production == staging if equal is None else equal
    status = Status.PASS if same else Status.FAIL
    return FloorCheck(
        dimension, shown(name) or "", shown(production), shown(staging), status, note=note
    )


# --- server -----------------------------------------------------------------------------------


def server_checks(production: Facts, staging: Facts) -> list[FloorCheck]:
    mine, theirs = production.database, staging.database
    checks = [_version_check(production, staging)]
    checks += [
        _check(Dimension.SERVER, "encoding", mine.encoding, theirs.encoding),
        _check(Dimension.SERVER, "lc_collate", mine.lc_collate, theirs.lc_collate),
        _check(Dimension.SERVER, "lc_ctype", mine.lc_ctype, theirs.lc_ctype),
        _check(Dimension.SERVER, "locale provider", mine.locale_provider, theirs.locale_provider),
        _check(Dimension.SERVER, "icu locale", mine.icu_locale, theirs.icu_locale),
        _check(
            Dimension.SERVER,
            "database collation version",
            mine.collation_version,
            theirs.collation_version,
            note=f"recorded: {shown(mine.recorded_collation_version)} / "
            f"{shown(theirs.recorded_collation_version)}",
        ),
    ]
    checks += [
        _collation_check(name, production, staging) for name in sorted(production.collations)
    ]
    for name in ("block_size", "wal_block_size", "data_checksums"):
        checks.append(_check(Dimension.SERVER, name, production.value(name), staging.value(name)))
    return checks


def _version_check(production: Facts, staging: Facts) -> FloorCheck:
    mine = production.value("server_version_num") or ""
    theirs = staging.value("server_version_num") or ""
    return _check(
        Dimension.SERVER,
        "major version",
        _major(mine),
        _major(theirs),
        note=f"minor: {shown(production.value('server_version'))} / "
        f"{shown(staging.value('server_version'))}",
    )


def _major(version_num: str) -> str:
    return str(int(version_num) // 10000) if version_num.isdigit() else version_num


def _collation_check(name: str, production: Facts, staging: Facts) -> FloorCheck:
    provider, version = production.collations[name]
    other = staging.collations.get(name)
    if other is None:
        # Not used on the clone's schema (a schema difference shows in the digest); the
        # collation itself must still sort the same there.
        return _check(
            Dimension.SERVER,
            f"collation {name}",
            f"{provider} {version}",
            None,
            note="not used by the clone's schema",
        )
    return _check(
        Dimension.SERVER,
        f"collation {name}",
        f"{provider} {version}",
        f"{other[0]} {other[1]}",
        note="a library version difference changes index order",
    )


# --- configuration ----------------------------------------------------------------------------


def configuration_checks(
    production: Facts, staging: Facts, settings: SettingsList
) -> list[FloorCheck]:
    checks = []
    if staging.role is not None and not staging.role_exists:
        checks.append(_check(Dimension.CONFIGURATION, f"role {staging.role}", "exists", "missing"))
    for name in sorted(set(production.settings) | set(staging.settings) | settings.exact_names()):
        kind = settings.classify(name)
        if kind is None or kind is SettingClass.IGNORED:
            continue
        check = _setting_check(
            name, production.settings.get(name), staging.settings.get(name), kind
        )
        checks.append(check)
    return checks


def _setting_check(
    name: str, mine: Setting | None, theirs: Setting | None, kind: SettingClass
) -> FloorCheck:
    if mine is None or theirs is None:
        present = mine or theirs
        note = "not a setting on either server" if present is None else "absent on one side"
        return FloorCheck(
            Dimension.CONFIGURATION,
            present.name if present else name,
            _effective_shown(mine),
            _effective_shown(theirs),
            Status.FAIL,
            note=note,
        )
    (p_value, p_level, p_source), (s_value, s_level, s_source) = (
        mine.effective(),
        theirs.effective(),
    )
    equal = (
        p_value is not None
        and s_value is not None
        and normalize(name, p_value, mine.kind) == normalize(name, s_value, theirs.kind)
    )
    status = Status.INFO if kind is SettingClass.SCALED else Status.PASS if equal else Status.FAIL
    return FloorCheck(
        Dimension.CONFIGURATION,
        mine.name,
        shown(_display(p_value, mine, p_level)),
        shown(_display(s_value, theirs, s_level)),
        status,
        production_source=p_source,
        staging_source=s_source,
        note=_setting_note(kind, p_value, s_value),
    )


def _display(value: str | None, setting: Setting, level: Level) -> str | None:
    # pg_settings gives a bare number in the setting's unit; levels keep the text as set.
    if value is None or level is not Level.SERVER or not setting.kind.unit:
        return value
    return f"{value} ({setting.kind.unit})"


def _effective_shown(setting: Setting | None) -> str | None:
    return shown(setting.effective()[0]) if setting else None


def _setting_note(kind: SettingClass, production: str | None, staging: str | None) -> str:
    if kind is SettingClass.SCALED:
        return "scaled to the machine: reported, not enforced"
    if production is None or staging is None:
        return "hidden by a setting of the role pgparity reads as; read as a role without one"
    return ""


# --- extensions -------------------------------------------------------------------------------


def extension_checks(
    production: Facts, staging: Facts, creates: Sequence[MigrationExtension]
) -> list[FloorCheck]:
    names = sorted(set(production.extensions) | set(staging.extensions))
    checks = [
        _check(
            Dimension.EXTENSIONS,
            f"extension {name}",
            production.extensions.get(name),
            staging.extensions.get(name),
            note=_extension_note(production.extensions.get(name), staging.extensions.get(name)),
        )
        for name in names
    ]
    return checks + [_creatable_check(create, production, staging) for create in creates]


def _extension_note(production: str | None, staging: str | None) -> str:
    if staging is None:
        return "missing on the clone"
    if production is None:
        return "extra on the clone"
    return "" if production == staging else "another version"


def _creatable_check(create: MigrationExtension, production: Facts, staging: Facts) -> FloorCheck:
    """The version the migration would install on production must be installable on the
    clone, and be the one the clone would pick."""
    wanted = create.version or production.default_versions.get(create.name)
    chosen = create.version or staging.default_versions.get(create.name)
    offered = staging.available.get(create.name, frozenset())
    ok = wanted is not None and wanted == chosen and wanted in offered
    note = "created by the migration"
    if wanted is not None and wanted not in offered:
        note += f"; version {shown(wanted)} is not available on the clone"
    return _check(
        Dimension.EXTENSIONS,
        f"creates extension {create.name}",
        wanted,
        chosen if chosen in offered else None,
        equal=ok,
        note=note,
    )


# --- topology ---------------------------------------------------------------------------------


def topology_checks(production: Facts, staging: Facts) -> list[FloorCheck]:
    mine, theirs = production.topology, staging.topology
    replicas = _check(
        Dimension.TOPOLOGY,
        "streaming replicas",
        str(mine.streaming),
        str(theirs.streaming),
        equal=theirs.streaming >= 1,
        note="the clone needs at least one, so that replication lag shows",
    )
    if theirs.hidden:
        replicas = _with_note(replicas, f"{theirs.hidden} not visible to the clone's role")
    checks = [
        replicas,
        _check(
            Dimension.TOPOLOGY,
            "replication",
            _mode(mine.mode, mine.hidden),
            _mode(theirs.mode, theirs.hidden),
            equal=(mine.mode == "synchronous") == (theirs.mode == "synchronous")
            and not mine.hidden,
            note="synchronous standbys make every commit wait for a replica",
        ),
    ]
    return checks + list(_replica_reports(production, staging))


def _mode(mode: str, hidden: int) -> str:
    return f"{mode} ({hidden} not visible: grant pg_read_all_stats)" if hidden else mode


def _with_note(check: FloorCheck, note: str) -> FloorCheck:
    return FloorCheck(
        check.dimension,
        check.name,
        check.production,
        check.staging,
        check.status,
        check.production_source,
        check.staging_source,
        f"{check.note}; {note}",
    )


def _replica_reports(production: Facts, staging: Facts) -> Iterable[FloorCheck]:
    """What the replicas' own settings change in what a dry-run sees: reported, not enforced.
    hot_standby_feedback is seen from the primary (a replica that sends it holds back xmin);
    max_standby_streaming_delay from the configuration the primary shares with its replicas."""
    yield FloorCheck(
        Dimension.TOPOLOGY,
        "replicas sending hot_standby_feedback",
        str(production.topology.with_feedback),
        str(staging.topology.with_feedback),
        Status.INFO,
        note="feedback keeps rows a replica's queries need from being vacuumed",
    )
    yield FloorCheck(
        Dimension.TOPOLOGY,
        "max_standby_streaming_delay",
        shown(production.value("max_standby_streaming_delay")),
        shown(staging.value("max_standby_streaming_delay")),
        Status.INFO,
        note="as configured on the primary; a replica may override it",
    )


def render_floor(report: FloorReport, *, all_checks: bool = False) -> str:
    shown_checks = report.checks if all_checks else report.broken
    lines = [f"{'':2}{'dimension':<14}{'check':<40}{'production':>22}  {'staging':<22}"]
    for check in shown_checks:
        mark = {Status.PASS: "✓", Status.FAIL: "✗", Status.INFO: "·"}[check.status]
        lines.append(
            f"{mark} {check.dimension.value:<14}{check.name[:39]:<40}"
            f"{_cell(check.production, check.production_source):>22}  "
            f"{_cell(check.staging, check.staging_source):<22}"
            + (f"  ({check.note})" if check.note and check.status is not Status.PASS else "")
        )
    lines.append(_summary(report))
    return "\n".join(lines) + "\n"


def _cell(value: str | None, source: str) -> str:
    text = "-" if value is None else value
    return f"{text} [{source}]" if source else text


def _summary(report: FloorReport) -> str:
    role = (
        f" for role {shown(report.role)}"
        if report.role
        else " (no --role: server and database levels)"
    )
    if report.ok:
        return f"parity floor: ok — {len(report.checks)} checks{role}"
    return (
        f"parity floor: BROKEN ({report.first_broken}) — {len(report.broken)} of "
        f"{len(report.checks)} checks fail{role}"
    )
