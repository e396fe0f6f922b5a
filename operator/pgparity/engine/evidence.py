"""Static findings judged by the trace: each lint finding, with what the dry-run saw on the
clone, is confirmed or dismissed.

Thresholds (README, "Static findings and the trace"):

- **dismissed** when the relation was created by the migration itself; when the statement took
  no lock that blocks the application on it; or when the statement held it for less than
  ``hold_ms`` (1 s) of its own, no session was blocked and the relation was not rewritten with
  at least ``rows`` (1 000 000) rows in it;
- **confirmed** otherwise: the statement's own work under the lock took ``hold_ms`` or longer,
  or sessions were blocked behind it, or the relation was rewritten with ``rows`` or more;
  and, whatever the timing, when the statement ran out of lock_timeout or statement_timeout.
  The statement's own time is what the rule is about: a lock stays held until the transaction
  ends, and the statements after it that prolong it are work-after-dangerous-lock's concern;
- findings about a queue (missing-lock-timeout) need contention to be judged: with traffic or
  a held lock they are confirmed when the statement waited or made others wait, and dismissed
  otherwise; on an idle clone they are not observed;
- findings about a missing timeout are dismissed when the trace read that timeout in effect
  for the statement (the run applies production's, ``--lock-timeout``/``--statement-timeout``:
  the migration runs with it there too), even when the statement then ran out of the other
  timeout: a statement_timeout firing says nothing about the lock queue;
- compatibility findings (drops, renames) do not depend on size: confirmed whenever the
  relation existed before, dismissed when the migration created it;
- rules about types and transactions are not judged: there is nothing to measure.

Confirmed findings about locks feed the verdict (errors; an acknowledged one stays a warning);
confirmed compatibility findings are warnings; dismissed ones never count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from pgparity.engine.sql.statements import Statement
from pgparity.lint import CATALOG, Category, FileReport, LintFinding, Rule
from pgparity.lint.locks import LockMode
from pgparity.models.quantities import format_ms
from pgparity.models.report import (
    Finding,
    Judgement,
    LockRecord,
    Severity,
    StatementResult,
    StaticFinding,
    TraceEvidence,
)

# Rules whose hazard is the lock queue, not the hold: judged by waits, under contention.
QUEUE_RULES = {Rule.MISSING_LOCK_TIMEOUT}
# Rules about a setting: dismissed when the trace read it in effect for the statement.
SETTING_RULES = {
    Rule.MISSING_LOCK_TIMEOUT: "lock_timeout",
    Rule.MISSING_STATEMENT_TIMEOUT: "statement_timeout",
}
# Errors that are the hazard itself: the statement waited or ran too long.
TIMEOUTS: Mapping[type[psycopg.Error], str] = {
    pg_errors.LockNotAvailable: "waited for its lock past lock_timeout",
    pg_errors.QueryCanceled: "ran past statement_timeout",
}
COUNT_LIMIT_BYTES = 64 * 1024 * 1024  # count(*) a never-analyzed relation only up to this size


@dataclass(frozen=True)
class EvidenceThresholds:
    hold_ms: float = 1000.0  # a lock held this long is felt by the application
    rows: int = 1_000_000  # rewriting this many rows is not free, however fast the clone


@dataclass(frozen=True)
class TraceContext:
    """What the whole run knows: relations it created, their sizes, whether it had contention."""

    created: frozenset[str]
    rows: Mapping[str, int | None]
    contended: bool  # traffic or held locks: lock queues could form
    thresholds: EvidenceThresholds = EvidenceThresholds()


# --- sizes, read before the migration runs ---------------------------------------------------

_SIZES = """
SELECT r.name, n.nspname, c.relname, c.reltuples::float8,
       pg_catalog.pg_relation_size(c.oid)
FROM pg_catalog.unnest(%(names)s::text[]) AS r(name)
JOIN pg_catalog.pg_class i ON i.oid = pg_catalog.to_regclass(r.name)
LEFT JOIN pg_catalog.pg_index x ON x.indexrelid = i.oid
JOIN pg_catalog.pg_class c ON c.oid = coalesce(x.indrelid, i.oid)
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""


def relation_rows(conn: psycopg.Connection[Any], names: Iterable[str]) -> dict[str, int | None]:
    """Rows of each named relation (an index: of its table), from pg_class.reltuples; a
    relation never analyzed is counted when small, unknown (None) when large. Names that do
    not resolve are left out."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    rows: dict[str, int | None] = {}
    for name, schema, table, tuples, size in conn.execute(_SIZES, {"names": wanted}).fetchall():
        rows[str(name)] = _rows(conn, str(schema), str(table), float(tuples), int(size))
    return rows


def _rows(
    conn: psycopg.Connection[Any], schema: str, table: str, tuples: float, size: int
) -> int | None:
    if tuples >= 0:
        return int(tuples)
    if size == 0:
        return 0
    if size > COUNT_LIMIT_BYTES:
        return None
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
    ).fetchone()
    return int(row[0]) if row else None


# --- the join --------------------------------------------------------------------------------


def judge(
    report: FileReport,
    statements: Sequence[Statement],
    results: Sequence[StatementResult],
    context: TraceContext,
) -> tuple[StaticFinding, ...]:
    """Every lint finding with its judgement. Statements are matched by where they start in
    the file (the dry-run may number them differently: it unwraps BEGIN … COMMIT)."""
    by_start = {(s.line, s.column): s.index for s in statements}
    by_index = {r.index: r for r in results}
    judged = []
    for finding in report.findings:
        index = by_start.get(finding.statement_start) if finding.statement_start else None
        result = by_index.get(index) if index is not None else None
        judged.append(_static(finding, index, result, context))
    return tuple(judged)


def _static(
    finding: LintFinding, index: int | None, result: StatementResult | None, context: TraceContext
) -> StaticFinding:
    judgement, reason, evidence = _judgement(finding, result, context)
    return StaticFinding(
        rule=finding.rule.value,
        severity=finding.severity,
        message=finding.message,
        judgement=judgement,
        reason=reason,
        statement=index,
        line=finding.line,
        relation=finding.relation,
        lock=finding.lock.value if finding.lock else None,
        evidence=evidence,
        acknowledged=finding.acknowledged.reason if finding.acknowledged else None,
    )


Judged = tuple[Judgement, str, TraceEvidence | None]


def _judgement(
    finding: LintFinding, result: StatementResult | None, context: TraceContext
) -> Judged:
    category = CATALOG[finding.rule].category
    if category not in (Category.LOCKING, Category.COMPATIBILITY):
        return Judgement.NOT_JUDGED, _NOT_JUDGED[category], None
    relation = finding.relation
    if relation is not None and relation in context.created:
        evidence = TraceEvidence(relation=relation, created=True)
        return Judgement.DISMISSED, f"{relation} was created by this migration", evidence
    if result is None or not result.executed:
        why = result.not_executed_reason if result is not None else None
        return Judgement.NOT_OBSERVED, f"the statement did not run ({why or 'not reached'})", None
    evidence = _evidence(finding, result, context)
    # Before the failure: a statement that ran out of a timeout had that timeout in effect.
    setting = SETTING_RULES.get(finding.rule)
    value = result.settings_in_effect.get(setting) if setting else None
    if setting and _enabled(value):
        return Judgement.DISMISSED, f"{setting} = {value} was in effect", evidence
    if result.error is not None and finding.rule not in QUEUE_RULES:
        return _failed(finding, result)
    if category is Category.COMPATIBILITY:
        if relation is None:  # a type, function or schema: the trace follows relations only
            return Judgement.NOT_JUDGED, "not a relation: the trace follows relations", None
        return Judgement.CONFIRMED, f"{relation} exists{_rows_text(evidence.rows)}", evidence
    if finding.rule in QUEUE_RULES:
        return _queue(evidence, result, context)
    return _by_thresholds(finding, evidence, context.thresholds)


_NOT_JUDGED = {
    Category.TYPES: "a choice of type or design: nothing for the trace to measure",
    Category.TRANSACTIONS: "transaction structure: validate checks its own transaction control",
    Category.META: "about the file and its acknowledgements",
}


def _timeout(sqlstate: str | None) -> str | None:
    """What a timeout's error class (by the report's SQLSTATE) says the statement did."""
    try:
        return TIMEOUTS.get(pg_errors.lookup(sqlstate or ""))
    except KeyError:  # not a SQLSTATE PostgreSQL defines
        return None


def _failed(finding: LintFinding, result: StatementResult) -> Judged:
    assert result.error is not None
    meaning = _timeout(result.error.sqlstate)
    if meaning is not None and CATALOG[finding.rule].category is Category.LOCKING:
        return Judgement.CONFIRMED, f"the statement {meaning}", None
    return Judgement.NOT_OBSERVED, f"the statement failed ({result.error.sqlstate})", None


def _evidence(
    finding: LintFinding, result: StatementResult, context: TraceContext
) -> TraceEvidence:
    lock = _strongest(result.locks, finding.relation)
    mode, held = (lock.mode, lock.held_ms) if lock is not None else (None, None)
    if finding.rule is Rule.WORK_AFTER_DANGEROUS_LOCK and finding.lock is not None:
        # An earlier statement took the lock; this one keeps it held for its own duration.
        mode, held = finding.lock.value, None
    relation = finding.relation or (lock.relation if lock else None)
    seen = result.observed
    return TraceEvidence(
        relation=relation,
        mode=mode,
        rows=context.rows.get(relation) if relation else None,
        held_ms=held,
        statement_ms=result.duration_ms,
        blocked_sessions=seen.max_blocked_sessions if seen else None,
        rewritten=relation is not None and relation in result.rewrites,
    )


def _enabled(timeout: str | None) -> bool:
    """A timeout as current_setting() shows it (``5s``, ``0``): anything but zero is on."""
    return timeout is not None and timeout.strip() not in ("", "0", "0ms", "0s", "0min")


def _strongest(locks: Sequence[LockRecord], relation: str | None) -> LockRecord | None:
    """The strongest lock on ``relation`` (any relation when None) that blocks the
    application, else the strongest at all."""
    mine = [
        lock
        for lock in locks
        if lock.locktype == "relation" and (relation is None or lock.relation == relation)
    ]
    ranked = sorted(mine, key=lambda lock: _strength(lock.mode), reverse=True)
    return ranked[0] if ranked else None


def _strength(mode: str) -> int:
    parsed = LockMode.parse(mode)
    return parsed.strength if parsed is not None else -1


def _dangerous(mode: str | None) -> bool:
    parsed = LockMode.parse(mode) if mode else None
    return parsed is not None and parsed.dangerous


def _queue(evidence: TraceEvidence, result: StatementResult, context: TraceContext) -> Judged:
    seen = result.observed
    waited = seen.own_lock_wait_seconds if seen else None
    blocked = evidence.blocked_sessions or 0
    if not context.contended:
        return (
            Judgement.NOT_OBSERVED,
            "no traffic and no held lock on the clone, so no lock queue could form "
            "(--traffic, --hold-lock)",
            evidence,
        )
    if (waited or 0) > 0 or blocked > 0:
        return (
            Judgement.CONFIRMED,
            f"{_lock_text(evidence)}: it waited {waited or 0:.2f} s for its lock; {blocked} "
            f"session{'s' if blocked != 1 else ''} queued behind it",
            evidence,
        )
    return Judgement.DISMISSED, f"{_lock_text(evidence)}: under traffic, nobody queued", evidence


def _by_thresholds(
    finding: LintFinding, evidence: TraceEvidence, limits: EvidenceThresholds
) -> Judged:
    if not _dangerous(evidence.mode):
        taken = evidence.mode or "no lock"
        return (
            Judgement.DISMISSED,
            f"it took {taken} on {evidence.relation}: nothing blocked",
            evidence,
        )
    held = evidence.statement_ms or 0.0
    blocked = evidence.blocked_sessions or 0
    big_rewrite = evidence.rewritten and (evidence.rows or 0) >= limits.rows
    text = _lock_text(evidence)
    if held >= limits.hold_ms or blocked > 0 or big_rewrite:
        rewrite = "; rewritten" if evidence.rewritten else ""
        return Judgement.CONFIRMED, f"{text}{rewrite}{_blocked_text(blocked)}", evidence
    rewrite = "" if evidence.rewritten else ", not rewritten" if _rewrite_rule(finding) else ""
    return Judgement.DISMISSED, f"{text}{rewrite}, no session blocked", evidence


def _rewrite_rule(finding: LintFinding) -> bool:
    return finding.rule in (Rule.COLUMN_TYPE_CHANGE, Rule.ADD_COLUMN_REWRITE)


def _lock_text(evidence: TraceEvidence) -> str:
    """``SHARE on public.orders (12.4 M rows) held 41 s``, and how long the lock stayed held
    after the statement when the transaction went on (``…, 11 s to the end of the
    transaction``)."""
    mode = LockMode.parse(evidence.mode) if evidence.mode else None
    name = mode.sql_name if mode else (evidence.mode or "no lock")
    own = evidence.statement_ms
    held = f" held {_duration(own)}" if own is not None else ""
    total = evidence.held_ms
    if total is not None and own is not None and total > max(2 * own, own + 100):
        held += f" ({_duration(total)} to the end of the transaction)"
    return f"{name} on {evidence.relation}{_rows_text(evidence.rows)}{held}"


def _rows_text(rows: int | None) -> str:
    if rows is None:
        return " (rows unknown)"
    if rows >= 1_000_000:
        return f" ({rows / 1_000_000:.1f} M rows)"
    if rows >= 10_000:
        return f" ({rows / 1000:.0f} k rows)"
    return f" ({rows} row{'' if rows == 1 else 's'})"


def _duration(ms: float | None) -> str:
    if ms is None:
        return "?"
    return f"{ms / 1000:.1f} s" if ms >= 10_000 else format_ms(ms)


def _blocked_text(blocked: int) -> str:
    return f"; {blocked} session{'s' if blocked != 1 else ''} blocked" if blocked else ""


# --- into the verdict --------------------------------------------------------------------------


def verdict_findings(static: Sequence[StaticFinding]) -> list[Finding]:
    """Confirmed findings: about locks, errors (a warning once acknowledged); about
    compatibility, warnings (none once acknowledged). Nothing else counts."""
    found = []
    for item in static:
        if item.judgement is not Judgement.CONFIRMED:
            continue
        locking = CATALOG[Rule(item.rule)].category is Category.LOCKING
        if item.acknowledged is not None and not locking:
            continue
        severity = Severity.ERROR if locking and item.acknowledged is None else Severity.WARNING
        where = f"statement {item.statement} (line {item.line})"
        ack = f" (acknowledged: {item.acknowledged})" if item.acknowledged else ""
        found.append(
            Finding(
                rule=item.rule,
                severity=severity,
                message=f"{where}: {item.message} — confirmed by the trace: {item.reason}{ack}",
                statement=item.statement,
                line=item.line,
                judgement=Judgement.CONFIRMED,
            )
        )
    return found
