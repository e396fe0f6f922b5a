"""Reading the files people give pgparity: bounded, UTF-8, no control characters; strict YAML.

Every text input goes through here, so a hostile or unlucky file gets one clear line (exit 2)
instead of a hang, a traceback or a silent misreading:

- only regular files are read (a FIFO or ``/dev/zero`` would block or never end), and at most
  ``limit + 1`` bytes of them, so a 10 GB file is refused after reading a few megabytes;
- control characters are refused with their line and column: a NUL byte ends the text for
  the SQL parser pgparity uses (so everything after it went unchecked) while psql runs it;
- YAML is read without aliases (a "billion laughs" document expands exponentially), with a
  bounded depth (PyYAML recurses once per level), without duplicate keys (YAML keeps the last
  one silently), and with numbers that are finite and fit in 64 bits.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from pgparity.errors import UsageError

KIB = 1024
MIB = 1024 * KIB


# Control characters a format allows beyond TAB, LF and CR. Form feed is whitespace to
# PostgreSQL's scanner, pglast's and psql's alike. JSON allows DEL raw (json.dumps writes it so).
SQL_ALLOWED = "\x0c"
JSON_ALLOWED = "\x7f"


@dataclass(frozen=True)
class InputKind:
    """What a file is for: its name in messages, its size limit and what it may contain."""

    what: str
    limit: int
    allowed: str = ""  # control characters this format allows beyond TAB, LF and CR


MIGRATION = InputKind("migration file", 32 * MIB, SQL_ALLOWED)
SEED_SQL = InputKind("seed SQL file", 1024 * MIB, SQL_ALLOWED)
YAML_FILE = InputKind("YAML file", 4 * MIB)
BASELINE = InputKind("baseline file", 256 * MIB, JSON_ALLOWED)
REPORT = InputKind("report file", 256 * MIB, JSON_ALLOWED)
KEY_FILE = InputKind("key file", 64 * KIB)

MAX_YAML_DEPTH = 32
# YAML integers must fit PostgreSQL's bigint, the widest integer any of them ends up in.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# C0 controls and DEL, except TAB, LF and CR (and what a format allows). VT is refused even in
# SQL on purpose: PostgreSQL 16 made it whitespace, older servers and parsers do not.
_CONTROLS = "".join(chr(c) for c in [*range(0x20), 0x7F] if chr(c) not in "\t\n\r")
_NAMES = {0x00: "NUL", 0x0B: "vertical tab", 0x0C: "form feed", 0x1B: "ESC", 0x7F: "DEL"}
_CHUNK = MIB


def describe_limit(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB else f"{limit // KIB} KiB"


def read_bytes(path: Path, kind: InputKind) -> bytes:
    """The bytes of a regular file of at most ``kind.limit`` bytes; anything else is bad input."""
    with _open_regular(path, kind) as handle:
        data = handle.read(kind.limit + 1)
    if len(data) > kind.limit:
        raise UsageError(_too_large(path, kind))
    return data


def _too_large(path: Path, kind: InputKind) -> str:
    return f"{kind.what} {path} is larger than the {describe_limit(kind.limit)} limit"


def read_text(path: Path, kind: InputKind) -> str:
    """A UTF-8 text file, checked for size and control characters."""
    data = read_bytes(path, kind)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{kind.what} {path} is not UTF-8 (byte {exc.start})") from exc
    check_text(text, f"{kind.what} {path}", allowed=kind.allowed)
    return text


def check_no_nul(path: Path, kind: InputKind) -> None:
    """A file another program reads (psql): regular, within the limit, no NUL byte.

    Only NUL is refused here: PostgreSQL cannot store it, but a plain-format dump carries other
    control bytes raw inside COPY data (COPY's text format escapes only \\b \\f \\n \\r \\t \\v).
    """
    offset = lines = 0
    line_start = 0  # offset of the first byte of the current line
    with _open_regular(path, kind) as handle:
        while chunk := handle.read(_CHUNK):
            nul = chunk.find(b"\x00")
            scanned = chunk if nul < 0 else chunk[:nul]
            lines += scanned.count(b"\n")
            newline = scanned.rfind(b"\n")
            line_start = offset + newline + 1 if newline >= 0 else line_start
            if nul >= 0:
                column = offset + nul - line_start + 1
                raise UsageError(
                    f"{kind.what} {path}: line {lines + 1}, column {column}: "
                    "control character U+0000 (NUL) is not allowed"
                )
            offset += len(chunk)
            if offset > kind.limit:
                raise UsageError(_too_large(path, kind))


@cache
def _control_pattern(allowed: str) -> re.Pattern[str]:
    refused = "".join(c for c in _CONTROLS if c not in allowed)
    return re.compile("[" + re.escape(refused) + "]")


def control_character(text: str, *, allowed: str = "") -> str | None:
    """``line 3, column 7: control character U+0000 (NUL) is not allowed``, or None."""
    match = _control_pattern(allowed).search(text)
    if match is None:
        return None
    at = match.start()
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    code = ord(match.group())
    name = f" ({_NAMES[code]})" if code in _NAMES else ""
    return f"line {line}, column {column}: control character U+{code:04X}{name} is not allowed"


def sql_control_character(text: str) -> str | None:
    """The first control character SQL text must not contain (see ``control_character``)."""
    return control_character(text, allowed=SQL_ALLOWED)


def check_text(text: str, where: str, *, allowed: str = "") -> None:
    problem = control_character(text, allowed=allowed)
    if problem is not None:
        raise UsageError(f"{where}: {problem}")


def _open_regular(path: Path, kind: InputKind) -> BinaryIO:
    """Open without blocking, so that a FIFO cannot hang the open itself, then insist on a
    regular file: a FIFO or a device would block or never end."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise UsageError(f"{kind.what} {path} does not exist") from exc
    except OSError as exc:
        raise UsageError(f"{kind.what} {path} cannot be read: {exc.strerror}") from exc
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise UsageError(f"{kind.what} {path} is {_file_type(status.st_mode)}, not a regular file")
    if status.st_size > kind.limit:  # the readers stop at the limit too: the file may grow
        os.close(fd)
        raise UsageError(_too_large(path, kind))
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"


# --- YAML ---------------------------------------------------------------------------------


class _Refused(yaml.MarkedYAMLError):
    """A construct the strict loader does not accept, at a position in the document."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without aliases, duplicate keys, deep nesting or unbounded numbers."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # Checked in the scanner too: for "[[[[…" it looks 1024 characters ahead, each step
        # costing a pass over every open bracket, before the composer sees the first node.
        if self.flow_level >= MAX_YAML_DEPTH:
            raise _Refused(f"nested deeper than {MAX_YAML_DEPTH} levels", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _Refused("aliases (*name) are not allowed", self._next_mark())
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise _Refused(f"nested deeper than {MAX_YAML_DEPTH} levels", self._next_mark())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _next_mark(self) -> Any:
        parser: Any = self  # PyYAML's parser methods carry no type hints
        return parser.peek_event().start_mark

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _Refused("merge keys (<<) are not allowed", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key: SafeLoader refuses it with its own message
            if duplicate:
                raise _Refused(f"key {key!r} is given twice", key_node.start_mark)
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node: Any) -> int:
        try:
            value = int(super().construct_yaml_int(node))
        except ValueError as exc:  # more digits than Python converts (sys.int_info)
            raise _Refused("integer too large", node.start_mark) from exc
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Refused("integer out of the 64-bit range", node.start_mark)
        return value

    def construct_yaml_float(self, node: Any) -> float:
        value = float(super().construct_yaml_float(node))
        if not math.isfinite(value):
            raise _Refused("numbers must be finite (not .nan or .inf)", node.start_mark)
        return value


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _StrictLoader.construct_yaml_float)


def parse_yaml(text: str, where: str) -> Any:
    """One YAML document; any problem is one line naming ``where`` and the position."""
    check_text(text, where)
    return _load(text, where)


def _load(text: str, where: str) -> Any:
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise UsageError(f"{where}: {_position(exc)}{exc.problem}") from exc
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or exc.context or "syntax error"
        raise UsageError(f"{where} is not valid YAML: {_position(exc)}{problem}") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"{where} is not valid YAML: {' '.join(str(exc).split())}") from exc
    if document is None:
        raise UsageError(f"{where} is empty")
    return document


def _position(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def load_yaml_file(path: Path, flag: str) -> Any:
    """The YAML document in ``path`` (given with ``flag``), read with every check above."""
    kind = InputKind(f"{flag} file", YAML_FILE.limit)
    return _load(read_text(path, kind), f"{flag} file {path}")
