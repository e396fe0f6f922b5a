"""``--repeat N``: the measured dry-run again, N − 1 more times, each rolled back.

One run on a shared, busy machine is one sample. The repeats run exactly as the first did —
same transaction, same timeouts, same tracing, so their durations compare — but without the
observer, the traffic or the long readers: what other sessions go through is measured once,
on the first run. Statements outside the transaction are rehearsed (and compensated) once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import psycopg

from pgparity.engine.execute.dryrun import (
    Timeouts,
    TransactionalRun,
    run_in_rolled_back_transaction,
)
from pgparity.engine.sql.statements import Statement
from pgparity.models.progress import Progress, quiet
from pgparity.models.report import Runs, RunSample, StatementResult

MAX_REPEAT = 20


def repeat_dry_run(
    conn: psycopg.Connection[Any],
    statements: Sequence[Statement],
    timeouts: Timeouts,
    times: int,
    progress: Progress = quiet,
) -> list[TransactionalRun]:
    """The dry-run ``times`` more times; each one rolled back like the first."""
    runs = []
    for number in range(times):
        progress(f"repeat {number + 2} of {times + 1}: the dry-run again, rolled back")
        runs.append(run_in_rolled_back_transaction(conn, statements, timeouts))
    return runs


def with_repeats(
    results: Sequence[StatementResult], repeats: Sequence[TransactionalRun]
) -> list[StatementResult]:
    """Each statement's runs: the first (already in its margins), then one per repeat where
    the statement ran (a repeat stops at its first error, as the first run would)."""
    samples = _samples_by_statement(repeats)
    updated = []
    for result in results:
        more = samples.get(result.index, [])
        margins = result.margins
        if margins is not None and margins.runs is not None and more:
            runs = Runs.of((*margins.runs.samples, *more))
            result = replace(result, margins=replace(margins, runs=runs))
        updated.append(result)
    return updated


def _samples_by_statement(repeats: Sequence[TransactionalRun]) -> dict[int, list[RunSample]]:
    found: dict[int, list[RunSample]] = {}
    for run in repeats:
        for result in run.results:
            runs = result.margins.runs if result.margins else None
            if result.executed and runs is not None:
                found.setdefault(result.index, []).extend(runs.samples)
    return found
