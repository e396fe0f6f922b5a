"""Lint files: parse, run the rules statement by statement, apply configuration and
acknowledgements, and report what is left — all without a database."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from pgparity.errors import UsageError
from pgparity.inputs import MIGRATION, read_text
from pgparity.lint.acks import Directive, DirectiveProblem, read_directives
from pgparity.lint.catalog import Rule
from pgparity.lint.checks import check_end_of_file, check_statement
from pgparity.lint.config import LintConfig
from pgparity.lint.findings import (
    Acknowledgement,
    AckScope,
    FileReport,
    Hit,
    LintFinding,
    LintRun,
    Span,
)
from pgparity.lint.locking import statement_locks
from pgparity.lint.source import SourceFile, Statement, read_source
from pgparity.lint.state import FileState

MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1


def lint_paths(paths: Sequence[Path], config: LintConfig) -> LintRun:
    """Every file named, and every ``*.sql`` file under every directory named, in order."""
    started = time.perf_counter()
    reports = tuple(lint_file(path, config) for path in collect_files(paths))
    return LintRun(reports, time.perf_counter() - started)


def collect_files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*.sql") if p.is_file() and not _hidden(p.relative_to(path))
            )
            if not found:
                raise UsageError(f"{path} contains no .sql files")
            files.extend(found)
        else:
            files.append(path)  # read_text says what is wrong with anything else
    return files


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def lint_file(path: Path, config: LintConfig) -> FileReport:
    return lint_source(str(path), read_text(path, MIGRATION), config)


def lint_source(path: str, text: str, config: LintConfig) -> FileReport:
    source = read_source(path, text)
    if source.syntax_error is not None:
        problem = source.syntax_error
        hit = Hit(Rule.SYNTAX_ERROR, problem.message, problem.offset)
        return FileReport(path, 0, (_finding(source, None, hit, config),))
    hits = _statement_hits(source, config)
    directives, problems = read_directives(source)
    findings = [
        _acknowledged(_finding(source, statement, hit, config), directives, config)
        for statement, hit in hits
        if config.reported(hit.rule)
    ]
    findings += _directive_findings(source, directives, problems, config)
    findings.sort(key=lambda f: (f.span.line, f.span.column, f.rule.value))
    return FileReport(path, len(source.statements), tuple(findings))


def _statement_hits(source: SourceFile, config: LintConfig) -> list[tuple[Statement, Hit]]:
    state = FileState(assume_in_transaction=config.assume_in_transaction)
    hits: list[tuple[Statement, Hit]] = []
    for statement in source.statements:
        locks = statement_locks(statement.node)
        state.current_locks = locks
        hits.extend((statement, hit) for hit in check_statement(statement, state))
        state.after(statement, locks)
    hits.extend(check_end_of_file(state))
    hits.extend(_long_identifiers(source))
    return hits


def _long_identifiers(source: SourceFile) -> Iterable[tuple[Statement, Hit]]:
    """Found in the lexer's tokens: the parser has already truncated them to 63 bytes."""
    starts = [s.start for s in source.statements]
    for identifier in source.identifiers:
        size = len(identifier.name.encode("utf-8"))
        if size <= MAX_IDENTIFIER_BYTES:
            continue
        position = bisect.bisect_right(starts, identifier.start) - 1
        if position < 0:
            continue
        truncated = identifier.name.encode("utf-8")[:MAX_IDENTIFIER_BYTES].decode("utf-8", "ignore")
        yield (
            source.statements[position],
            Hit(
                Rule.IDENTIFIER_TOO_LONG,
                f"identifier {identifier.text[:40]}… is {size} bytes; PostgreSQL silently "
                f"truncates it to 63 ({truncated!r}), so two long names can collide",
                identifier.start,
            ),
        )


def _finding(
    source: SourceFile, statement: Statement | None, hit: Hit, config: LintConfig
) -> LintFinding:
    start = hit.offset if hit.offset is not None else (statement.start if statement else 0)
    end = statement.end if statement is not None else start + 1
    first, last = source.position(start), source.position(max(end - 1, start))
    opening = source.position(statement.start) if statement is not None else None
    return LintFinding(
        rule=hit.rule,
        severity=config.severity_of(hit.rule),
        message=hit.message,
        path=source.path,
        span=Span(first.line, first.column, last.line, last.column + 1),
        statement=statement.index if statement is not None else None,
        statement_start=(opening.line, opening.column) if opening else None,
        relation=hit.relation,
        lock=hit.lock,
    )


def _acknowledged(
    finding: LintFinding, directives: list[Directive], config: LintConfig
) -> LintFinding:
    for directive in directives:
        if finding.rule not in directive.rules:
            continue
        if directive.scope is AckScope.FILE or directive.statement == finding.statement:
            directive.used.add(finding.rule)
            line = finding.span.line if directive.scope is AckScope.STATEMENT else None
            ack = Acknowledgement(directive.scope, directive.reason, line)
            return _with_ack(finding, ack)
    reason = config.disable.get(finding.rule)
    if reason is not None:
        return _with_ack(finding, Acknowledgement(AckScope.CONFIG, reason))
    return finding


def _with_ack(finding: LintFinding, ack: Acknowledgement) -> LintFinding:
    return replace(finding, acknowledged=ack)


def _directive_findings(
    source: SourceFile,
    directives: list[Directive],
    problems: list[DirectiveProblem],
    config: LintConfig,
) -> list[LintFinding]:
    by_index = {s.index: s for s in source.statements}
    found = [
        _finding(
            source,
            by_index.get(p.statement) if p.statement else None,
            Hit(Rule.INVALID_ACKNOWLEDGEMENT, f"{p.message}; it acknowledges nothing", p.offset),
            config,
        )
        for p in problems
    ]
    if not config.reported(Rule.UNUSED_ACKNOWLEDGEMENT):
        return found
    for directive in directives:
        unused = [r.value for r in directive.rules if r not in directive.used]
        if not unused:
            continue
        where = "this file" if directive.scope is AckScope.FILE else "its statement"
        off = [r for r in unused if Rule(r) in config.disable or not config.reported(Rule(r))]
        note = f" ({', '.join(off)} off in the configuration)" if off else ""
        hit = Hit(
            Rule.UNUSED_ACKNOWLEDGEMENT,
            f"acknowledges {', '.join(unused)}, but nothing in {where} raised it{note}; remove it",
            directive.comment.start,
        )
        statement = by_index.get(directive.statement) if directive.statement else None
        found.append(_finding(source, statement, hit, config))
    return found
