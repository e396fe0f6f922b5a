"""A migration file as the linter sees it: statements with their spans, comments, identifiers.

Everything comes from PostgreSQL's own grammar and lexer (pglast wraps libpg_query): statement
boundaries from the parser's statement locations, comments and identifiers from
``pglast.parser.scan``. Comments are never found by editing SQL by lines: a ``--`` inside a
string literal or a dollar-quoted body is not a comment, and only the lexer knows that.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError, scan

_COMMENTS = {"SQL_COMMENT", "C_COMMENT"}
_SEMICOLON = "ASCII_59"


@dataclass(frozen=True)
class Position:
    """1-based line and column of a character offset."""

    line: int
    column: int


class Lines:
    """Character offsets to lines and columns, by bisection over the line starts."""

    def __init__(self, text: str) -> None:
        self._starts = [0]
        newline = text.find("\n")
        while newline >= 0:
            self._starts.append(newline + 1)
            newline = text.find("\n", newline + 1)

    def at(self, offset: int) -> Position:
        index = bisect.bisect_right(self._starts, max(offset, 0)) - 1
        return Position(index + 1, offset - self._starts[index] + 1)

    def offset(self, line: int, column: int) -> int:
        """The character offset of a 1-based line and column."""
        return self._starts[max(1, min(line, len(self._starts))) - 1] + column - 1


@dataclass(frozen=True)
class Statement:
    """One statement: ``start`` is its first token, ``end`` one past its last (before ``;``)."""

    index: int
    start: int
    end: int
    node: ast.Node
    text: str

    @property
    def kind(self) -> str:
        return type(self.node).__name__


class CommentStyle(StrEnum):
    LINE = "--"
    BLOCK = "/*"


@dataclass(frozen=True)
class Comment:
    start: int
    end: int
    body: str  # without the comment markers, stripped
    style: CommentStyle


@dataclass(frozen=True)
class Identifier:
    """An identifier as written (quoted or not) and its decoded length in bytes."""

    start: int
    text: str
    name: str


@dataclass(frozen=True)
class SyntaxProblem:
    offset: int
    message: str


@dataclass(frozen=True)
class SourceFile:
    path: str
    text: str
    lines: Lines
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...]
    identifiers: tuple[Identifier, ...]
    syntax_error: SyntaxProblem | None = None

    def position(self, offset: int) -> Position:
        return self.lines.at(offset)


def read_source(path: str, text: str) -> SourceFile:
    """Parse ``text``; a syntax error is part of the result (with its offset), never raised."""
    lines = Lines(text)
    try:
        tokens = scan(text)
        raw = parse_sql(text) or ()
    except ParseError as exc:
        return SourceFile(path, text, lines, (), (), (), _syntax_problem(exc))
    comments = tuple(_comment(text, t) for t in tokens if t.name in _COMMENTS)
    identifiers = tuple(_identifier(text, t) for t in tokens if t.name == "IDENT")
    statements = _statements(text, raw, tokens)
    return SourceFile(path, text, lines, statements, comments, identifiers)


def _syntax_problem(exc: ParseError) -> SyntaxProblem:
    # pglast reports (message, character offset); the offset is 0-based.
    args = exc.args
    message = str(args[0]) if args else str(exc)
    offset = int(args[1]) if len(args) > 1 and isinstance(args[1], int) else 0
    return SyntaxProblem(max(offset, 0), message)


def _statements(text: str, raw: Any, tokens: list[Any]) -> tuple[Statement, ...]:
    """Statements trimmed to their first and last token: PostgreSQL's statement locations may
    include leading comments and whitespace, which belong to the gap before the statement."""
    code = [t for t in tokens if t.name not in _COMMENTS and t.name != _SEMICOLON]
    starts = [t.start for t in code]
    statements: list[Statement] = []
    for stmt in raw:
        begin = stmt.stmt_location or 0
        finish = begin + stmt.stmt_len if stmt.stmt_len else len(text)
        inside = _tokens_between(code, starts, begin, finish)
        if not inside or stmt.stmt is None:
            continue
        first, last = inside[0].start, inside[-1].end + 1
        index = len(statements) + 1
        statements.append(Statement(index, first, last, stmt.stmt, text[first:last]))
    return tuple(statements)


def _tokens_between(code: list[Any], starts: list[int], begin: int, finish: int) -> list[Any]:
    low = bisect.bisect_left(starts, begin)
    high = bisect.bisect_left(starts, finish)
    return code[low:high]


def _comment(text: str, token: Any) -> Comment:
    raw = text[token.start : token.end + 1]
    if token.name == "SQL_COMMENT":
        return Comment(token.start, token.end + 1, raw[2:].strip(), CommentStyle.LINE)
    return Comment(token.start, token.end + 1, raw[2:-2].strip(), CommentStyle.BLOCK)


def _identifier(text: str, token: Any) -> Identifier:
    raw = text[token.start : token.end + 1]
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        name = raw[1:-1].replace('""', '"')
    elif raw[:2].upper() == "U&":
        name = raw  # Unicode escapes: measured as written, an upper bound
    else:
        name = raw.lower()
    return Identifier(token.start, raw, name)
