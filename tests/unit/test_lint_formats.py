"""The lint's formats (JSON, SARIF 2.1.0, GitHub annotations, text) and the command's exit codes.

SARIF is checked against the SARIF 2.1.0 object model that `sarif-om` (PyPI) generated from
the OASIS JSON schema: every property must be one the schema defines for that object, every
required property present, enumerations within their values.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attr
import pytest
import sarif_om

from pgparity.cli import main
from pgparity.lint import CATALOG, LintConfig, Rule, lint_source
from pgparity.lint.findings import LintRun
from pgparity.lint.formats import Format, render

SQL = (
    "-- pgparity: allow drop-table because replaced by purchases\n"
    "DROP TABLE orders;\n"
    "CREATE INDEX i ON orders (a);\n"
    "ALTER TABLE orders ADD COLUMN note json;\n"
)

# Which sarif_om class describes the object under each property we write.
SARIF_CLASSES: dict[str, Any] = {
    "runs": sarif_om.Run,
    "tool": sarif_om.Tool,
    "driver": sarif_om.ToolComponent,
    "rules": sarif_om.ReportingDescriptor,
    "shortDescription": sarif_om.MultiformatMessageString,
    "fullDescription": sarif_om.MultiformatMessageString,
    "help": sarif_om.MultiformatMessageString,
    "defaultConfiguration": sarif_om.ReportingConfiguration,
    "results": sarif_om.Result,
    "message": sarif_om.Message,
    "locations": sarif_om.Location,
    "physicalLocation": sarif_om.PhysicalLocation,
    "artifactLocation": sarif_om.ArtifactLocation,
    "region": sarif_om.Region,
    "suppressions": sarif_om.Suppression,
    "properties": sarif_om.PropertyBag,
}
SARIF_ENUMS = {
    "level": {"none", "note", "warning", "error"},
    "kind": {"inSource", "external"},
    "columnKind": {"utf16CodeUnits", "unicodeCodePoints"},
}


def run_of(sql: str = SQL) -> LintRun:
    return LintRun((lint_source("db/001.sql", sql, LintConfig()),), 0.01)


def check_sarif_object(obj: dict[str, Any], cls: Any, path: str) -> None:
    fields = {f.metadata["schema_property_name"]: f for f in attr.fields(cls)}
    if cls is not sarif_om.PropertyBag:
        unknown = set(obj) - set(fields)
        assert not unknown, f"{path}: not in the SARIF schema: {unknown}"
        required = {name for name, f in fields.items() if f.default is attr.NOTHING}
        assert required <= set(obj), f"{path}: missing required {required - set(obj)}"
    for key, value in obj.items():
        if key in SARIF_ENUMS:
            assert value in SARIF_ENUMS[key], f"{path}.{key} = {value!r}"
        child = SARIF_CLASSES.get(key)
        if child is None or cls is sarif_om.PropertyBag:
            continue
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            check_sarif_object(item, child, f"{path}.{key}[{i}]")


class TestSarif:
    def test_matches_the_sarif_2_1_0_object_model(self) -> None:
        document = json.loads(render(run_of(), Format.SARIF))
        check_sarif_object(document, sarif_om.SarifLog, "$")
        assert document["version"] == "2.1.0"

    def test_results_point_at_rules_and_positions(self) -> None:
        document = json.loads(render(run_of(), Format.SARIF))
        run = document["runs"][0]
        rules = run["tool"]["driver"]["rules"]
        assert [r["id"] for r in rules] == [r.value for r in CATALOG]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
            region = result["locations"][0]["physicalLocation"]["region"]
            assert region["startLine"] >= 1
            assert region["startColumn"] >= 1
        index = next(r for r in run["results"] if r["ruleId"] == "create-index-non-concurrently")
        assert index["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
        assert index["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "db/001.sql"

    def test_acknowledgements_are_suppressions_with_their_reason(self) -> None:
        run = json.loads(render(run_of(), Format.SARIF))["runs"][0]
        dropped = next(r for r in run["results"] if r["ruleId"] == "drop-table")
        assert dropped["suppressions"] == [
            {"kind": "inSource", "justification": "replaced by purchases"}
        ]


def test_json_has_every_finding_with_its_acknowledgement() -> None:
    document = json.loads(render(run_of(), Format.JSON))
    by_rule = {f["rule"]: f for f in document["findings"]}
    assert by_rule["drop-table"]["acknowledged"]["reason"] == "replaced by purchases"
    index = by_rule["create-index-non-concurrently"]
    assert (index["relation"], index["lock"]) == ("public.orders", "ShareLock")
    assert (index["squawk"], index["eugene"]) == (["require-concurrent-index-creation"], ["E6"])
    assert index["docs"] == "docs/rules/create-index-non-concurrently.md"
    assert document["summary"]["acknowledged"] == 1


class TestGithubAnnotations:
    def test_one_command_per_active_finding(self) -> None:
        lines = render(run_of(), Format.GITHUB).splitlines()
        annotations = [line for line in lines if line.startswith("::")]
        assert len(annotations) == len(run_of().active)
        index = next(a for a in annotations if "create-index-non-concurrently" in a)
        assert index.startswith("::error file=db/001.sql,line=3,col=1,endLine=3,endColumn=29,")

    def test_escapes_what_the_runner_would_misread(self) -> None:
        run = LintRun((lint_source("a,b:c%.sql", "DROP TABLE orders;", LintConfig()),))
        line = next(x for x in render(run, Format.GITHUB).splitlines() if "drop-table" in x)
        assert "file=a%2Cb%3Ac%25.sql," in line
        assert "\n" not in line


def test_text_lists_active_findings_and_a_summary() -> None:
    text = render(run_of(), Format.TEXT)
    assert "db/001.sql:3:1: error create-index-non-concurrently:" in text
    assert "drop-table" not in text.split("\n")[0]
    assert text.rstrip().splitlines()[-1].startswith("1 files, 3 statements:")


class TestCommand:
    def test_exit_1_on_an_error_finding(self, tmp_path: Path, capsys: Any) -> None:
        path = tmp_path / "001.sql"
        path.write_text("CREATE INDEX i ON orders (a);\n")
        assert main(["lint", str(path)]) == 1
        assert f"{path}:1:1: error create-index-non-concurrently" in capsys.readouterr().out

    def test_exit_0_with_warnings_only(self, tmp_path: Path) -> None:
        path = tmp_path / "001.sql"
        path.write_text("SET lock_timeout = '2s';\nALTER TABLE orders DROP COLUMN a;\n")
        assert main(["lint", str(path)]) == 0

    def test_exit_0_when_every_error_is_acknowledged(self, tmp_path: Path) -> None:
        path = tmp_path / "001.sql"
        path.write_text(
            "SET lock_timeout = '2s';\n"
            "-- pgparity: allow create-index-non-concurrently because orders has 40 rows\n"
            "CREATE INDEX i ON orders (a);\n"
        )
        assert main(["lint", str(path)]) == 0

    def test_a_syntax_error_is_exit_1_with_its_line(self, tmp_path: Path, capsys: Any) -> None:
        path = tmp_path / "001.sql"
        path.write_text("SELECT 1;\nCREATE TABL t ();\n")
        assert main(["lint", str(path)]) == 1
        assert f"{path}:2:8: error syntax-error" in capsys.readouterr().out

    def test_directories_are_walked_in_order(self, tmp_path: Path, capsys: Any) -> None:
        for name in ("b/002.sql", "a/001.sql", ".hidden/x.sql", "a/notes.txt"):
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_text("SELECT 1;\n")
        assert main(["lint", "--format", "json", str(tmp_path)]) == 0
        files = [f["path"] for f in json.loads(capsys.readouterr().out)["files"]]
        assert files == [str(tmp_path / "a/001.sql"), str(tmp_path / "b/002.sql")]

    @pytest.mark.parametrize(
        ("setup", "message"),
        [
            (lambda p: None, "does not exist"),
            (lambda p: p.mkdir(), "contains no .sql files"),
            (lambda p: p.write_bytes(b"SELECT 1;\x00DROP TABLE x;"), "U+0000 (NUL)"),
            (lambda p: p.write_bytes(b"SELECT '\xff';"), "is not UTF-8"),
        ],
    )
    def test_bad_input_is_exit_2_with_one_line(
        self, tmp_path: Path, capsys: Any, setup: Any, message: str
    ) -> None:
        path = tmp_path / "001.sql"
        setup(path)
        assert main(["lint", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pgparity: error:")
        assert message in err
        assert err.count("\n") == 1

    def test_bad_configuration_is_exit_2(self, tmp_path: Path, capsys: Any) -> None:
        (tmp_path / "pgparity.toml").write_text("[lint]\ndisable = { nope = 'x' }\n")
        (tmp_path / "001.sql").write_text("SELECT 1;\n")
        config = str(tmp_path / "pgparity.toml")
        assert main(["lint", "--config", config, str(tmp_path / "001.sql")]) == 2
        assert "unknown rule 'nope'" in capsys.readouterr().err

    def test_output_file_is_written_whole(self, tmp_path: Path) -> None:
        (tmp_path / "001.sql").write_text("DROP TABLE orders;\n")
        out = tmp_path / "lint.sarif"
        code = main(["lint", "--format", "sarif", "--output", str(out), str(tmp_path / "001.sql")])
        assert code == 1  # missing-lock-timeout is an error
        assert json.loads(out.read_text())["version"] == "2.1.0"

    def test_list_rules(self, capsys: Any) -> None:
        assert main(["lint", "--list-rules", "--format", "json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert {entry["id"] for entry in listed} == {r.value for r in Rule}
