"""Status as a contract: conditions with reasons, a short phase, the evidence of a verdict.

Pure functions from what was observed (a report, a clone's health) and the previous status to
the next status. A condition keeps its ``lastTransitionTime`` while its status does not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from pgparity.manifests.conditions import set_condition
from pgparity.manifests.readiness import validation_conditions
from pgparity.models.common import Condition, ConditionStatus, Reason
from pgparity.models.margins import headroom_text
from pgparity.models.migration_validation import (
    FindingSummary,
    LockSummary,
    Maxima,
    MigrationValidationStatus,
    ReportRef,
    StatementSummary,
    ValidationPhase,
)
from pgparity.models.report import (
    Observed,
    Rule,
    ValidationReport,
    Verdict,
    condition_reason,
    confirmed_first,
    lint_summary,
)

MAX_STATEMENTS = 500
# A clone that is not Ready is checked again after 5 s (or the resync, if shorter), then twice
# as long each time, up to 5 minutes; a change of its spec checks it at once.
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
MAX_FINDINGS = 50
SQL_WIDTH = 200

# Which findings decide which condition (anything else that is an error fails the dry-run).
DRIFT_RULES: set[str] = {Rule.SCHEMA_DRIFT}
LOCK_RULES: set[str] = {Rule.LOCK_WAIT_BUDGET, Rule.BLOCKED_SESSIONS_BUDGET}
LAG_RULES: set[str] = {Rule.REPLICATION_LAG_BUDGET}
PLAN_RULES: set[str] = {Rule.PLAN_EXPECTATION}
HEADROOM_RULES: set[str] = {Rule.TIMEOUT_HEADROOM, Rule.BUDGET_HEADROOM}


def retry_delay(failures: int, resync_seconds: float) -> float:
    """Seconds until the next check after ``failures`` checks in a row found a problem."""
    first = min(FIRST_RETRY_SECONDS, resync_seconds)
    return min(first * 2.0 ** min(max(failures, 1) - 1, 16), MAX_RETRY_SECONDS)


def report_conditions(
    report: ValidationReport, previous: Sequence[Condition], now: str, generation: int
) -> tuple[Condition, ...]:
    errors = report.errors
    rules = {f.rule for f in errors}
    conditions = tuple(previous)
    seen = report.observations.observed or Observed()

    def judge(type_: str, failing: set[str], ok_reason: str, ok_message: str) -> None:
        nonlocal conditions
        bad = [f for f in errors if f.rule in failing]
        if bad:
            conditions = set_condition(
                conditions,
                type_,
                ConditionStatus.FALSE,
                condition_reason(bad[0].rule),
                bad[0].message,
                now,
                generation,
            )
        else:
            conditions = set_condition(
                conditions, type_, ConditionStatus.TRUE, ok_reason, ok_message, now, generation
            )

    judge(
        "DriftChecked",
        DRIFT_RULES,
        Reason.SCHEMA_AS_EXPECTED,
        f"schema digest {report.target.digest_before or 'not read'}",
    )
    judge(
        "DryRunSucceeded",
        rules - DRIFT_RULES - LOCK_RULES - LAG_RULES - PLAN_RULES - HEADROOM_RULES,
        Reason.DRY_RUN_SUCCEEDED,
        "every statement ran and the schema came back unchanged",
    )
    judge(
        "LocksWithinBudget",
        LOCK_RULES,
        Reason.WITHIN_BUDGET,
        f"longest lock wait {_rounded(seen.max_lock_wait_seconds)} s",
    )
    judge(
        "ReplicationLagWithinBudget",
        LAG_RULES,
        Reason.WITHIN_BUDGET,
        f"largest lag {seen.max_replication_lag_bytes} bytes",
    )
    judge("PlansAsExpected", PLAN_RULES, Reason.PLANS_AS_EXPECTED, _plan_message(report))
    judge("WithinHeadroom", HEADROOM_RULES, Reason.WITHIN_HEADROOM, _headroom_message(report))
    validated = report.verdict is Verdict.VALIDATED
    summary = errors[0].message if errors else f"{len(report.warnings)} warnings"
    return set_condition(
        conditions,
        "Validated",
        ConditionStatus.TRUE if validated else ConditionStatus.FALSE,
        Reason.VALIDATED if validated else Reason.REJECTED,
        summary,
        now,
        generation,
    )


def _rounded(seconds: float | None) -> float | None:
    """As the report writes it (to the millisecond's thousandth)."""
    return None if seconds is None else round(seconds, 3)


def _plan_message(report: ValidationReport) -> str:
    seen = report.observations.observed
    plans = seen.plans if seen is not None else ()
    changed = [p.name for p in plans if p.changed]
    if not plans:
        return "no queries to explain"
    return f"plans changed: {', '.join(changed)}" if changed else "no plan changed"


def _headroom_message(report: ValidationReport) -> str:
    factor = report.margins.headroom_factor if report.margins else None
    if factor is None:
        return "no headroom asked for"
    return f"every statement fits {factor:g} times in its timeouts and budgets"


def statement_summaries(report: ValidationReport) -> tuple[StatementSummary, ...]:
    summaries = []
    for s in report.statements[:MAX_STATEMENTS]:
        flat = " ".join(s.sql.split())
        summaries.append(
            StatementSummary(
                index=s.index,
                line=s.line,
                sql=flat if len(flat) <= SQL_WIDTH else flat[: SQL_WIDTH - 1] + "…",
                transactional=s.transactional,
                executed=s.executed,
                duration_ms=s.duration_ms,
                wal_bytes=s.wal_bytes,
                locks=tuple(
                    LockSummary(lock.relation, lock.mode, lock.held_ms) for lock in s.locks[:64]
                ),
                rewrites=s.rewrites[:64],
                error=f"{s.error.sqlstate or ''} {s.error.message}".strip() if s.error else None,
                max_blocked_sessions=s.observed.max_blocked_sessions if s.observed else None,
                max_replication_lag_bytes=s.observed.max_replication_lag_bytes
                if s.observed
                else None,
                headroom=headroom_text(s.margins.headroom) or None if s.margins else None,
                predicted_duration_ms=s.margins.prediction.duration_ms
                if s.margins and s.margins.prediction
                else None,
            )
        )
    return tuple(summaries)


def report_maxima(report: ValidationReport) -> Maxima:
    seen = report.observations.observed or Observed()
    # A quantity the observer could not observe is null in the report; the status keeps its
    # numeric shape, and the report's observation_gaps (and the findings) say what is unknown.
    return Maxima(
        lock_wait_seconds=_rounded(seen.max_lock_wait_seconds) or 0.0,
        lock_hold_seconds=round(report.observations.max_lock_hold_ms, 3) / 1000,
        blocked_sessions=seen.max_blocked_sessions or 0,
        replication_lag_bytes=seen.max_replication_lag_bytes or 0,
        replication_lag_seconds=_rounded(seen.max_replication_lag_seconds) or 0.0,
    )


def finding_summaries(report: ValidationReport) -> tuple[FindingSummary, ...]:
    ordered = confirmed_first(report.findings)  # confirmed by the trace, then errors
    return tuple(
        FindingSummary(
            rule=str(f.rule),
            severity=f.severity.value,
            message=f.message[:1024],
            statement=f.statement,
        )
        for f in ordered[:MAX_FINDINGS]
    )


def completed_status(
    previous: MigrationValidationStatus,
    report: ValidationReport,
    *,
    now: str,
    generation: int,
    key: str,
    report_ref: ReportRef,
    job_name: str,
    started_at: str | None,
    duration_seconds: float | None,
) -> MigrationValidationStatus:
    """The verdict with its evidence, bound to the migration's checksum and the clone's digest."""
    status = replace(
        previous,
        phase=ValidationPhase.COMPLETED,
        verdict=report.verdict,
        conditions=report_conditions(report, previous.conditions, now, generation),
        statements=statement_summaries(report),
        findings=finding_summaries(report),
        errors=len(report.errors),
        warnings=len(report.warnings),
        maxima=report_maxima(report),
        report_ref=report_ref,
        migration_checksum=f"sha256:{report.migration.sha256}",
        validation_key=key,
        clone_digest=report.target.digest_before,
        job_name=job_name,
        started_at=started_at,
        completed_at=now,
        duration_seconds=duration_seconds,
        message=f"{report.verdict.value}: {len(report.errors)} errors, "
        f"{len(report.warnings)} warnings"
        + (f"; lint: {lint_summary(report)}" if report.lint else ""),
        observed_generation=generation,
    )
    return with_readiness(status, now, generation)


def progress_status(
    previous: MigrationValidationStatus,
    phase: ValidationPhase,
    reason: str,
    message: str,
    *,
    now: str,
    generation: int,
    key: str | None = None,
    job_name: str | None = None,
    started_at: str | None = None,
    failed: bool = False,
    queue_position: int | None = None,
) -> MigrationValidationStatus:
    """Waiting, running or failed: no verdict without evidence (a failure clears it).

    A failure keeps the time it was first reported while it stays the same failure, so
    reconciling a failed validation again changes nothing.
    """
    conditions = set_condition(
        previous.conditions,
        "Validated",
        ConditionStatus.FALSE if failed else ConditionStatus.UNKNOWN,
        reason,
        message,
        now,
        generation,
    )
    status = replace(
        previous,
        phase=phase,
        verdict=None if failed or phase is not ValidationPhase.COMPLETED else previous.verdict,
        conditions=conditions,
        validation_key=key if key is not None else previous.validation_key,
        job_name=job_name if job_name is not None else previous.job_name,
        started_at=started_at if started_at is not None else previous.started_at,
        completed_at=_failed_at(previous, message, now) if failed else previous.completed_at,
        message=message,
        queue_position=queue_position,
        observed_generation=generation,
    )
    return with_readiness(status, now, generation)


def with_readiness(
    status: MigrationValidationStatus, now: str, generation: int
) -> MigrationValidationStatus:
    """``status`` with the Ready, Reconciling and Stalled conditions generic tools read."""
    return replace(status, conditions=validation_conditions(status, now, generation))


def _failed_at(previous: MigrationValidationStatus, message: str, now: str) -> str:
    same = previous.phase is ValidationPhase.FAILED and previous.message == message
    return previous.completed_at if same and previous.completed_at else now
