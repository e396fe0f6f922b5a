"""Margins (issue 13) without a server: headroom judgements, the scale model, the report and
status fields, and what the validation Job is told."""

from __future__ import annotations

import math

import pytest

from pgparity.engine.execute.dryrun import TransactionalRun
from pgparity.engine.execute.repeat import with_repeats
from pgparity.engine.margins import (
    HeadroomPolicy,
    headroom_findings,
    repeat_findings,
    with_headroom,
)
from pgparity.engine.observe.observation import Budgets
from pgparity.engine.scale import (
    KEY_LOOKUP_BLOCKS,
    ProductionSizes,
    ScaleInputs,
    growth_factor,
    predict,
)
from pgparity.engine.sql.statements import parse_migration
from pgparity.errors import SpecError, UsageError
from pgparity.manifests.status import statement_summaries
from pgparity.manifests.validation import (
    PRODUCTION_KEY,
    ValidationInputs,
    ValidationRef,
    build_inputs,
    build_job,
    validate_command,
)
from pgparity.models.margins import headroom_text
from pgparity.models.migration_validation import MigrationValidationSpec
from pgparity.models.quantities import parse_duration
from pgparity.models.report import (
    Buffers,
    Cache,
    Growth,
    Headroom,
    LockRecord,
    MarginSettings,
    MigrationInfo,
    ProductionSource,
    Runs,
    RunSample,
    Severity,
    StatementError,
    StatementMargins,
    StatementObservation,
    StatementResult,
    TargetInfo,
    ValidationReport,
    Verdict,
)
from pgparity.pg.sizes import TableSize

pytestmark = pytest.mark.unit

FIVE_S, TEN_S = parse_duration("5s"), parse_duration("10s")


def _result(ms: float, **extra: object) -> StatementResult:
    fields: dict[str, object] = {
        "index": 1,
        "line": 1,
        "sql": "UPDATE t SET v = 1",
        "transactional": True,
        "executed": True,
        "duration_ms": ms,
        "settings_in_effect": {"lock_timeout": "5s", "statement_timeout": "10s"},
        **extra,
    }
    return StatementResult(**fields)  # type: ignore[arg-type]


def _judged(result: StatementResult, budgets: Budgets | None = None) -> StatementResult:
    return with_headroom([result], FIVE_S, TEN_S, budgets or Budgets())[0]


class TestHeadroom:
    def test_fraction_of_the_timeout_in_effect(self) -> None:
        headroom = _judged(_result(4_100)).margins
        assert headroom is not None
        assert headroom.headroom.statement_timeout == pytest.approx(0.41)
        assert headroom_text(headroom.headroom).startswith("41 % of statement_timeout")

    @pytest.mark.parametrize(
        ("ms", "factor", "found"),
        [
            (4_900, 2, False),
            (5_100, 2, True),
            (9_999, 1, False),
            (3_400, 3, True),
            (100, 100, False),
        ],
    )
    def test_factor_decides(self, ms: float, factor: float, found: bool) -> None:
        findings = headroom_findings([_judged(_result(ms))], HeadroomPolicy(factor=factor))
        assert bool(findings) is found

    def test_a_disabled_timeout_has_no_fraction(self) -> None:
        result = _judged(_result(50_000, settings_in_effect={"statement_timeout": "0"}))
        assert result.margins is not None
        assert result.margins.headroom.statement_timeout is None
        assert headroom_findings([result], HeadroomPolicy()) == []

    def test_an_unreadable_setting_falls_back_to_the_run_timeout(self) -> None:
        result = _judged(_result(6_000, settings_in_effect={"statement_timeout": "soon"}))
        assert result.margins is not None
        assert result.margins.headroom.statement_timeout == pytest.approx(0.6)

    def test_a_failed_statement_is_judged_by_its_error(self) -> None:
        failed = _judged(_result(9_000, error=StatementError("57014", "canceling")))
        assert headroom_findings([failed], HeadroomPolicy()) == []

    def test_over_a_budget_is_the_budget_finding_not_headroom(self) -> None:
        seen = StatementObservation(max_lock_wait_seconds=3.0)
        result = _judged(_result(10, observed=seen), Budgets(max_lock_wait_seconds=2.0))
        assert headroom_findings([result], HeadroomPolicy()) == []

    def test_budget_and_lock_fractions(self) -> None:
        seen = StatementObservation(
            max_lock_wait_seconds=1.5,
            own_lock_wait_seconds=3.0,
            max_replication_lag_bytes=700,
            max_replication_lag_seconds=0.1,
        )
        budgets = Budgets(max_lock_wait_seconds=2.0, max_lag_bytes=1000, max_lag_seconds=1.0)
        result = _judged(_result(10, observed=seen), budgets)
        assert result.margins is not None
        headroom = result.margins.headroom
        assert headroom.lock_timeout == pytest.approx(0.6)
        assert headroom.lock_wait_budget == pytest.approx(0.75)
        assert headroom.replication_lag_budget == pytest.approx(0.7)
        rules = sorted(f.rule for f in headroom_findings([result], HeadroomPolicy()))
        assert rules == ["budget-headroom", "budget-headroom", "timeout-headroom"]

    def test_unobserved_quantities_have_no_fraction(self) -> None:
        seen = StatementObservation(max_lock_wait_seconds=None, own_lock_wait_seconds=None)
        result = _judged(_result(10, observed=seen), Budgets(max_lock_wait_seconds=1.0))
        assert result.margins is not None
        assert result.margins.headroom.lock_wait_budget is None
        assert result.margins.headroom.lock_timeout is None

    def test_not_executed_statements_get_no_margins(self) -> None:
        skipped = _result(0, executed=False, duration_ms=None)
        assert _judged(skipped).margins is None

    @pytest.mark.parametrize("factor", [0.0, 0.99, -1.0, 101.0, math.inf])
    def test_bad_factors_are_refused(self, factor: float) -> None:
        with pytest.raises(UsageError):
            HeadroomPolicy(factor=factor)

    def test_warning_severity(self) -> None:
        findings = headroom_findings(
            [_judged(_result(9_000))], HeadroomPolicy(severity=Severity.WARNING)
        )
        assert [f.severity.value for f in findings] == ["warning"]


def _runs(*samples: RunSample) -> StatementMargins:
    return StatementMargins(headroom=Headroom(), runs=Runs.of(samples))


class TestRepeats:
    def test_the_slowest_run_is_judged(self) -> None:
        result = _result(1_000, margins=_runs(RunSample(1_000), RunSample(6_000), RunSample(900)))
        judged = _judged(result)
        assert judged.margins is not None
        assert judged.margins.runs is not None
        assert judged.margins.runs.median_ms == 1_000
        assert judged.margins.headroom.statement_timeout == pytest.approx(0.6)

    def test_repeats_are_appended_in_order(self) -> None:
        first = _result(10, margins=_runs(RunSample(10)))
        again = TransactionalRun(results=[_result(20, margins=_runs(RunSample(20)))])
        merged = with_repeats([first], [again, again])
        assert merged[0].margins is not None
        assert merged[0].margins.runs is not None
        assert [s.duration_ms for s in merged[0].margins.runs.samples] == [10, 20, 20]

    def test_a_failed_repeat_is_an_error(self) -> None:
        result = _result(
            10, margins=_runs(RunSample(10), RunSample(10_000, sqlstate="57014", failed=True))
        )
        [finding] = repeat_findings([result])
        assert finding.rule == "statement-timeout"
        assert "on 1 of 2 runs" in finding.message

    @pytest.mark.parametrize(
        ("hit", "read", "cache"), [(0, 0, Cache.NONE), (95, 5, Cache.WARM), (10, 90, Cache.COLD)]
    )
    def test_cache_state(self, hit: int, read: int, cache: Cache) -> None:
        assert Buffers.counted(hit, read).cache is cache


def _sizes(clone_bytes: int, production_bytes: int | None, rows: float = 100_000.0) -> ScaleInputs:
    production = {} if production_bytes is None else {"public.t": TableSize(production_bytes)}
    return ScaleInputs(
        clone={"public.t": TableSize(clone_bytes, rows)},
        production=ProductionSizes(ProductionSource.FILE, production),
    )


def _statement(sql: str):  # type: ignore[no-untyped-def]
    return parse_migration(sql).statements[0]


TABLE_LOCK = (LockRecord("public.t", "RowExclusiveLock", relkind="r"),)


class TestScaleModel:
    def test_a_full_scan_is_linear(self) -> None:
        result = _result(
            100, locks=TABLE_LOCK, margins=_runs(RunSample(100, buffers=Buffers.counted(1280, 0)))
        )
        prediction = predict(
            result, _statement("UPDATE t SET v = 1"), _sizes(8192 * 1280, 8192 * 12800)
        )
        assert prediction.growth is Growth.LINEAR
        assert prediction.factor == pytest.approx(10)
        assert prediction.duration_ms == pytest.approx(1000)

    def test_a_key_lookup_is_constant(self) -> None:
        buffers = Buffers.counted(KEY_LOOKUP_BLOCKS - 1, 0)
        result = _result(1, locks=TABLE_LOCK, margins=_runs(RunSample(1, buffers=buffers)))
        prediction = predict(
            result, _statement("UPDATE t SET v = 1 WHERE id = 1"), _sizes(8192 * 1280, 8192 * 12800)
        )
        assert prediction.growth is Growth.CONSTANT
        assert prediction.factor == 1.0

    def test_an_index_build_is_n_log_n(self) -> None:
        lock = (LockRecord("public.t", "ShareLock", relkind="r"),)
        result = _result(100, locks=lock)
        prediction = predict(result, _statement("CREATE INDEX i ON t (v)"), _sizes(1000, 10_000))
        assert prediction.growth is Growth.N_LOG_N
        assert prediction.factor == pytest.approx(10 * math.log(1e6) / math.log(1e5))

    def test_without_counters_a_table_statement_is_taken_as_linear(self) -> None:
        result = _result(100, locks=TABLE_LOCK)
        prediction = predict(result, _statement("UPDATE t SET v = 1"), _sizes(1000, 5000))
        assert prediction.growth is Growth.LINEAR

    def test_a_larger_clone_never_predicts_faster(self) -> None:
        result = _result(100, locks=TABLE_LOCK)
        prediction = predict(result, _statement("UPDATE t SET v = 1"), _sizes(5000, 1000))
        assert prediction.factor == 1.0

    def test_a_table_production_does_not_have_is_noted(self) -> None:
        result = _result(100, locks=TABLE_LOCK)
        prediction = predict(result, _statement("UPDATE t SET v = 1"), _sizes(5000, None))
        assert prediction.factor == 1.0
        assert prediction.note is not None
        assert "public.t" in prediction.note

    def test_growth_factor_shapes(self) -> None:
        assert growth_factor(Growth.CONSTANT, 50, 1e6) == 1.0
        assert growth_factor(Growth.LINEAR, 0.5, 1e6) == 1.0
        assert growth_factor(Growth.N_LOG_N, 1.0, 0.0) == pytest.approx(1.0)


class TestContract:
    def test_report_margins_round_trip(self) -> None:
        result = _judged(
            _result(
                4_000,
                margins=_runs(
                    RunSample(4_000, buffers=Buffers.counted(10, 2, ("public.t",))),
                    RunSample(3_000),
                ),
            )
        )
        report = ValidationReport(
            verdict=Verdict.VALIDATED,
            migration=MigrationInfo("m.sql", "0" * 64),
            target=TargetInfo(),
            settings={},
            statements=(result,),
            findings=(),
            margins=MarginSettings(2.0, Severity.ERROR, 2, ProductionSource.DSN, 3),
        )
        doc = report.to_dict()
        assert doc["margins"]["headroom_severity"] == "error"
        assert doc["statements"][0]["margins"]["repeats"]["max_ms"] == 4000
        assert doc["statements"][0]["margins"]["headroom"]["statement_timeout"] == 0.4
        assert ValidationReport.parse(doc).to_dict() == doc
        summary = statement_summaries(report)[0]
        assert summary.headroom is not None
        assert summary.headroom.startswith("40 % of statement_timeout")

    def test_job_gets_margins_and_the_production_dsn_from_its_secret(self) -> None:
        spec = MigrationValidationSpec.parse(
            {
                "cloneRef": {"name": "shop"},
                "migration": {"sql": "SELECT 1"},
                "headroom": {"factor": 3, "severity": "warning"},
                "repeat": 3,
                "production": {"secretRef": {"name": "prod-ro", "key": "dsn"}},
            }
        )
        inputs = ValidationInputs("SELECT 1", "shop", "shop-credentials", None, None)
        command = validate_command(spec, inputs, "r")
        assert command[command.index("--headroom") + 1] == "3"
        assert command[command.index("--headroom-severity") + 1] == "warning"
        assert command[command.index("--repeat") + 1] == "3"
        assert "--production-sizes" not in command
        job = build_job(
            ValidationRef("mv", "ns", "u"),
            spec,
            inputs,
            "ab" * 32,
            image="i",
            cpu="1",
            memory="1Gi",
        )
        env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        secret = env["PGPARITY_PRODUCTION_DSN"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "prod-ro", "key": "dsn"}
        assert not any("prod-ro" in part for part in command)

    def test_job_gets_production_sizes_as_a_file(self) -> None:
        tables = [{"name": "public.users", "size": "120GB", "rows": 200_000_000}]
        spec = MigrationValidationSpec.parse(
            {
                "cloneRef": {"name": "shop"},
                "migration": {"sql": "SELECT 1"},
                "production": {"tables": tables},
            }
        )
        inputs = ValidationInputs("SELECT 1", "shop", "shop-credentials", None, None)
        command = validate_command(spec, inputs, "r")
        assert command[command.index("--production-sizes") + 1].endswith(PRODUCTION_KEY)
        data = build_inputs(ValidationRef("mv", "ns", "u"), spec, inputs, "ab" * 32)["data"]
        assert "public.users" in data[PRODUCTION_KEY]
        assert "120GB" in data[PRODUCTION_KEY]

    @pytest.mark.parametrize(
        ("production", "where"),
        [
            ({}, "spec.production"),
            (
                {"secretRef": {"name": "a", "key": "b"}, "tables": [{"name": "t", "size": "1GB"}]},
                "spec.production",
            ),
            ({"tables": [{"name": "t", "size": "big"}]}, "spec.production.tables[0].size"),
            (
                {"tables": [{"name": "t", "size": "1GB", "rows": -5}]},
                "spec.production.tables[0].rows",
            ),
        ],
    )
    def test_bad_production_specs_name_the_field(self, production: dict, where: str) -> None:  # type: ignore[type-arg]
        with pytest.raises(SpecError) as caught:
            MigrationValidationSpec.parse(
                {
                    "cloneRef": {"name": "s"},
                    "migration": {"sql": "SELECT 1"},
                    "production": production,
                }
            )
        assert where in str(caught.value)

    @pytest.mark.parametrize("headroom", [{"factor": 0.5}, {"factor": 101}, {"severity": "fatal"}])
    def test_bad_headroom_specs_are_refused(self, headroom: dict) -> None:  # type: ignore[type-arg]
        with pytest.raises(SpecError):
            MigrationValidationSpec.parse(
                {"cloneRef": {"name": "s"}, "migration": {"sql": "SELECT 1"}, "headroom": headroom}
            )
