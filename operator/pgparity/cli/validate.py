"""``pgparity validate``: dry-run a migration and print a verdict."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from pgparity.cli.common import (
    EXIT_DRIFT,
    EXIT_OK,
    EXIT_REJECTED,
    check_output_file,
    int_in_range,
    load_yaml,
    number_in_range,
    progress_printer,
    write_atomically,
)
from pgparity.cli.render import FORMATS, render, summary_line
from pgparity.engine.execute.dryrun import Timeouts
from pgparity.engine.execute.repeat import MAX_REPEAT
from pgparity.engine.margins import DEFAULT_FACTOR, MAX_FACTOR, HeadroomPolicy
from pgparity.engine.observe.holdlock import HoldLock
from pgparity.engine.observe.observation import Budgets, ObservationOptions, TrafficPlan
from pgparity.engine.observe.plans import check_explain_queries
from pgparity.engine.observe.traffic import check_workload
from pgparity.engine.scale import ProductionSizes
from pgparity.engine.validate import (
    MigrationFile,
    Target,
    ValidationOptions,
    check_digest_syntax,
    validate,
)
from pgparity.errors import SpecError, UsageError
from pgparity.inputs import REPORT, SEED_SQL, check_no_nul, read_text
from pgparity.lint import find_config, load_config
from pgparity.models.codec import FILE, decode
from pgparity.models.migration_validation import CloneParity, ProductionTables
from pgparity.models.progress import Progress
from pgparity.models.quantities import is_duration, parse_duration, parse_size
from pgparity.models.report import ProductionSource, Rule, Severity, ValidationReport, Verdict
from pgparity.models.workload import MAX_CLIENTS, MAX_RATE, ExplainFile, Workload
from pgparity.pg.connection import connect
from pgparity.pg.localcluster import LocalCluster
from pgparity.pg.sizes import TableSize, read_table_sizes
from pgparity.redaction import sanitize_strings

# PostgreSQL's limit on max_connections (MAX_BACKENDS): more sessions cannot be blocked.
PARITY_STATES = tuple(state.value for state in CloneParity)
MAX_BLOCKED_SESSIONS = 262_143


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "validate",
        help="dry-run a migration and print a verdict",
        description="Run a migration as a rolled-back dry-run under production timeouts and "
        "report what it really does: locks, rewrites, WAL, durations, errors.",
    )
    _add_validate(parser)
    parser.set_defaults(handler=cmd_validate)
    shown = commands.add_parser(
        "report",
        help="render a saved JSON report (text, markdown, junit)",
        description="Render a report `pgparity validate --format json` saved (or a validation "
        "Job wrote into its ConfigMap) in another format, e.g. Markdown for a pull-request "
        "comment and JUnit for CI from one run. The exit code is the report's verdict, as "
        "`validate` would have returned it.",
    )
    shown.add_argument("--input", required=True, type=Path, metavar="FILE")
    shown.add_argument("--format", choices=FORMATS, default="text")
    shown.add_argument("--output", type=Path, metavar="FILE", help="write the report here")
    shown.set_defaults(handler=cmd_report)


def _add_validate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--migration", required=True, type=Path, metavar="FILE")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dsn", help="staging primary to dry-run against (default: $PGPARITY_DSN)")
    where.add_argument(
        "--local",
        action="store_true",
        help="create a local primary + streaming replica for the run",
    )
    p.add_argument(
        "--replica-dsn", help="streaming replica of --dsn (default: $PGPARITY_REPLICA_DSN)"
    )
    p.add_argument(
        "--report-configmap",
        metavar="NAME",
        help="also write the JSON report into this ConfigMap (namespace: --report-namespace or "
        "$POD_NAMESPACE); the exit code is then 0 whenever a verdict was delivered",
    )
    p.add_argument("--report-namespace", metavar="NS")
    p.add_argument(
        "--seed-sql",
        type=Path,
        metavar="FILE",
        help="with --local: SQL (psql syntax) to load before the run",
    )
    p.add_argument("--lock-timeout", default="5s", help="production lock_timeout (default 5s)")
    p.add_argument(
        "--statement-timeout", default="30s", help="production statement_timeout (default 30s)"
    )
    p.add_argument(
        "--expect-digest",
        metavar="sha256:HEX",
        help="refuse to run (exit 3) unless the schema has this digest",
    )
    p.add_argument("--strict", action="store_true", help="treat warnings as errors")
    p.add_argument(
        "--parity-state",
        choices=PARITY_STATES,
        help="the clone's parity state this run is under, recorded in the report (the "
        "operator passes its StagingClone's ParityVerified)",
    )
    p.add_argument(
        "--no-rerun-check",
        dest="rerun_check",
        action="store_false",
        help="skip re-running the migration to detect non-idempotent statements",
    )
    p.add_argument(
        "--lint-config",
        type=Path,
        metavar="FILE",
        help="lint configuration for the static findings the trace judges (default: the "
        "nearest pgparity.toml or pyproject.toml [tool.pgparity.lint])",
    )
    observe = p.add_argument_group("traffic and observation")
    observe.add_argument(
        "--traffic",
        metavar="auto|FILE",
        help="run traffic during the migration: 'auto' (key reads, updates, inserts on the "
        "tables it touches) or a YAML workload file",
    )
    observe.add_argument(
        "--traffic-clients",
        type=int_in_range(1, MAX_CLIENTS),
        default=4,
        metavar="N",
        help=f"client sessions for --traffic auto (default 4, at most {MAX_CLIENTS})",
    )
    observe.add_argument(
        "--traffic-rate",
        type=number_in_range(0, MAX_RATE),
        default=20.0,
        metavar="N",
        help="transactions per second per client for --traffic auto "
        f"(default 20; 0 = as fast as possible; at most {MAX_RATE:g})",
    )
    observe.add_argument(
        "--hold-lock",
        action="append",
        default=[],
        metavar="TABLE:SECONDS",
        help="a transaction that has read TABLE stays open this long (repeatable)",
    )
    observe.add_argument(
        "--explain",
        type=Path,
        metavar="FILE",
        help="YAML queries to EXPLAIN before and after, with expectations",
    )
    observe.add_argument(
        "--max-lock-wait",
        metavar="DURATION",
        help="budget: longest any session may wait for the migration's locks",
    )
    observe.add_argument(
        "--max-blocked-sessions",
        type=int_in_range(0, MAX_BLOCKED_SESSIONS),
        metavar="N",
        help="budget: most sessions blocked behind the migration at once",
    )
    observe.add_argument(
        "--max-replication-lag",
        metavar="SIZE|DURATION",
        help="budget: largest replication lag, e.g. 64MB or 10s",
    )
    observe.add_argument(
        "--sample-period",
        default="50ms",
        metavar="DURATION",
        help="how often the observer samples (default 50ms)",
    )
    margins = p.add_argument_group("margins")
    margins.add_argument(
        "--headroom",
        type=number_in_range(1, MAX_FACTOR),
        default=DEFAULT_FACTOR,
        metavar="FACTOR",
        help="every statement must fit FACTOR times in statement_timeout, lock_timeout and "
        f"the budgets (default {DEFAULT_FACTOR:g}; 1 = no margin)",
    )
    margins.add_argument(
        "--headroom-severity",
        choices=("error", "warning"),
        default="error",
        help="what a statement closer to a limit than --headroom is (default error)",
    )
    margins.add_argument(
        "--repeat",
        type=int_in_range(1, MAX_REPEAT),
        default=1,
        metavar="N",
        help="run the measured dry-run N times, each rolled back; min/median/max per statement, "
        f"the verdict uses the slowest (default 1, at most {MAX_REPEAT})",
    )
    production = margins.add_mutually_exclusive_group()
    production.add_argument(
        "--production-dsn",
        metavar="DSN",
        help="read production's table sizes (read-only, catalog only) and predict each "
        "statement's duration at production scale (default: $PGPARITY_PRODUCTION_DSN)",
    )
    production.add_argument(
        "--production-sizes",
        type=Path,
        metavar="FILE",
        help="production's table sizes as YAML ({tables: [{name, size, rows}]}), instead of "
        "--production-dsn",
    )
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--output", type=Path, metavar="FILE", help="write the report here")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def cmd_validate(args: argparse.Namespace) -> int:
    # Every argument and input file is checked before anything connects or starts.
    _dsn_from_environment(args)
    _check_combinations(args)
    if args.output:
        check_output_file(args.output, "--output")
    if args.seed_sql:
        check_no_nul(args.seed_sql, SEED_SQL)
    migration = MigrationFile.read(args.migration)
    options = ValidationOptions(
        timeouts=Timeouts(
            lock_timeout=parse_duration(args.lock_timeout, what="--lock-timeout"),
            statement_timeout=parse_duration(args.statement_timeout, what="--statement-timeout"),
        ),
        expect_digest=check_digest_syntax(args.expect_digest) if args.expect_digest else None,
        strict=args.strict,
        check_rerun=args.rerun_check,
        observation=_observation_options(args),
        explain=explain_file(args.explain) if args.explain else None,
        lint=load_config(args.lint_config or find_config(Path.cwd())),
        repeat=args.repeat,
        production=_production_sizes(args),
        headroom=HeadroomPolicy(factor=args.headroom, severity=Severity(args.headroom_severity)),
    )
    progress = progress_printer(args.quiet)
    if args.local:
        report = _validate_local(migration, options, args.seed_sql, progress)
    else:
        report = validate(migration, Target(args.dsn, args.replica_dsn), options, progress)
    # A migration may quote a connection string (dblink, FDW options): never a password in
    # a report, which often ends up as a pull-request comment.
    report = sanitize_strings(report)
    if args.parity_state:
        report = replace(report, parity=args.parity_state)
    _emit_report(report, args.format, args.output)
    if args.report_configmap:
        return _deliver(report, args.report_configmap, args.report_namespace, progress)
    return _exit_code(report)


def cmd_report(args: argparse.Namespace) -> int:
    if args.output:
        check_output_file(args.output, "--output")
    text = read_text(args.input, REPORT)
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise SpecError("", "the document is not a JSON object")
        report = ValidationReport.parse(document)
    except (ValueError, SpecError) as exc:
        # SpecError names the field; a JSON error its line and column.
        raise UsageError(f"--input {args.input} is not a pgparity report: {exc}") from exc
    # Reports are sanitized when written; one from elsewhere (an older version) is too, here.
    _emit_report(sanitize_strings(report), args.format, args.output)
    return _exit_code(report)


def _check_combinations(args: argparse.Namespace) -> None:
    if args.seed_sql and not args.local:
        raise UsageError("--seed-sql needs --local (it loads the local cluster)")
    if args.replica_dsn and args.local:
        raise UsageError("--replica-dsn cannot be combined with --local (which makes its own)")


def _deliver(report: ValidationReport, name: str, namespace: str | None, progress: Progress) -> int:
    """Hand the report to the operator through its ConfigMap (a validation Job's way out)."""
    from pgparity.kube.reports import write_report

    namespace = namespace or os.environ.get("POD_NAMESPACE")
    if not namespace:
        raise UsageError("--report-configmap needs --report-namespace or $POD_NAMESPACE")
    write_report(namespace, name, render(report, "json"))
    progress(f"report written to ConfigMap {namespace}/{name}")
    return EXIT_OK


def _dsn_from_environment(args: argparse.Namespace) -> None:
    """``--dsn``/``--replica-dsn`` from the environment (how Jobs pass Secrets): not argv."""
    if not args.dsn and not args.local:
        args.dsn = os.environ.get("PGPARITY_DSN")
    if not args.replica_dsn and not args.local:
        args.replica_dsn = os.environ.get("PGPARITY_REPLICA_DSN") or None
    if not args.dsn and not args.local:
        raise UsageError("one of the arguments --dsn --local is required (or $PGPARITY_DSN)")


def _observation_options(args: argparse.Namespace) -> ObservationOptions:
    period = parse_duration(args.sample_period, what="--sample-period").seconds
    if not 0.001 <= period <= 10:
        raise UsageError(f"--sample-period {args.sample_period!r} must be between 1ms and 10s")
    return ObservationOptions(
        period=period,
        traffic=_traffic_plan(args),
        hold_locks=tuple(HoldLock.parse(text) for text in args.hold_lock),
        budgets=_budgets(args),
    )


def _traffic_plan(args: argparse.Namespace) -> TrafficPlan | None:
    if not args.traffic:
        return None
    if args.traffic == "auto":
        return TrafficPlan(auto=True, clients=args.traffic_clients, rate=args.traffic_rate)
    document = load_yaml(Path(args.traffic), "--traffic")
    try:
        workload = Workload.parse(document)
        check_workload(workload)
    except UsageError as exc:
        raise UsageError(f"--traffic file {args.traffic}: {exc}") from exc
    return TrafficPlan(workload=workload)


def _budgets(args: argparse.Namespace) -> Budgets:
    lag_bytes = lag_seconds = None
    if args.max_replication_lag:
        if is_duration(args.max_replication_lag):
            lag_seconds = parse_duration(
                args.max_replication_lag, what="--max-replication-lag"
            ).seconds
        else:
            lag_bytes = parse_size(args.max_replication_lag, what="--max-replication-lag").bytes
    wait = (
        parse_duration(args.max_lock_wait, what="--max-lock-wait").seconds
        if args.max_lock_wait
        else None
    )
    if (
        (wait is not None and wait <= 0)
        or (lag_bytes is not None and lag_bytes <= 0)
        or (lag_seconds is not None and lag_seconds <= 0)
    ):
        raise UsageError("budgets must be positive")
    return Budgets(
        max_lock_wait_seconds=wait,
        max_blocked_sessions=args.max_blocked_sessions,
        max_lag_bytes=lag_bytes,
        max_lag_seconds=lag_seconds,
    )


def _production_sizes(args: argparse.Namespace) -> ProductionSizes | None:
    """Production's table sizes: from a file, or read from production (read-only)."""
    if args.production_sizes:
        return production_sizes_file(args.production_sizes)
    dsn = args.production_dsn or os.environ.get("PGPARITY_PRODUCTION_DSN")
    if not dsn:
        return None
    with connect(dsn, role="production", read_only=True) as conn:
        return ProductionSizes(ProductionSource.DSN, read_table_sizes(conn))


def production_sizes_file(path: Path, flag: str = "--production-sizes") -> ProductionSizes:
    try:
        parsed = decode(ProductionTables, load_yaml(path, flag), rules=FILE)
    except UsageError as exc:
        raise UsageError(f"{flag} file {path}: {exc}") from exc
    tables = {
        t.name: TableSize(bytes=parse_size(t.size, what="size").bytes, rows=t.rows)
        for t in parsed.tables
    }
    return ProductionSizes(ProductionSource.FILE, tables)


def explain_file(path: Path, flag: str = "--explain") -> ExplainFile:
    """The queries of an explain file, each checked to be one statement EXPLAIN may run."""
    try:
        parsed = ExplainFile.parse(load_yaml(path, flag))
        check_explain_queries(parsed.queries)
    except UsageError as exc:
        raise UsageError(f"{flag} file {path}: {exc}") from exc
    return parsed


def _validate_local(
    migration: MigrationFile, options: ValidationOptions, seed_sql: Path | None, progress: Progress
) -> ValidationReport:
    # The local cluster runs with the production timeouts as its configuration too, so even
    # statements outside the dry-run's own SET LOCAL meet them.
    settings = {
        "lock_timeout": options.timeouts.lock_timeout.as_setting(),
        "statement_timeout": options.timeouts.statement_timeout.as_setting(),
    }
    with LocalCluster(settings=settings, progress=progress) as cluster:
        if seed_sql:
            progress(f"loading {seed_sql}")
            cluster.run_sql_file(seed_sql)
            cluster.wait_replay()
        return validate(
            migration, Target(cluster.primary_dsn, cluster.replica_dsn), options, progress
        )


def _emit_report(report: ValidationReport, fmt: str, output: Path | None) -> None:
    text = render(report, fmt)
    if output is None:
        sys.stdout.write(text)
        return
    write_atomically(output, text)
    sys.stdout.write(summary_line(report) + f"\nreport written to {output}\n")


def _exit_code(report: ValidationReport) -> int:
    if report.has(Rule.SCHEMA_DRIFT):
        return EXIT_DRIFT
    return EXIT_OK if report.verdict is Verdict.VALIDATED else EXIT_REJECTED
