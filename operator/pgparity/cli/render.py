"""Render a validation report: text for a terminal, JSON, Markdown for a PR comment, JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from pgparity.cli.render_margins import margin_lines, markdown_margins
from pgparity.models.quantities import format_bytes, format_ms
from pgparity.models.report import (
    Finding,
    LatencyStats,
    Observations,
    Severity,
    StatementObservation,
    StatementResult,
    StaticFinding,
    TrafficReport,
    ValidationReport,
    Verdict,
    confirmed_first,
    lint_summary,
)

FORMATS = ("text", "json", "markdown", "junit")


def render(report: ValidationReport, fmt: str) -> str:
    renderers: dict[str, Callable[[ValidationReport], str]] = {
        "text": render_text,
        "json": render_json,
        "markdown": render_markdown,
        "junit": render_junit,
    }
    return renderers[fmt](report)


def render_json(report: ValidationReport) -> str:
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


def summary_line(report: ValidationReport) -> str:
    """``REJECTED migrations/002.sql: 1 error, 2 warnings (3 statements, 5.1 s)``."""
    errors, warnings = len(report.errors), len(report.warnings)
    executed = [s for s in report.statements if s.executed]
    seconds = sum(s.duration_ms or 0.0 for s in executed) / 1000
    first = f" — {report.errors[0].message}" if report.errors else ""
    return (
        f"{report.verdict.value} {report.migration.path}: {_count(errors, 'error')}, "
        f"{_count(warnings, 'warning')} ({_count(len(executed), 'statement')} executed, "
        f"{seconds:.2f} s){first}"
    )


def render_text(report: ValidationReport) -> str:
    target = report.target
    lines = [
        f"migration  {report.migration.path}  sha256:{report.migration.sha256[:16]}…",
        f"target     PostgreSQL {target.server_version or '?'}"
        f"{' · pgparity clone' if target.is_clone else ''}"
        f"{' · with streaming replica' if target.replica else ''}",
        "settings   " + "  ".join(f"{k}={v}" for k, v in report.settings.items()),
        f"digest     {_digest_line(report)}",
        "",
    ]
    if report.statements:
        lines.append(f"{'#':>3} {'line':>5} {'where':<7} {'ms':>10} {'WAL':>10}  statement")
        for s in report.statements:
            lines.append(_text_statement(s))
            lines.extend(f"{'':>28}{detail}" for detail in _statement_details(s))
        lines.append("")
    lines += _text_observation(report.observations)
    if report.findings:
        lines.append("findings")
        lines.extend(
            f"  {f.severity.value:<8} {f.rule:<24} {f.message}"
            for f in confirmed_first(report.findings)
        )
        lines.append("")
    if report.lint:
        lines.append(f"lint       {lint_summary(report)}, judged by the trace")
        lines.extend(
            f"  {s.judgement.value:<12} {s.rule:<32} {_where(s)}: {s.reason}" for s in report.lint
        )
        lines.append("")
    lines.append(f"verdict    {summary_line(report)}")
    return "\n".join(lines) + "\n"


def _where(static: StaticFinding) -> str:
    return f"statement {static.statement}" if static.statement else f"line {static.line}"


def _text_observation(observations: Observations) -> list[str]:
    seen = observations.observed
    if seen is None:
        return []
    lines = [
        f"observed   every {seen.sample_period_ms:g} ms ({seen.samples} samples): up to "
        f"{_known(seen.max_blocked_sessions, str)} sessions blocked, longest wait "
        f"{_known(seen.max_lock_wait_seconds, _seconds)}; replica up to "
        f"{_known(seen.max_replication_lag_bytes, format_bytes)} / "
        f"{_known(seen.max_replication_lag_seconds, _seconds)} behind"
        + (
            f", caught up {seen.replica_catchup_seconds:.2f} s after"
            if seen.replica_catchup_seconds is not None
            else ""
        )
    ]
    lines += [
        f"           not observed: {gap.quantity.label} — {gap.reason}"
        for gap in seen.observation_gaps
    ]
    traffic = seen.traffic
    if traffic:
        lines.append(
            f"traffic    {traffic.clients} clients × {traffic.rate_per_client:g}/s: "
            f"{traffic.transactions} transactions, errors {_errors(traffic)}"
        )
        lines.append(
            f"latency    before p50/p95/p99 {_percentiles(traffic.latency_before)}   "
            f"during {_percentiles(traffic.latency_during)}"
        )
    for plan in seen.plans:
        state = "changed" if plan.changed else "unchanged"
        lines.append(
            f"plan       {plan.name}: {state}"
            + (f" — {'; '.join(plan.changes)}" if plan.changes else "")
        )
    return [*lines, ""]


def _errors(traffic: TrafficReport) -> str:
    """The traffic's errors by SQLSTATE, as the report writes them (``{'55P03': 2}``)."""
    return str(dict(traffic.errors)) if traffic.errors else "none"


def _known(value: Any, show: Callable[[Any], str]) -> str:
    """A measured value, or "unknown" where the observer could not observe it."""
    return "unknown" if value is None else show(value)


def _seconds(value: float) -> str:
    return f"{value:.2f} s"


def _plain(value: float) -> str:
    return f"{value:.2f}"


def _percentiles(stats: LatencyStats) -> str:
    if not stats.count:
        return "(none)"
    return f"{_ms(stats.p50_ms)}/{_ms(stats.p95_ms)}/{_ms(stats.p99_ms)} ms"


def _ms(value: float | None) -> str:
    return f"{value or 0.0:.1f}"


def _text_statement(s: StatementResult) -> str:
    where = "tx" if s.transactional else "outside"
    ms = f"{s.duration_ms:.1f}" if s.duration_ms is not None else "-"
    wal = format_bytes(s.wal_bytes) if s.wal_bytes is not None else "-"
    return f"{s.index:>3} {s.line:>5} {where:<7} {ms:>10} {wal:>10}  {_one_line(s.sql, 70)}"


def _statement_details(s: StatementResult) -> list[str]:
    details = [
        f"lock {lock.mode} on {lock.relation}"
        + (f" (held {format_ms(lock.held_ms)})" if lock.held_ms is not None else "")
        for lock in s.locks
    ]
    if s.rewrites:
        details.append("rewrote " + ", ".join(s.rewrites))
    if s.error:
        details.append(f"ERROR {s.error.sqlstate or ''} {s.error.message}")
    if not s.executed and s.not_executed_reason:
        details.append(f"not executed: {s.not_executed_reason}")
    seen = s.observed
    if seen and (
        seen.max_blocked_sessions or seen.own_lock_wait_seconds or seen.max_replication_lag_bytes
    ):
        details.append(
            f"observed: {_known(seen.max_blocked_sessions, str)} sessions blocked (longest "
            f"{_known(seen.max_lock_wait_seconds, _seconds)}), waited "
            f"{_known(seen.own_lock_wait_seconds, _seconds)} itself, replica "
            f"{_known(seen.max_replication_lag_bytes, format_bytes)} behind"
        )
        details.extend(
            f"  {edge.waiter} waited {edge.max_wait_seconds:.2f} s for {edge.mode} on "
            f"{edge.relation} ({edge.blocker}; {edge.sessions} session"
            f"{'' if edge.sessions == 1 else 's'})"
            for edge in seen.blocking[:3]
        )
    details.extend(f"compensated: {step}" for step in s.compensation)
    details.extend(margin_lines(s))
    return details


def _digest_line(report: ValidationReport) -> str:
    target = report.target
    if not target.digest_before:
        return "(not read)"
    if target.digest_after is None:
        return f"{target.digest_before} (nothing executed)"
    same = target.digest_after == target.digest_before
    line = f"{target.digest_before} → {'unchanged after rollback' if same else target.digest_after}"
    if target.digest_after_compensation is not None:
        back = target.digest_after_compensation == target.digest_before
        line += "; " + (
            "restored after compensation"
            if back
            else f"after compensation {target.digest_after_compensation}"
        )
    return line


def render_markdown(report: ValidationReport) -> str:
    icon = "✅" if report.verdict is Verdict.VALIDATED else "❌"
    lines = [
        f"### {icon} pgparity: {report.verdict.value} — `{report.migration.path}`",
        "",
        f"{summary_line(report)}",
        "",
        f"PostgreSQL {report.target.server_version or '?'} · "
        + " · ".join(f"`{k}={v}`" for k, v in report.settings.items())
        + f" · digest `{report.target.digest_before or 'not read'}`",
        "",
    ]
    if report.findings:
        lines += ["| severity | rule | statement | finding |", "|---|---|---|---|"]
        lines += [
            f"| {f.severity.value} | `{f.rule}` | {f.statement or ''} | {_md(f.message)} |"
            for f in confirmed_first(report.findings)
        ]
        lines.append("")
    lines += _md_lint(report)
    if report.statements:
        lines += [
            "| # | line | statement | ms | WAL | locks | rewrites |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [_md_statement(s) for s in report.statements]
        lines.append("")
    lines += markdown_margins(report.statements)
    lines += _md_observation(report)
    return "\n".join(lines)


def _md_lint(report: ValidationReport) -> list[str]:
    """The static findings, confirmed first, each with what the trace saw."""
    if not report.lint:
        return []
    lines = [
        f"**Lint, judged by the trace** ({lint_summary(report)}):",
        "",
        "| judgement | rule | statement | what the trace saw |",
        "|---|---|---|---|",
    ]
    for s in report.lint:
        ack = f" _(acknowledged: {_md(s.acknowledged)})_" if s.acknowledged else ""
        lines.append(
            f"| {s.judgement.value} | [`{s.rule}`](docs/rules/{s.rule}.md) | "
            f"{s.statement or ''} | {_md(s.reason)}{ack} |"
        )
    return [*lines, ""]


def _md_observation(report: ValidationReport) -> list[str]:
    seen = report.observations.observed
    if seen is None:
        return []
    lines = [
        f"**Under observation** (every {seen.sample_period_ms:g} ms):",
        "",
        "| # | blocked sessions | longest wait (s) | own wait (s) | replica lag |",
        "|---|---|---|---|---|",
    ]
    lines += [_md_statement_observed(s.index, s.observed) for s in report.statements if s.observed]
    lines += [
        f"- not observed: {gap.quantity.label} — {_md(gap.reason)}" for gap in seen.observation_gaps
    ]
    traffic = seen.traffic
    if traffic:
        lines += [
            "",
            f"Traffic: {traffic.clients} clients × {traffic.rate_per_client:g}/s, "
            f"{traffic.transactions} transactions, errors {_errors(traffic)}; "
            f"latency p50/p95/p99 before {_percentiles(traffic.latency_before)}, during "
            f"{_percentiles(traffic.latency_during)}.",
        ]
    lines += [
        f"- plan `{plan.name}`: " + ("; ".join(plan.changes) if plan.changed else "unchanged")
        for plan in seen.plans
    ]
    return [*lines, ""]


def _md_statement_observed(index: int, seen: StatementObservation) -> str:
    return (
        f"| {index} | {_known(seen.max_blocked_sessions, str)} | "
        f"{_known(seen.max_lock_wait_seconds, _plain)} | "
        f"{_known(seen.own_lock_wait_seconds, _plain)} | "
        f"{_known(seen.max_replication_lag_bytes, format_bytes)} / "
        f"{_known(seen.max_replication_lag_seconds, _seconds)} |"
    )


def _md_statement(s: StatementResult) -> str:
    ms = f"{s.duration_ms:.1f}" if s.duration_ms is not None else "not run"
    wal = format_bytes(s.wal_bytes) if s.wal_bytes is not None else ""
    locks = "<br>".join(f"{lock.mode} `{lock.relation}`" for lock in s.locks)
    sql_text = f"`{_md(_one_line(s.sql, 80))}`"
    return (
        f"| {s.index} | {s.line} | {sql_text} | {ms} | {wal} | {locks} | {', '.join(s.rewrites)} |"
    )


def render_junit(report: ValidationReport) -> str:
    """One test case per statement; migration-level findings go to a case of their own."""
    by_statement: dict[int | None, list[Finding]] = {}
    for finding in report.findings:
        by_statement.setdefault(finding.statement, []).append(finding)
    suite = ET.Element(
        "testsuite",
        name=f"pgparity {report.migration.path}",
        tests=str(len(report.statements) + 1),
        failures=str(sum(1 for f in report.findings if f.severity is Severity.ERROR)),
    )
    _junit_case(suite, "migration", None, by_statement.get(None, []))
    for s in report.statements:
        _junit_case(
            suite,
            f"statement {s.index} (line {s.line}): {_one_line(s.sql, 60)}",
            s,
            by_statement.get(s.index, []),
        )
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def _junit_case(
    suite: ET.Element, name: str, s: StatementResult | None, found: list[Finding]
) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname="pgparity",
        name=name,
        time=f"{(s.duration_ms or 0.0) / 1000 if s else 0.0:.3f}",
    )
    for finding in found:
        tag = "failure" if finding.severity.value == "error" else "system-out"
        element = ET.SubElement(case, tag, message=finding.message, type=finding.rule)
        element.text = f"{finding.severity.value}: {finding.message}"
    if s is not None and not s.executed and not any(f.severity is Severity.ERROR for f in found):
        ET.SubElement(case, "skipped", message=s.not_executed_reason or "not executed")


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
