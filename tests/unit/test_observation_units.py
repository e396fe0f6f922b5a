"""Pure parts of the observation: summarizing samples, plan shapes, latency, input files."""

from __future__ import annotations

import pytest

from pgparity.engine.findings import observation_gap_findings
from pgparity.engine.observe.holdlock import HoldLock
from pgparity.engine.observe.observation import Budgets
from pgparity.engine.observe.observer import (
    ActivitySample,
    ReplicationSample,
    Samples,
    SamplingFailure,
    Source,
    Waiter,
    observation_gaps,
    summarize,
    without_gaps,
)
from pgparity.engine.observe.plans import compare
from pgparity.engine.observe.traffic import latency_stats
from pgparity.errors import SpecError, UsageError
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.report import ObservationGap, PlanOutcome, Quantity, Severity
from pgparity.models.workload import ExplainFile, Workload
from pgparity.pg.explain import plan_shape

MIGRATION = 100


def _waiter(
    pid: int,
    blockers: tuple[int, ...],
    waitstart: float,
    relation: str = "public.t",
    app: str = "app",
) -> Waiter:
    return Waiter(
        pid=pid,
        application=app,
        query="SELECT …",
        waitstart=waitstart,
        mode="AccessShareLock",
        relation=relation,
        blockers=blockers,
    )


def test_a_lock_queue_counts_everyone_behind_the_migration() -> None:
    # 200 waits for the migration; 300 queues behind 200; 400 waits on someone else entirely.
    sample = ActivitySample(
        at=12.0,
        statement=1,
        waiters=(
            _waiter(200, (MIGRATION,), 10.0),
            _waiter(300, (200,), 11.5),
            _waiter(400, (999,), 5.0, relation="public.other"),
        ),
        names={MIGRATION: "pgparity"},
    )
    summary = summarize(Samples(activity=[sample]), [MIGRATION], {1: {"public.t"}})
    observed = summary.statements[1]
    assert observed.max_blocked_sessions == 2
    assert observed.max_lock_wait_seconds == pytest.approx(2.0)
    assert summary.max_blocked_sessions == 2
    assert observed.blocking[0].waiter == "app"
    assert observed.blocking[0].sessions == 2


def test_waits_are_charged_to_the_statement_that_took_the_lock() -> None:
    samples = Samples(
        activity=[
            ActivitySample(at=20.0, statement=3, waiters=(_waiter(200, (MIGRATION,), 17.0),)),
        ]
    )
    summary = summarize(samples, [MIGRATION], {1: {"public.t"}, 2: set(), 3: {"public.u"}})
    assert summary.statements[1].max_lock_wait_seconds == pytest.approx(3.0)
    assert summary.statements[1].max_blocked_sessions == 1
    assert 3 not in summary.statements or summary.statements[3].max_blocked_sessions == 0


def test_the_migrations_own_waits_and_who_blocked_it() -> None:
    samples = Samples(
        activity=[
            ActivitySample(
                at=5.0,
                statement=1,
                waiters=(_waiter(MIGRATION, (555,), 4.2),),
                names={555: "pgparity-hold-lock"},
            ),
        ]
    )
    observed = summarize(samples, [MIGRATION], {}).statements[1]
    assert observed.own_lock_wait_seconds == pytest.approx(0.8)
    assert observed.max_blocked_sessions == 0
    assert (observed.blocking[0].waiter, observed.blocking[0].blocker) == (
        "migration",
        "pgparity-hold-lock",
    )


def test_unmarked_samples_are_not_charged_and_lag_is_per_statement() -> None:
    samples = Samples(
        activity=[
            ActivitySample(at=9.0, statement=None, waiters=(_waiter(200, (MIGRATION,), 1.0),))
        ],
        replication=[
            ReplicationSample(1.0, 1, 100, 0.1, 1),
            ReplicationSample(2.0, 2, 5000, 0.5, 1),
            ReplicationSample(3.0, None, 99999, 9.0, 1),
        ],
    )
    summary = summarize(samples, [MIGRATION], {})
    assert summary.max_blocked_sessions == 0
    assert summary.statements[2].max_replication_lag_bytes == 5000
    assert summary.max_replication_lag_bytes == 5000
    assert summary.max_replication_lag_seconds == pytest.approx(0.5)


PLAN_INDEX = {
    "Node Type": "Index Scan",
    "Index Name": "users_email_idx",
    "Relation Name": "users",
    "Schema": "public",
    "Total Cost": 8.4,
}
PLAN_SEQ = {
    "Node Type": "Seq Scan",
    "Relation Name": "users",
    "Schema": "public",
    "Total Cost": 1500.0,
}
PLAN_JOIN = {
    "Node Type": "Hash Join",
    "Total Cost": 90.0,
    "Plans": [
        {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public"},
        {"Node Type": "Hash", "Plans": [dict(PLAN_INDEX)]},
    ],
}


def test_plan_shape_and_changes() -> None:
    shape = plan_shape(PLAN_JOIN)
    assert shape.nodes == (
        "Hash Join",
        "Seq Scan on public.orders",
        "Hash",
        "Index Scan using users_email_idx on public.users",
    )
    assert shape.join_order == ("public.orders", "public.users")
    query = ExplainQuery(
        name="q",
        sql="…",
        uses_index="users_email_idx",
        no_seq_scan_on=("users",),
        max_total_cost=100,
    )
    same = compare(query, PlanOutcome(plan_shape(PLAN_INDEX)), PlanOutcome(plan_shape(PLAN_INDEX)))
    assert same.changes == ()
    assert same.violations == ()
    worse = compare(query, PlanOutcome(plan_shape(PLAN_INDEX)), PlanOutcome(plan_shape(PLAN_SEQ)))
    assert "no longer uses index users_email_idx" in worse.changes
    assert "now scans public.users sequentially" in worse.changes
    assert worse.violations == (
        "expected to use index users_email_idx, uses no index",
        "scans users sequentially",
        "total cost 1500.0 exceeds 100",
    )
    failed = compare(query, PlanOutcome(plan_shape(PLAN_INDEX)), PlanOutcome(error="42P01 x"))
    assert failed.violations == ("could not be explained after the migration: 42P01 x",)


def test_latency_percentiles_are_nearest_rank() -> None:
    stats = latency_stats([float(v) for v in range(1, 101)])
    assert (stats.count, stats.p50_ms, stats.p95_ms, stats.p99_ms) == (100, 50, 95, 99)
    assert latency_stats([]).p50_ms is None
    assert latency_stats([7.0]).p99_ms == 7.0


def test_workload_files_name_the_bad_field() -> None:
    good = Workload.parse(
        {
            "clients": 2,
            "statements": [{"sql": "SELECT %(id)s", "params": {"id": {"int_range": [1, 9]}}}],
        }
    )
    assert good.statements[0].params["id"].int_range == (1, 9)
    cases = [
        ({"statements": []}, "statements: must list at least one statement"),
        ({"statements": [{"sql": "SELECT %(id)s"}]}, "statements[0].params: no values for id"),
        (
            {"statements": [{"sql": "SELECT %(id)s", "params": {"id": {}}}]},
            "statements[0].params.id: exactly one of",
        ),
        ({"statements": [{"sql": "SELECT 1", "weight": 0}]}, "statements[0].weight"),
        ({"clients": 0, "statements": [{"sql": "SELECT 1"}]}, "clients"),
        ({"warmup": "soon", "statements": [{"sql": "SELECT 1"}]}, "warmup"),
    ]
    for doc, message in cases:
        with pytest.raises(SpecError) as caught:
            Workload.parse(doc)
        assert str(caught.value).startswith(message), (doc, str(caught.value))


def test_explain_files_accept_a_list_or_a_mapping_and_snake_case() -> None:
    listed = ExplainFile.parse([{"name": "a", "sql": "SELECT 1", "no_seq_scan_on": ["t"]}])
    assert listed.queries[0].no_seq_scan_on == ("t",)
    mapped = ExplainFile.parse({"analyze": True, "queries": [{"name": "a", "sql": "SELECT 1"}]})
    assert mapped.analyze
    with pytest.raises(SpecError, match="duplicate query names: a"):
        ExplainFile.parse([{"name": "a", "sql": "x"}, {"name": "a", "sql": "y"}])
    with pytest.raises(SpecError, match=r"queries\[0\]\.sql: is required"):
        ExplainFile.parse([{"name": "a"}])


def test_hold_lock_flags() -> None:
    assert HoldLock.parse("public.orders:3") == HoldLock("public.orders", 3.0)
    assert HoldLock.parse("orders:2500ms") == HoldLock("orders", 2.5)
    for bad in ("orders", ":3", "orders:0", "orders:soon"):
        with pytest.raises(UsageError, match="--hold-lock"):
            HoldLock.parse(bad)


class TestObservationGaps:
    """When the observer could not observe, the report says so — never a zero."""

    WINDOW = (100.0, 101.0)

    @staticmethod
    def _lag(taken: float, *, replicas: int = 1, hidden: int = 0, measured: bool = False):  # type: ignore[no-untyped-def]
        return ReplicationSample(
            at=taken,
            statement=1,
            lag_bytes=0,
            lag_seconds=None,
            replicas=replicas,
            hidden=hidden,
            taken=taken,
            replica_measured=measured,
        )

    def _gaps(self, samples: Samples, replica_given: bool = False) -> dict[Quantity, str]:
        gaps = observation_gaps(samples, self.WINDOW, 0.05, replica_given)
        return {gap.quantity: gap.reason for gap in gaps}

    def test_a_healthy_run_has_none(self) -> None:
        samples = Samples(replication=[self._lag(100.5)])
        assert self._gaps(samples) == {}
        assert observation_gaps(samples, None, 0.05, False) == []

    def test_primary_failures_during_the_window_lose_everything(self) -> None:
        samples = Samples(
            replication=[self._lag(100.2)],
            failures=[SamplingFailure(100.5, Source.PRIMARY, "terminating connection")],
        )
        gaps = self._gaps(samples)
        assert set(gaps) == set(Quantity)
        assert "terminating connection" in gaps[Quantity.LOCK_WAIT]

    def test_failures_outside_the_window_do_not_count(self) -> None:
        samples = Samples(
            replication=[self._lag(100.5)],
            failures=[SamplingFailure(90.0, Source.PRIMARY, "earlier hiccup")],
        )
        assert self._gaps(samples) == {}

    def test_a_sampler_that_stopped_before_the_end(self) -> None:
        samples = Samples(replication=[self._lag(100.1)], stopped=100.3)
        assert "lost its session" in self._gaps(samples)[Quantity.BLOCKED_SESSIONS]

    def test_replica_failures_lose_the_lag_only(self) -> None:
        samples = Samples(
            replication=[self._lag(100.5)],
            failures=[SamplingFailure(100.5, Source.REPLICA, "server closed the connection")],
        )
        assert set(self._gaps(samples, replica_given=True)) == {
            Quantity.REPLICATION_LAG_BYTES,
            Quantity.REPLICATION_LAG_SECONDS,
        }

    def test_hidden_positions_without_pg_monitor(self) -> None:
        hidden = Samples(replication=[self._lag(100.5, hidden=1)])
        assert set(self._gaps(hidden)) == {
            Quantity.REPLICATION_LAG_BYTES,
            Quantity.REPLICATION_LAG_SECONDS,
        }
        # The replica's own replay position still gives the bytes.
        measured = Samples(replication=[self._lag(100.5, hidden=1, measured=True)])
        assert set(self._gaps(measured, replica_given=True)) == {Quantity.REPLICATION_LAG_SECONDS}

    def test_no_waitstart_before_postgresql_14(self) -> None:
        samples = Samples(replication=[self._lag(100.5)], waitstart=False)
        assert "waitstart" in self._gaps(samples)[Quantity.LOCK_WAIT]

    def test_no_replica_matters_only_to_a_lag_budget(self) -> None:
        samples = Samples(replication=[self._lag(100.5, replicas=0)])
        gaps = observation_gaps(samples, self.WINDOW, 0.05, False)
        assert {g.quantity for g in gaps} == {
            Quantity.REPLICATION_LAG_BYTES,
            Quantity.REPLICATION_LAG_SECONDS,
        }
        assert observation_gap_findings(gaps, Budgets()) == []
        found = observation_gap_findings(gaps, Budgets(max_lag_bytes=1024))
        assert [(f.rule, f.severity) for f in found] == [("observation-incomplete", Severity.ERROR)]
        assert "--max-replication-lag" in found[0].message

    def test_a_gap_is_a_warning_unless_a_budget_depends_on_it(self) -> None:
        gaps = observation_gaps(
            Samples(replication=[self._lag(100.5)], waitstart=False), self.WINDOW, 0.05, False
        )
        assert [f.severity for f in observation_gap_findings(gaps, Budgets())] == [Severity.WARNING]
        budgeted = observation_gap_findings(gaps, Budgets(max_lock_wait_seconds=2))
        assert [f.severity for f in budgeted] == [Severity.ERROR]

    def test_unobserved_quantities_become_unknown_not_zero(self) -> None:
        sample = ActivitySample(
            at=12.0, statement=1, waiters=(_waiter(200, (MIGRATION,), 10.0),), names={}
        )
        summary = summarize(Samples(activity=[sample]), [MIGRATION], {1: {"public.t"}})
        gaps = [
            ObservationGap(Quantity.LOCK_WAIT, "x"),
            ObservationGap(Quantity.REPLICATION_LAG_BYTES, "y"),
        ]
        blanked = without_gaps(summary, gaps)
        assert blanked.max_lock_wait_seconds is None
        assert blanked.max_replication_lag_bytes is None
        assert blanked.max_blocked_sessions == 1
        observed = blanked.statements[1]
        assert observed.max_lock_wait_seconds is None
        assert observed.own_lock_wait_seconds is None
        assert observed.max_blocked_sessions == 1
        assert observed.to_dict()["max_lock_wait_seconds"] is None
