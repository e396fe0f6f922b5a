"""The versioned JSON report and its renderings."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest

from pgparity.cli.render import render, summary_line
from pgparity.errors import SpecError
from pgparity.models.report import (
    Finding,
    LockRecord,
    MigrationInfo,
    ObservationGap,
    Observations,
    Observed,
    Phase,
    Quantity,
    Rule,
    Severity,
    SideEffect,
    SideEffectKind,
    StatementError,
    StatementObservation,
    StatementResult,
    TargetInfo,
    ValidationReport,
    Verdict,
)


def _report() -> ValidationReport:
    return ValidationReport(
        verdict=Verdict.REJECTED,
        migration=MigrationInfo(path="migrations/002.sql", sha256="ab" * 32),
        target=TargetInfo(
            server_version="15.18",
            digest_before="sha256:" + "1" * 64,
            digest_after="sha256:" + "1" * 64,
            is_clone=True,
            replica=True,
        ),
        settings={"lock_timeout": "5s", "statement_timeout": "30s"},
        statements=(
            StatementResult(
                index=1,
                line=1,
                sql="ALTER TABLE users ADD COLUMN a int",
                transactional=True,
                executed=True,
                duration_ms=1.25,
                wal_bytes=448,
                locks=(
                    LockRecord("public.users", "AccessExclusiveLock", held_ms=31001.5, relkind="r"),
                ),
            ),
            StatementResult(
                index=2,
                line=3,
                sql="UPDATE users SET a = 1 | 2",
                transactional=True,
                executed=True,
                duration_ms=30000.25,
                error=StatementError("57014", "canceling statement due to statement timeout"),
            ),
            StatementResult(
                index=3,
                line=5,
                sql="CREATE INDEX CONCURRENTLY i ON users (a)",
                transactional=False,
                executed=False,
                phase=Phase.OUTSIDE_TRANSACTION,
                not_executed_reason="the transactional part failed",
            ),
        ),
        findings=(
            Finding(Rule.STATEMENT_TIMEOUT, Severity.ERROR, "statement 2 (line 3) ran past", 2, 3),
            Finding(Rule.BLOCKING_LOCK, Severity.WARNING, "statement 1 takes …", 1, 1),
        ),
        observations=Observations(statements_executed=2),
    )


def test_json_has_the_documented_fields_and_round_trips() -> None:
    report = _report()
    doc = json.loads(render(report, "json"))
    assert doc["version"] == 1
    assert doc["verdict"] == "REJECTED"
    assert doc["migration"] == {"path": "migrations/002.sql", "sha256": "ab" * 32}
    assert set(doc["target"]) >= {"server_version", "digest_before", "digest_after"}
    assert doc["statements"][0]["locks"][0]["relation"] == "public.users"
    assert doc["statements"][1]["error"] == {
        "sqlstate": "57014",
        "message": "canceling statement due to statement timeout",
    }
    assert doc["findings"][0] == {
        "rule": "statement-timeout",
        "severity": "error",
        "statement": 2,
        "line": 3,
        "message": "statement 2 (line 3) ran past",
    }
    assert ValidationReport.parse(doc) == report


def test_parse_names_the_bad_field() -> None:
    doc = json.loads(render(_report(), "json"))
    doc["statements"][1]["line"] = "three"
    with pytest.raises(SpecError, match=r"statements\[1\]\.line: must be an integer"):
        ValidationReport.parse(doc)
    doc = json.loads(render(_report(), "json"))
    doc["verdict"] = "MAYBE"
    with pytest.raises(SpecError, match="verdict: must be one of VALIDATED, REJECTED"):
        ValidationReport.parse(doc)


def test_text_markdown_and_junit() -> None:
    report = _report()
    text = render(report, "text")
    assert "lock AccessExclusiveLock on public.users (held 31002 ms)" in text
    assert "not executed: the transactional part failed" in text
    assert text.rstrip().endswith(summary_line(report))
    markdown = render(report, "markdown")
    assert markdown.startswith("### ❌ pgparity: REJECTED")
    assert "UPDATE users SET a = 1 \\| 2" in markdown  # pipes escaped inside tables
    suite = ET.fromstring(render(report, "junit").split("\n", 1)[1])
    cases = suite.findall("testcase")
    assert len(cases) == 4
    assert cases[2].find("failure") is not None
    assert cases[3].find("skipped") is not None
    assert suite.get("failures") == "1"


def test_summary_line() -> None:
    assert summary_line(_report()).startswith(
        "REJECTED migrations/002.sql: 1 error, 1 warning (2 statements executed, 30.00 s)"
    )


def test_side_effects_and_unknown_observations_round_trip() -> None:
    report = replace(
        _report(),
        statements=(
            replace(
                _report().statements[0],
                observed=StatementObservation(
                    max_blocked_sessions=2,
                    max_lock_wait_seconds=None,
                    own_lock_wait_seconds=None,
                    max_replication_lag_bytes=None,
                    max_replication_lag_seconds=None,
                ),
            ),
        ),
        side_effects=(
            SideEffect(SideEffectKind.SEQUENCE, "public.s", "10", "12", restored=True),
            SideEffect(
                SideEffectKind.REPLICATION_SLOT, "slot", None, "created", note="not put back"
            ),
        ),
        observations=Observations(
            observed=Observed(
                samples=3,
                sample_period_ms=50.0,
                max_blocked_sessions=2,
                max_lock_wait_seconds=None,
                max_replication_lag_bytes=None,
                max_replication_lag_seconds=None,
                observation_gaps=(ObservationGap(Quantity.LOCK_WAIT, "no waitstart"),),
            )
        ),
    )
    doc = json.loads(render(report, "json"))
    assert doc["side_effects"][0] == {
        "kind": "sequence",
        "object": "public.s",
        "before": "10",
        "after": "12",
        "restored": True,
        "note": None,
    }
    assert doc["statements"][0]["observed"]["max_lock_wait_seconds"] is None
    assert ValidationReport.parse(doc) == report
    # A report written before side_effects existed still reads.
    del doc["side_effects"]
    assert ValidationReport.parse(doc).side_effects == ()
    text = render(report, "text")
    assert "longest wait unknown" in text
    assert "not observed: lock wait — no waitstart" in text
    assert "not observed: lock wait" in render(report, "markdown")


def test_the_parity_state_a_run_was_under_round_trips() -> None:
    report = replace(_report(), parity="Broken")
    doc = json.loads(render(report, "json"))
    assert doc["parity"] == "Broken"
    assert ValidationReport.parse(doc) == report
    assert json.loads(render(_report(), "json"))["parity"] is None  # the CLI alone: not given
