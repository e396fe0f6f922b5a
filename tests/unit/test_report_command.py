"""``pgparity report``: a saved JSON report rendered in every format, with the exit code of its
verdict; anything that is not a report is bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pgparity.cli import main
from pgparity.cli.render import render_json
from pgparity.models.report import (
    Finding,
    MigrationInfo,
    Observations,
    Observed,
    Severity,
    TargetInfo,
    ValidationReport,
    Verdict,
)


def report(verdict: Verdict, *findings: Finding) -> ValidationReport:
    return ValidationReport(
        verdict=verdict,
        migration=MigrationInfo("0042_orders.sql", "a" * 64),
        target=TargetInfo(digest_before="sha256:" + "1" * 64),
        settings={"lock_timeout": "2s"},
        statements=(),
        findings=findings,
        observations=Observations(observed=Observed(max_lock_wait_seconds=0.5)),
    )


REJECTED = report(
    Verdict.REJECTED, Finding("lock-timeout", Severity.ERROR, "statement 1 waited 2 s", 1)
)
DRIFTED = report(
    Verdict.REJECTED,
    Finding("schema-drift", Severity.ERROR, "the schema is not the expected", None),
)


@pytest.mark.parametrize(
    ("saved", "code"), [(report(Verdict.VALIDATED), 0), (REJECTED, 1), (DRIFTED, 3)]
)
def test_the_exit_code_is_the_verdicts(
    saved: ValidationReport, code: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    path.write_text(render_json(saved))
    assert main(["report", "--input", str(path)]) == code
    assert saved.verdict.value in capsys.readouterr().out


def test_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "report.json"
    path.write_text(render_json(REJECTED))
    main(["report", "--input", str(path), "--format", "json"])
    assert json.loads(capsys.readouterr().out) == json.loads(render_json(REJECTED))
    main(["report", "--input", str(path), "--format", "markdown"])
    assert "statement 1 waited 2 s" in capsys.readouterr().out
    out = tmp_path / "junit.xml"
    assert main(["report", "--input", str(path), "--format", "junit", "--output", str(out)]) == 1
    assert ET.parse(out).getroot().iter("failure") is not None
    assert f"report written to {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("[]", "the document is not a JSON object"),
        ('"report"', "the document is not a JSON object"),
        ("{}", "version"),
        ('{"version": 2}', "unsupported report version"),
        ('{"version": 1, "verdict": "MAYBE"', "Expecting"),
        ("", "Expecting value"),
        ("\x00{}", "NUL"),
        ('{"version": 1, "verdict": "VALIDATED", "migration": [], "target": {}}', "migration"),
    ],
)
def test_what_is_not_a_report_is_bad_input(
    content: str, complaint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.json"
    path.write_text(content)
    out = tmp_path / "out.md"
    assert main(["report", "--input", str(path), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("pgparity: error:")
    assert complaint in err[0]
    assert not out.exists()


def test_a_missing_input_or_unwritable_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--input", str(tmp_path / "none.json")]) == 2
    path = tmp_path / "report.json"
    path.write_text(render_json(REJECTED))
    assert main(["report", "--input", str(path), "--output", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_a_password_in_a_saved_report_is_not_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leaky = report(
        Verdict.REJECTED,
        Finding("migration-error", Severity.ERROR, "dblink('host=db password=hunter2')", 1),
    )
    path = tmp_path / "report.json"
    path.write_text(render_json(leaky))
    main(["report", "--input", str(path), "--format", "markdown"])
    assert "hunter2" not in capsys.readouterr().out
