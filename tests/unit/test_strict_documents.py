"""Files are read against a strict schema, and every number has a range.

An ignored ``usesIndx`` was an expectation that never ran (VALIDATED); NaN rates and weights ran
a workload that sent nothing; ``99999999999h`` reached the server and came back as exit 70.
"""

from __future__ import annotations

from typing import Any

import pytest

from pgparity import config
from pgparity.errors import SpecError, UsageError
from pgparity.models.codec import API, FILE, decode
from pgparity.models.common import is_pg_duration, is_pg_size
from pgparity.models.migration_validation import MigrationValidationSpec
from pgparity.models.quantities import MAX_DURATION_MS, parse_duration, parse_size
from pgparity.models.workload import ExplainFile, Workload

QUERY = {"name": "q", "sql": "SELECT 1"}
STATEMENT = {"sql": "SELECT 1"}


class TestUnknownKeys:
    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            (
                [{**QUERY, "usesIndx": "i"}],
                "queries[0].usesIndx: unknown key; did you mean usesIndex?",
            ),
            (
                [{**QUERY, "uses_indx": "i"}],
                "queries[0].uses_indx: unknown key; did you mean usesIndex",
            ),
            ([{**QUERY, "noSeqScan": ["t"]}], "did you mean noSeqScanOn?"),
            ([{**QUERY, "max_cost": 5}], "queries[0].max_cost: unknown key"),
            ([{**QUERY, "sqll": "x"}], "did you mean sql?"),
            ({"queries": [QUERY], "analyse": True}, "analyse: unknown key; did you mean analyze?"),
            ({"query": [QUERY]}, "query: unknown key; did you mean queries?"),
            ([{**QUERY, "zzz": 1}], "expected one of name, sql, usesIndex, noSeqScanOn"),
            ([{**QUERY, "uses_index": "a", "usesIndex": "b"}], "is given twice"),
            ([{**QUERY, 1: "x"}], "queries[0].1: keys must be strings"),  # type: ignore[misc]
        ],
    )
    def test_explain_files(self, doc: Any, message: str) -> None:
        with pytest.raises(SpecError) as caught:
            ExplainFile.parse(doc)
        assert message in str(caught.value)

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            (
                {"statements": [STATEMENT], "clinets": 2},
                "clinets: unknown key; did you mean clients?",
            ),
            ({"statements": [STATEMENT], "warm_up": "1s"}, "did you mean warmup?"),
            ({"statement": [STATEMENT]}, "statement: unknown key; did you mean statements?"),
            ({"statements": [{**STATEMENT, "wieght": 2}]}, "statements[0].wieght: unknown key"),
            (
                {"statements": [{"sql": "SELECT %(id)s", "params": {"id": {"int_rnge": [1, 2]}}}]},
                "statements[0].params.id.int_rnge: unknown key; did you mean intRange?",
            ),
        ],
    )
    def test_workload_files(self, doc: Any, message: str) -> None:
        with pytest.raises(SpecError) as caught:
            Workload.parse(doc)
        assert message in str(caught.value)

    def test_snake_case_and_placeholder_names_are_kept_as_written(self) -> None:
        workload = Workload.parse(
            {
                "statements": [
                    {"sql": "SELECT %(user_id)s", "params": {"user_id": {"int_range": [1, 9]}}}
                ]
            }
        )
        assert workload.statements[0].params["user_id"].int_range == (1, 9)
        parsed = ExplainFile.parse([{**QUERY, "uses_index": "i", "max_total_cost": 10}])
        assert parsed.queries[0].uses_index == "i"

    def test_objects_from_the_api_server_stay_lenient(self) -> None:
        # The API server prunes unknown fields; a newer CRD's field must not break us.
        spec = MigrationValidationSpec.parse(
            {"cloneRef": {"name": "c"}, "migration": {"sql": "SELECT 1"}, "futureField": 1}
        )
        assert spec.clone_ref.name == "c"
        assert decode(type(spec), {"cloneRef": {"name": "c"}, "migration": {"sql": "x"}}, "", API)
        with pytest.raises(SpecError, match="futureField: unknown key"):
            decode(type(spec), {"cloneRef": {"name": "c"}, "futureField": 1}, "spec", FILE)


class TestNumbersInFiles:
    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ({"statements": [STATEMENT], "rate": float("nan")}, "rate: must be a finite number"),
            ({"statements": [STATEMENT], "rate": float("inf")}, "rate: must be a finite number"),
            ({"statements": [STATEMENT], "rate": 10**400}, "rate: must be a finite number"),
            ({"statements": [STATEMENT], "rate": -1}, "rate: must be between 0"),
            ({"statements": [STATEMENT], "rate": 1e9}, "rate: must be between 0"),
            ({"statements": [STATEMENT], "clients": 0}, "clients: must be between 1 and 256"),
            ({"statements": [STATEMENT], "clients": 2**64}, "clients: must fit in 64 bits"),
            ({"statements": [{**STATEMENT, "weight": float("nan")}]}, "must be a finite number"),
            ({"statements": [{**STATEMENT, "weight": 0}]}, "weight: must be positive"),
            ({"statements": [{**STATEMENT, "weight": 1e12}]}, "weight: must be positive and at"),
            ({"statements": [STATEMENT], "warmup": "99999999999h"}, "warmup: must be a Postg"),
            ({"statements": [STATEMENT], "warmup": "11min"}, "warmup: must be a PostgreSQL dur"),
            ({"statements": [STATEMENT], "cooldown": "nan"}, "cooldown: must be a PostgreSQL"),
            ({"statements": [STATEMENT], "duration": "25h"}, "duration: must be a PostgreSQL"),
            (
                {
                    "statements": [
                        {"sql": "SELECT %(i)s", "params": {"i": {"intRange": [0, 2**63]}}}
                    ]
                },
                "intRange[1]: must fit in 64 bits",
            ),
        ],
    )
    def test_workload(self, doc: Any, message: str) -> None:
        with pytest.raises(SpecError) as caught:
            Workload.parse(doc)
        assert message in str(caught.value)

    @pytest.mark.parametrize(
        "cost", [float("nan"), float("inf"), -1.0, 10**400], ids=["nan", "inf", "neg", "huge"]
    )
    def test_explain_costs(self, cost: float) -> None:
        with pytest.raises(SpecError, match="maxTotalCost: must"):
            ExplainFile.parse([{**QUERY, "maxTotalCost": cost}])

    @pytest.mark.parametrize(
        ("part", "value"),
        [
            ("timeouts", {"lockTimeout": "99999999999h"}),
            ("timeouts", {"statementTimeout": "2147483648"}),
            ("budgets", {"maxLockWait": "1000d"}),
            ("budgets", {"maxReplicationLag": "99999999999TB"}),
        ],
    )
    def test_crd_durations_and_sizes_fit_postgresql(self, part: str, value: Any) -> None:
        doc = {"cloneRef": {"name": "c"}, "migration": {"sql": "SELECT 1"}, part: value}
        with pytest.raises(SpecError):
            MigrationValidationSpec.parse(doc)


class TestQuantities:
    @pytest.mark.parametrize(
        "text",
        [
            "99999999999h",
            "1" + "0" * 400 + "s",
            "2147483648",
            "24.9d",
            "596524h",
            "9" * 10_000,
        ],
    )
    def test_durations_beyond_int_max_milliseconds(self, text: str) -> None:
        with pytest.raises(UsageError) as caught:
            parse_duration(text, what="--lock-timeout")
        message = str(caught.value)
        assert "too long (at most 2147483647ms, about 24.9 days)" in message
        assert len(message) < 200  # the value is cut short, the message stays one line

    @pytest.mark.parametrize(
        "text", ["nan", "inf", "-inf", "1e400s", "-1s", "٥s", "1_000ms", "0x10s", "5 s s", "."]
    )
    def test_durations_that_are_not_numbers(self, text: str) -> None:
        with pytest.raises(UsageError, match="is not a PostgreSQL duration"):
            parse_duration(text, what="--lock-timeout")

    def test_the_largest_duration_postgresql_accepts(self) -> None:
        assert parse_duration("2147483647").milliseconds == MAX_DURATION_MS
        assert parse_duration("24d").as_setting() == "2073600000ms"

    @pytest.mark.parametrize("text", ["9223372036854775808", "8388608TB", "1" + "0" * 30 + "GB"])
    def test_sizes_beyond_bigint(self, text: str) -> None:
        with pytest.raises(UsageError, match="is too large"):
            parse_size(text, what="--max-replication-lag")

    def test_range_aware_syntax_checks(self) -> None:
        assert is_pg_duration("5s")
        assert not is_pg_duration("99999999999h")
        assert is_pg_size("64MB")
        assert not is_pg_size("99999999999TB")


class TestOperatorSettings:
    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("PGPARITY_RECONCILE_SECONDS", "nan"),
            ("PGPARITY_RECONCILE_SECONDS", "inf"),
            ("PGPARITY_RECONCILE_SECONDS", "1e400"),
            ("PGPARITY_RECONCILE_SECONDS", "-5"),
            ("PGPARITY_RECONCILE_SECONDS", "0"),
            ("PGPARITY_MONITOR_SECONDS", "86401"),
            ("PGPARITY_METRICS_PORT", "65536"),
            ("PGPARITY_METRICS_PORT", "9_090"),
            ("PGPARITY_LIVENESS_PORT", "-1"),
        ],
    )
    def test_bad_values_name_the_variable(self, variable: str, value: str) -> None:
        with pytest.raises(UsageError, match=variable):
            config.load({variable: value})

    def test_good_values(self) -> None:
        settings = config.load({"PGPARITY_RECONCILE_SECONDS": "0.5", "PGPARITY_METRICS_PORT": "0"})
        assert settings.reconcile_seconds == 0.5
        assert settings.metrics_port == 0


class TestInlineMigrationSql:
    @pytest.mark.parametrize("sql", ["SELECT 1;\x00 DROP TABLE t;", "SELECT 1;\n\x1b", "\x7f"])
    def test_control_characters_in_the_spec_are_an_invalid_spec(self, sql: str) -> None:
        doc = {"cloneRef": {"name": "c"}, "migration": {"sql": sql}}
        with pytest.raises(SpecError, match=r"spec\.migration\.sql: line \d+, column \d+"):
            MigrationValidationSpec.parse(doc)


@pytest.mark.parametrize(
    "parse",
    [
        lambda sql: ExplainFile.parse([{"name": "q", "sql": sql}]),
        lambda sql: Workload.parse({"statements": [{"sql": sql}]}),
    ],
    ids=["explain", "workload"],
)
def test_sql_escaped_in_yaml_is_checked_too(parse: Any) -> None:
    # YAML's "\0" escape puts a NUL in a string without a NUL byte in the file.
    with pytest.raises(SpecError, match=r"sql: line 1, column 10: control character U\+0000"):
        parse("SELECT 1;\x00 DELETE FROM t")
