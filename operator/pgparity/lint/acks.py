"""Acknowledgements written in the SQL: ``-- pgparity: allow <rule>[, <rule>] because <reason>``.

A statement-level acknowledgement is a comment immediately before the statement (only blank
lines and other comments between), inside it, or after it on the line where it ends; a
file-level one is ``-- pgparity: allow-file <rule> because <reason>`` anywhere in the file.
Either may be a ``/* … */`` comment. A reason is required; a rule id that does not exist, a
missing reason or an unknown directive is itself a finding (``invalid-acknowledgement``), and
the comment then acknowledges nothing. Comments come from the lexer, by position.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from pgparity.lint.catalog import CATALOG, Rule, closest_rule, info
from pgparity.lint.findings import AckScope
from pgparity.lint.source import Comment, SourceFile

_DIRECTIVE = re.compile(r"^pgparity\s*:\s*(?P<verb>[\w-]*)(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_BECAUSE = re.compile(r"\bbecause\b", re.IGNORECASE)
_VERBS = {"allow": AckScope.STATEMENT, "allow-file": AckScope.FILE}
SYNTAX = "pgparity: allow <rule>[, <rule>] because <reason>"


@dataclass
class Directive:
    comment: Comment
    scope: AckScope
    rules: tuple[Rule, ...]
    reason: str
    statement: int | None  # the statement it applies to (statement scope)
    used: set[Rule] = field(default_factory=set)


@dataclass(frozen=True)
class DirectiveProblem:
    offset: int
    message: str
    statement: int | None


def read_directives(source: SourceFile) -> tuple[list[Directive], list[DirectiveProblem]]:
    directives, problems = [], []
    starts = [s.start for s in source.statements]
    for comment in source.comments:
        match = _DIRECTIVE.match(comment.body)
        if match is None:
            continue
        target = attached_statement(source, starts, comment)
        parsed = _parse(match.group("verb").lower(), match.group("rest"))
        if isinstance(parsed, str):
            problems.append(DirectiveProblem(comment.start, parsed, target))
        else:
            scope, rules, reason = parsed
            statement = target if scope is AckScope.STATEMENT else None
            directives.append(Directive(comment, scope, rules, reason, statement))
    return directives, problems


def _parse(verb: str, rest: str) -> tuple[AckScope, tuple[Rule, ...], str] | str:
    """The directive's scope, rules and reason, or what is wrong with it."""
    scope = _VERBS.get(verb)
    if scope is None:
        return f"unknown directive {verb!r}; write '{SYNTAX}' (or allow-file for the whole file)"
    parts = _BECAUSE.split(rest, maxsplit=1)
    names = [n for n in re.split(r"[\s,]+", parts[0].strip()) if n]
    reason = parts[1].strip() if len(parts) > 1 else ""
    if not names:
        return f"no rule named; write '{SYNTAX}'"
    rules = []
    for name in names:
        rule = _rule(name)
        if not isinstance(rule, Rule):  # what is wrong with the name
            return rule
        rules.append(rule)
    if not reason:
        return f"a reason is required: '{SYNTAX}'"
    return scope, tuple(rules), reason


def _rule(name: str) -> Rule | str:
    try:
        rule = Rule(name.lower())
    except ValueError:
        return f"unknown rule {name!r}{_hint(name)}"
    if not info(rule).acknowledgeable:
        return f"{rule.value} cannot be acknowledged"
    return rule


def _hint(name: str) -> str:
    for entry in CATALOG.values():
        if name in entry.squawk or name.upper() in entry.eugene:
            owner = "squawk" if name in entry.squawk else "eugene"
            return f" ({owner}'s name for {entry.rule.value})"
    closest = closest_rule(name.lower())
    return f" (did you mean {closest}?)" if closest else ""


def attached_statement(source: SourceFile, starts: list[int], comment: Comment) -> int | None:
    """The statement a comment belongs to: the one it is inside; else the one ending on the
    line where it starts (a trailing comment); else the next one."""
    position = bisect.bisect_right(starts, comment.start)  # statements starting at or before it
    if position > 0:
        before = source.statements[position - 1]
        if comment.start < before.end:
            return before.index
        ends_on = source.position(before.end - 1).line
        if source.position(comment.start).line == ends_on:
            return before.index
    if position < len(source.statements):
        return source.statements[position].index
    return None
