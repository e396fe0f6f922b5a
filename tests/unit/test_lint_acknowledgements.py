"""Acknowledgements in the SQL and in configuration: where they attach, what they require,
and that nothing but a real comment in the right place acknowledges anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgparity.errors import UsageError
from pgparity.lint import LintConfig, Rule, find_config, lint_source, load_config
from pgparity.lint.config import parse_config
from pgparity.lint.findings import AckScope, LintFinding
from pgparity.models.report import Severity

DROP = "DROP TABLE orders"
ALLOW = "pgparity: allow drop-table because replaced by purchases"


def drop_findings(sql: str, config: LintConfig | None = None) -> list[LintFinding]:
    report = lint_source("m.sql", sql, config or LintConfig())
    return [f for f in report.findings if f.rule is Rule.DROP_TABLE]


def rules(sql: str, config: LintConfig | None = None) -> list[Rule]:
    return [f.rule for f in lint_source("m.sql", sql, config or LintConfig()).findings if f.active]


class TestWhereAStatementAcknowledgementAttaches:
    @pytest.mark.parametrize(
        "sql",
        [
            f"-- {ALLOW}\n{DROP};",
            f"-- {ALLOW}\n\n-- another comment\n\n{DROP};",
            f"/* {ALLOW} */ {DROP};",
            f"{DROP}; -- {ALLOW}",
            f"DROP TABLE -- {ALLOW}\n  orders;",
            f"SELECT 1;\n-- {ALLOW}\n{DROP};",
            f"-- {ALLOW.upper().replace('DROP-TABLE', 'drop-table')}\n{DROP};",
        ],
    )
    def test_acknowledges_its_statement(self, sql: str) -> None:
        [finding] = drop_findings(sql)
        assert finding.acknowledged is not None
        assert finding.acknowledged.scope is AckScope.STATEMENT
        assert "purchases" in finding.acknowledged.reason.lower()
        assert Rule.UNUSED_ACKNOWLEDGEMENT not in rules(sql)

    @pytest.mark.parametrize(
        "sql",
        [
            f"-- {ALLOW}\nSELECT 1;\n{DROP};",  # belongs to the SELECT
            f"SELECT 1; -- {ALLOW}\n{DROP};",  # trailing the SELECT
            f"SELECT '-- {ALLOW}';\n{DROP};",  # inside a string
            f"SELECT $$ -- {ALLOW} $$;\n{DROP};",  # inside a dollar-quoted string
            f'SELECT 1 AS "-- {ALLOW}";\n{DROP};',  # inside a quoted identifier
            f"{DROP};\n-- {ALLOW}",  # after the last statement
            f"-- {ALLOW.replace('pgparity', 'pgparty')}\n{DROP};",
        ],
    )
    def test_does_not_acknowledge_another_statement(self, sql: str) -> None:
        [finding] = drop_findings(sql)
        assert finding.active


class TestInvalidAcknowledgements:
    @pytest.mark.parametrize(
        ("comment", "problem"),
        [
            ("pgparity: allow drop-table", "a reason is required"),
            ("pgparity: allow drop-table because", "a reason is required"),
            ("pgparity: allow drop-table because    ", "a reason is required"),
            ("pgparity: allow because it is old", "no rule named"),
            ("pgparity: allow drop-tabel because old", "did you mean drop-table"),
            ("pgparity: allow ban-drop-table because old", "squawk's name for drop-table"),
            ("pgparity: allow E6 because old", "eugene's name for create-index-non-concurrently"),
            ("pgparity: ignore drop-table because old", "unknown directive 'ignore'"),
            ("pgparity: allow syntax-error because old", "cannot be acknowledged"),
            ("pgparity: allow drop-table, nope because old", "unknown rule 'nope'"),
        ],
    )
    def test_is_reported_and_acknowledges_nothing(self, comment: str, problem: str) -> None:
        report = lint_source("m.sql", f"-- {comment}\n{DROP};", LintConfig())
        [invalid] = [f for f in report.findings if f.rule is Rule.INVALID_ACKNOWLEDGEMENT]
        assert problem in invalid.message
        assert invalid.severity is Severity.ERROR
        assert all(f.active for f in report.findings if f.rule is Rule.DROP_TABLE)


class TestFileLevelAcknowledgements:
    def test_acknowledges_the_rule_everywhere_in_the_file(self) -> None:
        sql = (
            "-- pgparity: allow-file prefer-bigint because ids are bounded\n"
            "CREATE TABLE a (id int);\nCREATE TABLE b (id int, n smallint);"
        )
        found = lint_source("m.sql", sql, LintConfig()).findings
        bigint = [f for f in found if f.rule is Rule.PREFER_BIGINT]
        assert len(bigint) == 3
        assert all(f.acknowledged and f.acknowledged.scope is AckScope.FILE for f in bigint)

    def test_unused_file_acknowledgement_is_reported(self) -> None:
        sql = "-- pgparity: allow-file prefer-bigint because ids are bounded\nSELECT 1;"
        assert rules(sql) == [Rule.UNUSED_ACKNOWLEDGEMENT]

    def test_acknowledges_nothing_in_other_files(self) -> None:
        sql = "-- pgparity: allow-file drop-table because gone\nSELECT 1;"
        assert lint_source("a.sql", sql, LintConfig()).findings
        assert all(f.active for f in drop_findings(f"{DROP};"))


def test_an_acknowledgement_for_one_rule_leaves_the_others() -> None:
    sql = f"-- {ALLOW}\nDROP TABLE orders CASCADE;\n"
    assert Rule.DROP_TABLE not in rules(sql)
    assert Rule.MISSING_LOCK_TIMEOUT in rules(sql)


class TestConfiguration:
    def test_disable_needs_a_reason_and_acknowledges_with_it(self) -> None:
        config = parse_config({"disable": {"drop-table": "we drop in maintenance windows"}}, "t")
        [finding] = drop_findings(f"{DROP};", config)
        assert finding.acknowledged is not None
        assert finding.acknowledged.scope is AckScope.CONFIG
        assert finding.acknowledged.reason == "we drop in maintenance windows"

    @pytest.mark.parametrize(
        ("table", "problem"),
        [
            ({"disable": {"drop-table": ""}}, "needs a reason"),
            ({"disable": ["drop-table"]}, "must be a table"),
            ({"disable": {"drop-tabel": "x"}}, "did you mean drop-table"),
            ({"enable": ["nope"]}, "unknown rule 'nope'"),
            ({"severity": {"drop-table": "fatal"}}, 'use "error" or "warning"'),
            ({"severty": {}}, "did you mean severity"),
            ({"assume-in-transaction": "yes"}, "true or false"),
            ({"disable": {"syntax-error": "x"}}, "cannot be disabled"),
        ],
    )
    def test_bad_configuration_is_bad_input(self, table: dict[str, object], problem: str) -> None:
        with pytest.raises(UsageError, match=problem):
            parse_config(table, "pgparity.toml [lint]")

    def test_severity_and_enable(self) -> None:
        config = parse_config(
            {"severity": {"drop-table": "error"}, "enable": ["not-re-runnable"]}, "t"
        )
        [finding] = drop_findings(f"{DROP};", config)
        assert finding.severity is Severity.ERROR
        assert Rule.NOT_RE_RUNNABLE in rules(f"{DROP};", config)
        assert Rule.NOT_RE_RUNNABLE not in rules(f"{DROP};")

    def test_found_in_pyproject_or_pgparity_toml_upwards(self, tmp_path: Path) -> None:
        nested = tmp_path / "db" / "migrations"
        nested.mkdir(parents=True)
        (tmp_path / "pyproject.toml").write_text(
            "[tool.pgparity.lint]\nassume-in-transaction = true\n"
            'disable = { prefer-bigint = "small tables" }\n'
        )
        found = find_config(nested)
        assert found == tmp_path / "pyproject.toml"
        config = load_config(found)
        assert config.assume_in_transaction
        assert config.disable == {Rule.PREFER_BIGINT: "small tables"}
        (tmp_path / "db" / "pgparity.toml").write_text("[lint]\nenable = ['not-re-runnable']\n")
        assert find_config(nested) == tmp_path / "db" / "pgparity.toml"
        assert load_config(find_config(nested)).enable == {Rule.NOT_RE_RUNNABLE}

    def test_invalid_toml_names_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "pgparity.toml"
        path.write_text("[lint\n")
        with pytest.raises(UsageError, match=r"pgparity.toml is not valid TOML"):
            load_config(path)
