"""``validate``: parse, gate on drift, dry-run under observation, rehearse, compensate, judge.

The order matters: nothing runs if the file does not parse or contains transaction control that
could escape the dry-run; nothing runs if the schema is not the expected one; the dry-run runs
while traffic, long readers and the observer are in place; statements that cannot be rolled
back run only on clones and only after the rolled-back part; the schema digest is checked after
the rollback and again after compensation; plans and re-runs are checked last, in a
transaction of their own, so they never lengthen the locks the migration holds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg

from pgparity.engine import findings as rules
from pgparity.engine.evidence import (
    EvidenceThresholds,
    TraceContext,
    judge,
    relation_rows,
    verdict_findings,
)
from pgparity.engine.execute.dryrun import (
    AfterChecks,
    Timeouts,
    TransactionalRun,
    explain_in_rolled_back_transaction,
    run_after_checks,
    run_in_rolled_back_transaction,
)
from pgparity.engine.execute.outside import OutsideRun, not_executed, rehearse_outside_transaction
from pgparity.engine.execute.repeat import repeat_dry_run, with_repeats
from pgparity.engine.execute.residue import (
    ResidueSnapshot,
    put_back,
    release_advisory_locks,
    take_residue_snapshot,
)
from pgparity.engine.execute.residue import compare as residue_compare
from pgparity.engine.margins import (
    HeadroomPolicy,
    headroom_findings,
    repeat_findings,
    with_headroom,
)
from pgparity.engine.observe.observation import ObservationOptions, ObservationResult, ObservedRun
from pgparity.engine.observe.plans import check_explain_queries, compare
from pgparity.engine.observe.traffic import check_workload, existing_tables
from pgparity.engine.scale import ProductionSizes, ScaleInputs, with_predictions
from pgparity.engine.sql.statements import ParsedMigration, parse_migration
from pgparity.errors import UsageError
from pgparity.inputs import MIGRATION, check_text, read_text
from pgparity.lint import FileReport, LintConfig, lint_source
from pgparity.models.migration_validation import ExplainQuery
from pgparity.models.progress import Progress, quiet
from pgparity.models.report import (
    Finding,
    MarginSettings,
    MigrationInfo,
    NotExecuted,
    Observations,
    PlanComparison,
    PlanOutcome,
    Rule,
    Severity,
    SideEffect,
    StatementResult,
    StaticFinding,
    TargetInfo,
    ValidationReport,
    apply_strictness,
    by_judgement,
    decide_verdict,
)
from pgparity.models.workload import ExplainFile
from pgparity.pg.clone import database_settings, is_clone
from pgparity.pg.connection import connect, describe_dsn
from pgparity.pg.replication import system_identifier
from pgparity.pg.sizes import TableSize, read_table_sizes
from pgparity.schema.digest import CatalogSnapshot, diff_snapshots, take_snapshot

DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class MigrationFile:
    path: str
    text: str
    sha256: str

    def __post_init__(self) -> None:
        # However the text arrived (a file, a ConfigMap, a test), a control character in it
        # would make the parser and the server see different statements.
        check_text(self.text, f"migration file {self.path}", allowed=MIGRATION.allowed)

    @classmethod
    def read(cls, path: Path) -> MigrationFile:
        """Read a migration; missing, unreadable, empty, non-UTF-8, oversized files and files
        with control characters (a NUL hides the rest from the parser) are bad input."""
        text = read_text(path, MIGRATION)
        if not text.strip():
            raise UsageError(f"migration file {path} is empty")
        data = text.encode("utf-8")  # the file's own bytes: UTF-8 decoding is lossless
        return cls(path=str(path), text=text, sha256=hashlib.sha256(data).hexdigest())


@dataclass(frozen=True)
class Target:
    dsn: str
    replica_dsn: str | None = None


@dataclass(frozen=True)
class ValidationOptions:
    timeouts: Timeouts
    expect_digest: str | None = None
    strict: bool = False
    check_rerun: bool = True
    observation: ObservationOptions = field(default_factory=ObservationOptions)
    explain: ExplainFile | None = None
    lint: LintConfig = field(default_factory=LintConfig)
    evidence: EvidenceThresholds = field(default_factory=EvidenceThresholds)
    headroom: HeadroomPolicy = field(default_factory=HeadroomPolicy)
    repeat: int = 1  # runs of the measured dry-run; the verdict uses the slowest
    production: ProductionSizes | None = None  # predict durations at production scale

    @property
    def margin_settings(self) -> MarginSettings:
        production = self.production
        return MarginSettings(
            headroom_factor=self.headroom.factor,
            headroom_severity=self.headroom.severity,
            repeat=self.repeat,
            production=production.source if production else None,
            production_tables=len(production.tables) if production else 0,
        )


@dataclass
class _Run:
    """Everything measured in one validation, gathered for the findings and the report."""

    before: CatalogSnapshot
    after: CatalogSnapshot
    transactional: TransactionalRun
    outside: OutsideRun
    after_outside: CatalogSnapshot | None
    observation: ObservationResult
    checks: AfterChecks
    plans: list[PlanComparison]
    results: list[StatementResult]
    side_effects: list[SideEffect]
    rows: dict[str, int | None] = field(default_factory=dict)  # of the relations lint names


def check_digest_syntax(digest: str) -> str:
    if not DIGEST_PATTERN.match(digest):
        raise UsageError(f"{digest!r} is not a schema digest (expected sha256: and 64 hex digits)")
    return digest


def validate(
    migration: MigrationFile,
    target: Target,
    options: ValidationOptions,
    progress: Progress = quiet,
) -> ValidationReport:
    check_inputs(options)
    parsed = parse_migration(migration.text)
    static = rules.static_findings(parsed)
    linted = lint_source(migration.path, migration.text, options.lint)
    unjudged = judge(linted, parsed.statements, (), _untraced(options))
    info = MigrationInfo(path=migration.path, sha256=migration.sha256)
    errors = [f for f in static if f.severity is Severity.ERROR]
    if errors:
        progress("rejected before execution: " + errors[0].message)
        return _report(info, TargetInfo(), options, _unexecuted(parsed), static, lint=unjudged)
    with connect(target.dsn, role="target", user_sql=True) as conn:
        server_version, clone = _inspect_target(conn, target)
        _check_traffic_commits(options, clone, target)
        progress(
            f"target {describe_dsn(target.dsn)}: PostgreSQL {server_version}"
            f"{', a pgparity clone' if clone else ''}"
        )
        before = take_snapshot(conn)
        target_info = TargetInfo(
            server_version=server_version,
            digest_before=before.digest,
            is_clone=clone,
            replica=target.replica_dsn is not None,
        )
        if options.expect_digest and before.digest != options.expect_digest:
            drift = Finding(
                rule=Rule.SCHEMA_DRIFT,
                severity=Severity.ERROR,
                message=f"the target's schema digest is {before.digest}, "
                f"expected {options.expect_digest}; nothing was executed",
            )
            return _report(info, target_info, options, _unexecuted(parsed), [drift], lint=unjudged)
        seed_state = database_settings(conn).get("seed_state")
        if seed_state not in (None, "complete"):
            partial = Finding(
                rule=Rule.SEED_INCOMPLETE,
                severity=Severity.ERROR,
                message=f"the target's seed did not finish (pgparity.seed_state = {seed_state}):"
                " its data is partial, so its costs predict nothing; nothing was executed",
            )
            return _report(
                info, target_info, options, _unexecuted(parsed), [partial], lint=unjudged
            )
        rows = relation_rows(conn, [f.relation for f in linted.findings if f.relation])
        run = _measured_run(conn, parsed, target, options, before, clone, progress)
        run.rows = rows
    target_info = TargetInfo(
        server_version=server_version,
        digest_before=before.digest,
        digest_after=run.after.digest,
        digest_after_compensation=run.after_outside.digest if run.after_outside else None,
        is_clone=clone,
        replica=target.replica_dsn is not None,
    )
    judged = _judged(linted, parsed, run, options)
    found = [*static, *_findings(run, options), *verdict_findings(judged)]
    return _report(info, target_info, options, run.results, found, run, lint=judged)


def _judged(
    linted: FileReport, parsed: ParsedMigration, run: _Run, options: ValidationOptions
) -> tuple[StaticFinding, ...]:
    """The lint findings, each with what the trace saw and its judgement."""
    observation = options.observation
    context = TraceContext(
        created=frozenset(run.transactional.created_relations),
        rows=run.rows,
        contended=observation.traffic is not None or bool(observation.hold_locks),
        thresholds=options.evidence,
    )
    return judge(linted, parsed.statements, run.results, context)


def _untraced(options: ValidationOptions) -> TraceContext:
    return TraceContext(created=frozenset(), rows={}, contended=False, thresholds=options.evidence)


def check_inputs(options: ValidationOptions) -> None:
    """Explain queries and traffic statements are user SQL too: each must be one statement
    with no effect ROLLBACK cannot undo, or the run is bad input before anything runs."""
    if options.explain is not None:
        check_explain_queries(options.explain.queries)
    traffic = options.observation.traffic
    if traffic is not None and traffic.workload is not None:
        check_workload(traffic.workload)


def _check_traffic_commits(options: ValidationOptions, clone: bool, target: Target) -> None:
    traffic = options.observation.traffic
    if traffic is None or traffic.workload is None or not traffic.workload.commit or clone:
        return
    raise UsageError(
        f"the traffic workload says commit: true, which writes for real; "
        f"{describe_dsn(target.dsn)} is not a pgparity clone, so pgparity refuses"
    )


def _measured_run(
    conn: psycopg.Connection[Any],
    parsed: ParsedMigration,
    target: Target,
    options: ValidationOptions,
    before: CatalogSnapshot,
    clone: bool,
    progress: Progress,
) -> _Run:
    queries = options.explain.queries if options.explain else ()
    analyze_plans = bool(options.explain and options.explain.analyze)
    residue_before = take_residue_snapshot(conn)
    clone_sizes = read_table_sizes(conn) if options.production else {}
    plans_before = explain_in_rolled_back_transaction(
        conn, queries, options.timeouts, analyze=analyze_plans
    )
    references = [name for s in parsed.statements for name in s.references]
    with ObservedRun(
        target.dsn,
        target.replica_dsn,
        options.observation,
        conn.info.backend_pid,
        references,
        progress,
    ) as observed:
        tx = run_in_rolled_back_transaction(
            conn, parsed.transactional, options.timeouts, mark=observed.mark, progress=progress
        )
        after = take_snapshot(conn)
        outside, after_outside = _outside_phase(
            parsed, target, options, before, tx, clone, observed, progress
        )
    results = sorted([*tx.results, *outside.results], key=lambda r: r.index)
    observation = observed.result(results)
    results = [
        replace(r, observed=observation.summary.statements.get(r.index)) if r.executed else r
        for r in results
    ]
    results = _with_margins(conn, parsed, options, tx, results, clone_sizes, progress)
    checks = AfterChecks()
    if not tx.failed and (options.check_rerun or queries):
        touched = existing_tables(conn, sorted(tx.touched_relations))
        checks = run_after_checks(
            conn,
            parsed.statements,
            options.timeouts,
            rerun=options.check_rerun,
            explain=queries,
            explain_analyze=analyze_plans,
            analyze_tables=[t.ident for t in touched]
            if options.explain and options.explain.analyze_tables
            else [],
            progress=progress,
        )
    plans = [_compare_plan(q, plans_before, checks, tx) for q in queries]
    side_effects = _side_effects(conn, residue_before, options, clone)
    return _Run(
        before, after, tx, outside, after_outside, observation, checks, plans, results, side_effects
    )


def _with_margins(
    conn: psycopg.Connection[Any],
    parsed: ParsedMigration,
    options: ValidationOptions,
    tx: TransactionalRun,
    results: list[StatementResult],
    clone_sizes: Mapping[str, TableSize],
    progress: Progress,
) -> list[StatementResult]:
    """The repeats, the production-scale predictions, and then the headroom of each statement
    (judged on the slowest run and on the prediction)."""
    if options.repeat > 1 and not tx.failed:
        repeats = repeat_dry_run(
            conn, parsed.transactional, options.timeouts, options.repeat - 1, progress
        )
        results = with_repeats(results, repeats)
    if options.production is not None:
        created = frozenset(tx.created_relations)
        scale = ScaleInputs(clone=clone_sizes, production=options.production, created=created)
        results = with_predictions(results, parsed.statements, scale)
    return with_headroom(
        results,
        options.timeouts.lock_timeout,
        options.timeouts.statement_timeout,
        options.observation.budgets,
    )


def _side_effects(
    conn: psycopg.Connection[Any],
    before: ResidueSnapshot,
    options: ValidationOptions,
    clone: bool,
) -> list[SideEffect]:
    """What the run left that ROLLBACK did not undo; on clones sequences are put back (unless
    committed traffic wrote rows that use their values) and replication slots dropped."""
    left = release_advisory_locks(conn)
    moved = residue_compare(before, take_residue_snapshot(conn))
    if clone:
        traffic = options.observation.traffic
        committed = bool(traffic and traffic.workload and traffic.workload.commit)
        moved = put_back(conn, before, moved, sequences=not committed)
    return [*moved, *left]


def _compare_plan(
    query: ExplainQuery,
    before: dict[str, PlanOutcome],
    checks: AfterChecks,
    tx: TransactionalRun,
) -> PlanComparison:
    after = checks.plans.get(query.name)
    if after is None:
        why = checks.problem or (
            "the migration failed" if tx.failed else "the migration could not be re-applied"
        )
        after = PlanOutcome(error=why)
    return compare(query, before[query.name], after)


def _inspect_target(conn: psycopg.Connection[Any], target: Target) -> tuple[str, bool]:
    row = conn.execute("SELECT current_setting('server_version'), pg_is_in_recovery()").fetchone()
    assert row is not None
    if row[1]:
        raise UsageError(
            f"target {describe_dsn(target.dsn)} is a read-only replica; --dsn must name the primary"
        )
    if target.replica_dsn:
        _check_replica(conn, target)
    return str(row[0]), is_clone(conn)


def _check_replica(primary: psycopg.Connection[Any], target: Target) -> None:
    """The replica must be in recovery and share the primary's system identifier."""
    assert target.replica_dsn is not None
    with connect(target.replica_dsn, role="replica") as replica:
        row = replica.execute("SELECT pg_is_in_recovery()").fetchone()
        if not row or not row[0]:
            raise UsageError(
                f"--replica-dsn {describe_dsn(target.replica_dsn)} is not a replica "
                "of the target: it is not in recovery"
            )
        mine, theirs = system_identifier(primary), system_identifier(replica)
    if mine is not None and theirs is not None and mine != theirs:
        raise UsageError(
            f"--replica-dsn {describe_dsn(target.replica_dsn)} is not a replica of "
            "the target: it belongs to another cluster (system identifiers differ)"
        )


def _outside_phase(
    parsed: ParsedMigration,
    target: Target,
    options: ValidationOptions,
    before: CatalogSnapshot,
    run: TransactionalRun,
    clone: bool,
    observed: ObservedRun,
    progress: Progress,
) -> tuple[OutsideRun, CatalogSnapshot | None]:
    if not parsed.outside:
        return OutsideRun(), None
    if not clone:
        return OutsideRun(results=not_executed(parsed.outside, NotExecuted.NOT_A_CLONE)), None
    outside = rehearse_outside_transaction(
        target.dsn,
        parsed.outside,
        options.timeouts,
        before,
        run,
        mark=observed.mark,
        on_session=observed.add_migration_session,
        progress=progress,
    )
    with connect(target.dsn, role="clone") as conn:
        return outside, take_snapshot(conn)


def _findings(run: _Run, options: ValidationOptions) -> list[Finding]:
    results = run.results
    created = run.transactional.created_relations
    found = [
        *rules.stop_findings(run.transactional.refusals, run.transactional.lexing_changes),
        *rules.error_findings(results),
        *rules.digest_findings(
            Rule.DIGEST_MISMATCH, "after the rollback", diff_snapshots(run.before, run.after)
        ),
        *rules.invalid_index_findings(run.outside.invalid_indexes),
        *[
            Finding(rule=Rule.COMPENSATION_FAILED, severity=Severity.ERROR, message=failure)
            for failure in run.outside.compensation_failures
        ],
    ]
    if run.after_outside is not None:
        found += rules.digest_findings(
            Rule.COMPENSATION_INCOMPLETE,
            "after undoing the statements run outside the transaction",
            diff_snapshots(run.before, run.after_outside),
        )
    found += [
        *rules.budget_findings(results, options.observation.budgets),
        *rules.observation_gap_findings(run.observation.gaps, options.observation.budgets),
        *rules.plan_findings(run.plans),
        *rules.blocking_lock_findings(results, created),
        *rules.blocked_sessions_findings(results, options.observation.budgets),
        *rules.traffic_findings(run.observation.traffic),
        *rules.rewrite_findings(results, created),
        *rules.rerun_findings(run.checks.rerun_failures, results),
        *rules.not_executed_findings(results),
        *rules.side_effect_findings(run.side_effects),
        *repeat_findings(results),
        *headroom_findings(results, options.headroom),
    ]
    return found


def _unexecuted(parsed: ParsedMigration) -> list[StatementResult]:
    reason = NotExecuted.REJECTED_BEFORE_EXECUTION
    return [s.result(executed=False, not_executed_reason=reason) for s in parsed.statements]


def _report(
    info: MigrationInfo,
    target: TargetInfo,
    options: ValidationOptions,
    results: list[StatementResult],
    found: list[Finding],
    run: _Run | None = None,
    *,
    lint: tuple[StaticFinding, ...] = (),
) -> ValidationReport:
    final = apply_strictness(found, options.strict)
    executed = [r for r in results if r.executed]
    blocking_holds = [
        lock.held_ms or 0.0
        for r in executed
        for lock in r.locks
        if lock.mode in rules.BLOCKING_MODES
    ]
    observations = Observations(
        statements_executed=len(executed),
        total_duration_ms=sum(r.duration_ms or 0.0 for r in executed),
        wal_bytes=sum(r.wal_bytes or 0 for r in executed),
        max_lock_hold_ms=max(blocking_holds, default=0.0),
        rewritten_relations=tuple(sorted({rel for r in executed for rel in r.rewrites})),
        observed=run.observation.observed(run.plans) if run is not None else None,
    )
    return ValidationReport(
        verdict=decide_verdict(final),
        migration=info,
        target=target,
        settings=options.timeouts.as_settings(),
        statements=tuple(results),
        findings=final,
        observations=observations,
        strict=options.strict,
        side_effects=tuple(run.side_effects) if run is not None else (),
        lint=tuple(by_judgement(lint)),
        margins=options.margin_settings,
    )
