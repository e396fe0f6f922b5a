"""How margins read, in a report or a status: "41 % of statement_timeout"."""

from __future__ import annotations

from pgparity.models.report import Headroom, Measure


def percent(fraction: float) -> str:
    """``0.41`` → ``41 %``; small fractions keep a decimal (``0.4 %``)."""
    value = fraction * 100
    return f"{value:.1f} %" if value < 10 else f"{value:.0f} %"


# How each fraction reads in a report or a status.
BUDGET_LABELS = {
    Measure.STATEMENT_TIMEOUT: "of statement_timeout",
    Measure.LOCK_TIMEOUT: "of lock_timeout waited",
    Measure.LOCK_WAIT_BUDGET: "of the lock-wait budget",
    Measure.REPLICATION_LAG_BUDGET: "of the replication-lag budget",
    Measure.PREDICTED_STATEMENT_TIMEOUT: "of statement_timeout at production scale",
}


def headroom_text(headroom: Headroom) -> str:
    """``41 % of statement_timeout, 3.0 % of lock_timeout waited``; only budgets that exist."""
    return ", ".join(
        f"{percent(fraction)} {label}"
        for measure, label in BUDGET_LABELS.items()
        if (fraction := headroom.fraction(measure)) is not None
    )
