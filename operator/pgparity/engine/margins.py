"""Headroom: how much of each budget a statement used, and findings where it used too much.

A statement that ran at 91 % of statement_timeout on a clone passed, but production is busier
(cache pressure, concurrent load, autovacuum): a verdict needs a margin. ``--headroom FACTOR``
asks that every statement fit FACTOR times in each of its budgets — statement_timeout (by its
slowest run, and by its duration predicted at production scale), lock_timeout (by how long it
waited for its own locks), and the lock-wait and replication-lag budgets when they are set.
Pure functions over the report's statements.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from pgparity.engine.findings import error_rule, statement_finding
from pgparity.engine.observe.observation import Budgets
from pgparity.errors import UsageError
from pgparity.models.margins import percent
from pgparity.models.quantities import Duration, format_ms, parse_duration
from pgparity.models.report import (
    Finding,
    Headroom,
    Measure,
    Rule,
    Severity,
    StatementMargins,
    StatementResult,
)

DEFAULT_FACTOR = 2.0
MAX_FACTOR = 100.0

# What each budget is called in a finding, and the rule that reports a thin margin on it.
_BUDGET_NAMES = {
    Measure.STATEMENT_TIMEOUT: ("statement_timeout", Rule.TIMEOUT_HEADROOM),
    Measure.LOCK_TIMEOUT: ("lock_timeout, waiting for its locks", Rule.TIMEOUT_HEADROOM),
    Measure.PREDICTED_STATEMENT_TIMEOUT: (
        "statement_timeout at production scale (predicted)",
        Rule.TIMEOUT_HEADROOM,
    ),
    Measure.LOCK_WAIT_BUDGET: ("the lock-wait budget (--max-lock-wait)", Rule.BUDGET_HEADROOM),
    Measure.REPLICATION_LAG_BUDGET: (
        "the replication-lag budget (--max-replication-lag)",
        Rule.BUDGET_HEADROOM,
    ),
}


@dataclass(frozen=True)
class HeadroomPolicy:
    """``factor`` times each budget must fit; 1 asks for no margin beyond the budget itself."""

    factor: float = DEFAULT_FACTOR
    severity: Severity = Severity.ERROR  # what a thin margin is

    def __post_init__(self) -> None:
        if not 1.0 <= self.factor <= MAX_FACTOR:
            raise UsageError(f"--headroom {self.factor:g} must be between 1 and {MAX_FACTOR:g}")

    @property
    def limit(self) -> float:
        """The largest fraction of a budget a statement may use."""
        return 1.0 / self.factor


def statement_headroom(
    result: StatementResult, lock_timeout: Duration, statement_timeout: Duration, budgets: Budgets
) -> Headroom:
    """The fraction of each budget ``result`` used; timeouts as in effect when it ran."""
    seen = result.observed
    margins = result.margins
    slowest = slowest_ms(result)
    timeout_ms = _in_effect(result, "statement_timeout", statement_timeout)
    lock_ms = _in_effect(result, "lock_timeout", lock_timeout)
    predicted = margins.prediction.duration_ms if margins and margins.prediction else None
    return Headroom(
        statement_timeout=_fraction(slowest, timeout_ms),
        lock_timeout=_fraction(_ms(seen.own_lock_wait_seconds) if seen else None, lock_ms),
        lock_wait_budget=_fraction(
            seen.max_lock_wait_seconds if seen else None, budgets.max_lock_wait_seconds
        ),
        replication_lag_budget=_lag_fraction(result, budgets),
        predicted_statement_timeout=_fraction(predicted, timeout_ms),
    )


def with_headroom(
    results: Iterable[StatementResult],
    lock_timeout: Duration,
    statement_timeout: Duration,
    budgets: Budgets,
) -> list[StatementResult]:
    """Each executed statement with its headroom filled in (its other margins kept)."""
    updated = []
    for result in results:
        if result.executed and result.duration_ms is not None:
            headroom = statement_headroom(result, lock_timeout, statement_timeout, budgets)
            margins = result.margins or StatementMargins(headroom=headroom)
            result = replace(result, margins=replace(margins, headroom=headroom))
        updated.append(result)
    return updated


def headroom_findings(results: Iterable[StatementResult], policy: HeadroomPolicy) -> list[Finding]:
    """A finding for each budget a statement used more than 1/factor of.

    A statement that failed is judged by its error, and a fraction above 1 of a budget that
    already has its own rule (a timeout, a lock-wait or lag budget) is that rule's finding.
    """
    found = []
    for result in results:
        if result.margins is None or result.error is not None:
            continue
        for measure in _BUDGET_NAMES:
            fraction = result.margins.headroom.fraction(measure)
            if fraction is None or fraction <= policy.limit:
                continue
            if fraction > 1.0 and measure is not Measure.PREDICTED_STATEMENT_TIMEOUT:
                continue  # over the budget itself: its own finding says so
            found.append(_finding(result, measure, fraction, policy))
    return found


def repeat_findings(results: Iterable[StatementResult]) -> list[Finding]:
    """An error for each statement that failed on a repeat although its first run passed: the
    verdict uses the slowest run, and a timeout on any run is a timeout."""
    found = []
    for result in results:
        runs = result.margins.runs if result.margins else None
        if runs is None or result.error is not None:
            continue
        failed = [s for s in runs.samples if s.failed]
        if not failed:
            continue
        sqlstate = failed[0].sqlstate
        rule, meaning = error_rule(sqlstate)
        message = (
            f"statement {result.index} (line {result.line}) {meaning} on "
            f"{len(failed)} of {len(runs.samples)} runs ({sqlstate or 'client'})"
        )
        found.append(statement_finding(rule, Severity.ERROR, message, result))
    return found


def _finding(
    result: StatementResult, measure: Measure, fraction: float, policy: HeadroomPolicy
) -> Finding:
    budget, rule = _BUDGET_NAMES[measure]
    verb = "is predicted to use" if measure is Measure.PREDICTED_STATEMENT_TIMEOUT else "used"
    basis = _prediction_basis(result) if measure is Measure.PREDICTED_STATEMENT_TIMEOUT else ""
    message = (
        f"statement {result.index} (line {result.line}) {verb} {percent(fraction)} of "
        f"{budget}{basis}; --headroom {policy.factor:g} allows at most {percent(policy.limit)}"
    )
    return statement_finding(rule, policy.severity, message, result)


def _prediction_basis(result: StatementResult) -> str:
    prediction = result.margins.prediction if result.margins else None
    if prediction is None:
        return ""
    tables = ", ".join(t.name for t in prediction.tables)
    return (
        f" ({format_ms(prediction.duration_ms)}: {format_ms(prediction.measured_ms)} measured"
        f" × {prediction.factor:.1f}, {prediction.growth.value} in {tables or 'its tables'})"
    )


def slowest_ms(result: StatementResult) -> float | None:
    """The verdict uses the slowest run."""
    runs = result.margins.runs if result.margins else None
    return runs.max_ms if runs else result.duration_ms


def _in_effect(result: StatementResult, name: str, default: Duration) -> float:
    """The timeout the statement ran under (a migration may SET LOCAL its own), in ms."""
    text = result.settings_in_effect.get(name)
    if text is None:
        return default.milliseconds
    try:
        return parse_duration(text, what=name).milliseconds
    except UsageError:
        return default.milliseconds


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def _fraction(value: float | None, budget: float | None) -> float | None:
    """``value`` as a fraction of ``budget``; None without a value or budget (0 = disabled)."""
    if value is None or not budget:
        return None
    return value / budget


def _lag_fraction(result: StatementResult, budgets: Budgets) -> float | None:
    seen = result.observed
    if seen is None:
        return None
    by_bytes = _fraction(seen.max_replication_lag_bytes, budgets.max_lag_bytes)
    by_seconds = _fraction(seen.max_replication_lag_seconds, budgets.max_lag_seconds)
    return max((f for f in (by_bytes, by_seconds) if f is not None), default=None)
