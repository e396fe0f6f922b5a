"""How close each statement ran to its limits, for people: "41 % of statement_timeout"."""

from __future__ import annotations

from collections.abc import Sequence

from pgparity.models.margins import headroom_text
from pgparity.models.quantities import format_ms
from pgparity.models.report import Prediction, Runs, StatementMargins, StatementResult


def runs_text(runs: Runs) -> str:
    cache = "/".join(s.buffers.cache.value if s.buffers else "?" for s in runs.samples)
    return (
        f"{len(runs.samples)} runs: min {format_ms(runs.min_ms)}, median "
        f"{format_ms(runs.median_ms)}, max {format_ms(runs.max_ms)} (cache {cache})"
    )


def prediction_text(prediction: Prediction) -> str:
    tables = ", ".join(t.name for t in prediction.tables) or "no pre-existing table"
    return (
        f"{format_ms(prediction.measured_ms)} measured → {format_ms(prediction.duration_ms)} "
        f"predicted at production scale (×{prediction.factor:.2f}, {prediction.growth.value}; "
        f"{tables})" + (f" — {prediction.note}" if prediction.note else "")
    )


def margin_lines(s: StatementResult) -> list[str]:
    """The text report's detail lines for a statement's margins."""
    margins: StatementMargins | None = s.margins
    if margins is None:
        return []
    lines = []
    headroom = headroom_text(margins.headroom)
    if headroom:
        lines.append(f"headroom: {headroom}")
    if margins.runs is not None and len(margins.runs.samples) > 1:
        lines.append(f"repeats: {runs_text(margins.runs)}")
    if margins.prediction is not None:
        lines.append(f"scale: {prediction_text(margins.prediction)}")
    return lines


def markdown_margins(statements: Sequence[StatementResult]) -> list[str]:
    """A table of how close each statement ran to its limits (for a PR comment)."""
    rows = [(s, s.margins) for s in statements if s.margins is not None]
    if not rows:
        return []
    lines = [
        "**Margins** (fractions of each budget; the slowest run counts):",
        "",
        "| # | headroom | runs (min / median / max) | cache | predicted at production scale |",
        "|---|---|---|---|---|",
    ]
    for s, margins in rows:
        runs = margins.runs
        spread = (
            f"{format_ms(runs.min_ms)} / {format_ms(runs.median_ms)} / {format_ms(runs.max_ms)}"
            if runs
            else ""
        )
        cache = "/".join(x.buffers.cache.value for x in runs.samples if x.buffers) if runs else ""
        predicted = prediction_text(margins.prediction) if margins.prediction else ""
        lines.append(
            f"| {s.index} | {headroom_text(margins.headroom)} | {spread} | {cache} | {predicted} |"
        )
    return [*lines, ""]
