"""The pgparity Grafana dashboard, as code (grafana-foundation-sdk, the dev extra).

``python hack/dashboard/generate.py`` writes ``charts/pgparity/dashboards/pgparity.json``, which
the chart ships as a ConfigMap for Grafana's dashboard sidecar
(``monitoring.grafanaDashboard.enabled``). The tools tier regenerates it and compares; the kube
tier evaluates every query below on a real Prometheus. The product never imports this.

Rows: the operator and its queue; validations (verdicts over time, the verdicts standing now,
phases, duration); clones (readiness, replication lag, lock waits and blocked sessions); the
pgparity alerts firing.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)

OUTPUT = (
    Path(__file__).resolve().parents[2] / "charts" / "pgparity" / "dashboards" / "pgparity.json"
)
UID = "pgparity-overview"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
OPERATOR_JOB = 'job="pgparity"'
IN_NAMESPACE = 'namespace=~"$namespace"'
CLONES = f'{IN_NAMESPACE}, name=~"$clone"'


def query(expr: str, legend: str = "", *, instant: bool = False) -> Dataquery:
    target = Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    if instant:
        target = target.instant().format("table")
    return target


def graph(title: str, description: str, unit: str, *targets: Dataquery) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .height(8)
        .span(12)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["max", "lastNotNull"])
        )
    )
    for target in targets:
        panel = panel.with_target(target)
    return panel


def single(title: str, description: str, expr: str, span: int = 6) -> stat.Panel:
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .height(4)
        .span(span)
        .with_target(query(expr))
    )


def operator_row(board: Dashboard) -> Dashboard:
    up = ValueMap(
        {
            "0": ValueMappingResult(text="down", color="red", index=0),
            "1": ValueMappingResult(text="up", color="green", index=1),
        }
    )
    return (
        board.with_row(Row("Operator"))
        .with_panel(
            single(
                "Operator",
                "Whether Prometheus scrapes a running operator (job pgparity). "
                "Alert: PgparityOperatorDown.",
                f"max(up{{{OPERATOR_JOB}}})",
            ).mappings([up])
        )
        .with_panel(
            single(
                "Validation Jobs running",
                "Validation Jobs running now, cluster-wide (at most PGPARITY_MAX_CONCURRENT_JOBS).",
                "max(pgparity_validation_jobs_running)",
            )
        )
        .with_panel(
            single(
                "Validations queued",
                "Validations ready to run that wait for a Job slot (phase Pending, reason Queued).",
                "max(pgparity_validation_queue_length)",
            )
        )
        .with_panel(
            single(
                "Clones Ready",
                "StagingClones Ready now, of all the operator watches in the selected namespaces.",
                f"sum(max by (namespace, name) (pgparity_clone_ready{{{IN_NAMESPACE}}}))",
            )
        )
    )


def validations_row(board: Dashboard) -> Dashboard:
    verdicts = (
        graph(
            "Verdicts over time",
            "Validations finished in each interval, by verdict (all namespaces).",
            "short",
            query(
                "sum by (verdict) (increase(pgparity_validations_total[$__rate_interval]))",
                "{{verdict}}",
            ),
        )
        .draw_style(common.GraphDrawStyle.BARS)
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        .fill_opacity(80)
    )
    standing = (
        table.Panel()
        .title("Verdicts standing")
        .description(
            "The verdict of every MigrationValidation that has one. "
            "Alert on REJECTED: PgparityValidationRejected."
        )
        .datasource(DATASOURCE)
        .height(8)
        .span(12)
        .with_target(
            query(
                "max by (namespace, name, clone, verdict) "
                f"(pgparity_validation_verdict{{{IN_NAMESPACE}}}) == 1",
                instant=True,
            )
        )
    )
    phases = (
        graph(
            "Validations by phase",
            "MigrationValidations in each phase. Failed ones have no verdict: "
            "PgparityValidationFailed, PgparityValidationDeadlineExceeded.",
            "short",
            query(
                f"sum by (phase) (pgparity_validation_phase{{{IN_NAMESPACE}}})",
                "{{phase}}",
            ),
        )
        .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
        .fill_opacity(30)
    )
    duration = graph(
        "Validation duration",
        "Wall time of a validation, from its Job's start to its report: median and 95th "
        "percentile of those finished in each interval.",
        "s",
        query(
            "histogram_quantile(0.5, sum by (le) "
            "(rate(pgparity_validation_duration_seconds_bucket[$__rate_interval])))",
            "p50",
        ),
        query(
            "histogram_quantile(0.95, sum by (le) "
            "(rate(pgparity_validation_duration_seconds_bucket[$__rate_interval])))",
            "p95",
        ),
    )
    return (
        board.with_row(Row("Validations"))
        .with_panel(verdicts)
        .with_panel(standing)
        .with_panel(phases)
        .with_panel(duration)
    )


def clones_row(board: Dashboard) -> Dashboard:
    ready = ValueMap(
        {
            "0": ValueMappingResult(text="not Ready", color="red", index=0),
            "1": ValueMappingResult(text="Ready", color="green", index=1),
        }
    )
    readiness = (
        statetimeline.Panel()
        .title("Clone readiness")
        .description("Each StagingClone's Ready condition. Alert: PgparityCloneNotReady.")
        .datasource(DATASOURCE)
        .height(8)
        .span(24)
        .mappings([ready])
        .with_target(
            query(
                f"max by (namespace, name) (pgparity_clone_ready{{{CLONES}}})",
                "{{namespace}}/{{name}}",
            )
        )
    )
    lag = graph(
        "Replication lag per clone",
        "WAL the slowest replica of each clone has not replayed, sampled every "
        "PGPARITY_MONITOR_SECONDS. Alert: PgparityCloneReplicationLagHigh.",
        "bytes",
        query(
            f"max by (namespace, name) (pgparity_replication_lag_bytes{{{CLONES}}})",
            "{{namespace}}/{{name}}",
        ),
    )
    waits = graph(
        "Lock waits",
        "Longest current lock wait on each clone's primary. Alert: PgparityCloneLockWaitHigh.",
        "s",
        query(
            f"max by (namespace, name) (pgparity_lock_wait_seconds_max{{{CLONES}}})",
            "{{namespace}}/{{name}}",
        ),
    )
    blocked = graph(
        "Blocked sessions",
        "Sessions waiting for a lock on each clone's primary.",
        "short",
        query(
            f"max by (namespace, name) (pgparity_lock_waiting_sessions{{{CLONES}}})",
            "{{namespace}}/{{name}}",
        ),
    )
    return (
        board.with_row(Row("Clones"))
        .with_panel(readiness)
        .with_panel(lag)
        .with_panel(waits)
        .with_panel(blocked)
    )


def alerts_row(board: Dashboard) -> Dashboard:
    firing = (
        table.Panel()
        .title("pgparity alerts firing")
        .description("The pgparity alerts firing now, with their routing labels.")
        .datasource(DATASOURCE)
        .height(6)
        .span(24)
        .with_target(
            query(
                "max by (alertname, severity, namespace, validation, clone) "
                '(ALERTS{alertname=~"Pgparity.+", alertstate="firing"})',
                instant=True,
            )
        )
    )
    return board.with_row(Row("Alerts")).with_panel(firing)


def variables(board: Dashboard) -> Dashboard:
    namespace = (
        QueryVariable("namespace")
        .label("Namespace")
        .datasource(DATASOURCE)
        .query(
            'label_values({__name__=~"pgparity_clone_ready|pgparity_validation_phase"}, namespace)'
        )
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    clone = (
        QueryVariable("clone")
        .label("StagingClone")
        .datasource(DATASOURCE)
        .query(f"label_values(pgparity_clone_ready{{{IN_NAMESPACE}}}, name)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    source = DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    return board.with_variable(source).with_variable(namespace).with_variable(clone)


def build() -> Dashboard:
    board = (
        Dashboard("pgparity")
        .uid(UID)
        .description(
            "pgparity: migration validations (verdicts, phases, duration) and the staging "
            "clones they run on (readiness, replication lag, lock waits)."
        )
        .tags(["pgparity", "postgresql", "migrations"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone(common.TimeZoneBrowser)
        .editable()
    )
    for row in (variables, operator_row, validations_row, clones_row, alerts_row):
        board = row(board)
    return board


def render() -> str:
    """The dashboard JSON, byte for byte as committed."""
    return json.dumps(build().build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
