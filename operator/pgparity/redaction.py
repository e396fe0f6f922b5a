"""Passwords never appear in anything pgparity prints, writes, logs or reports.

Two defences, applied together by ``sanitize``:

- **known secrets**: every DSN pgparity is given (flags, ``PGPARITY_*`` variables, Secrets the
  operator reads) is remembered, and its password is replaced wherever it appears — also the
  pieces of it that libpq quotes when it cannot parse the DSN (``invalid percent-encoded token:
  "s3cr%zz"``, ``unexpected spaces found in "pass word"``);
- **shapes**: the password of any connection URI (``postgresql://u:SECRET@h``, ``?password=``)
  and any ``password=`` keyword (quoted values with spaces and escaped quotes too), known or not.

Free text (errors, progress, logs, Events, status) gets every ``password=`` redacted. Documents
that quote the user's SQL (reports) redact ``password=`` only inside something shaped like a
connection string, so that ``UPDATE users SET password = …`` is still shown as written.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any
from urllib.parse import unquote

MASK = "***"
# Pieces of an unparseable DSN's password shorter than this are not remembered: replacing
# every "ab" in a message would make it unreadable without hiding anything.
_MIN_PIECE = 4
_MAX_REMEMBERED = 4096

_URI_USERINFO = re.compile(r"(?i)\b(postgres(?:ql)?://[^\s:/@]*):\S*@")
_URI_QUERY = re.compile(r"(?i)([?&]password=)[^&\s\"'<>]*")
# A quoted value may itself sit in a SQL literal, its quotes doubled: password=''a b''.
_KEYWORD_VALUE = r"""((?:''|')(?:[^'\\]|\\.)*(?:''|')?|(?:[^\s'"\\<>&;,)\]}]|\\.)+)"""
_KEYWORD = re.compile(r"(?i)\b((?:pg)?password\s*=\s*)" + _KEYWORD_VALUE)
_QUERY_VALUE = re.compile(r"(?i)[?&]password=([^&\s]*)")
# libpq keywords that make a "password=" part of a connection string rather than of SQL.
_CONNINFO_NEIGHBOUR = re.compile(
    r"(?i)\b(host|hostaddr|port|dbname|user|sslmode|service|options|application_name|"
    r"connect_timeout|target_session_attrs|passfile)\s*=\s*\S"
)
_PIECE_DELIMITERS = re.compile(r"[@:/?#&]")


class Context(Enum):
    MESSAGE = "message"  # free text: errors, progress, logs, Events, status messages
    DOCUMENT = "document"  # reports, which quote the user's SQL


class _Remembered:
    """The secrets of this process, longest first; thread-safe (the operator has many)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._ordered: tuple[str, ...] = ()

    def add(self, values: Iterable[str]) -> None:
        with self._lock:
            before = len(self._secrets)
            for value in values:
                if value and len(self._secrets) < _MAX_REMEMBERED:
                    self._secrets.add(value)
            if len(self._secrets) != before:
                self._ordered = tuple(sorted(self._secrets, key=len, reverse=True))

    def all(self) -> tuple[str, ...]:
        return self._ordered


_REMEMBERED = _Remembered()


def remember_dsn(dsn: str, password: str | None = None) -> None:
    """Remember ``dsn``'s password: ``password`` as libpq parsed it, and whatever a lenient
    reading finds (the DSN may not parse at all, and then libpq quotes pieces of it)."""
    candidates = [password] if password else []
    candidates += _lenient_passwords(dsn)
    values: list[str] = []
    for candidate in candidates:
        values += [candidate, unquote(candidate)]
        values += [p for p in _PIECE_DELIMITERS.split(candidate) if len(p) >= _MIN_PIECE]
    _REMEMBERED.add(values)


def remember_secret(secret: str) -> None:
    _REMEMBERED.add([secret])


def _lenient_passwords(dsn: str) -> list[str]:
    found: list[str] = []
    uri = re.match(r"(?is)\s*postgres(?:ql)?://[^\s:/@]*:(.*)@", dsn)
    if uri:
        found.append(uri.group(1))
    found += [m.group(1) for m in _QUERY_VALUE.finditer(dsn)] if "://" in dsn else []
    for match in _KEYWORD.finditer(dsn):
        value = match.group(2)
        if value.startswith("'"):
            quote = "''" if value.startswith("''") else "'"
            value = re.sub(r"\\(.)", r"\1", value.removeprefix(quote).removesuffix(quote))
        found.append(value)
    return found


def sanitize(text: str, context: Context = Context.MESSAGE) -> str:
    """``text`` without any password pgparity knows of or can recognise."""
    for secret in _REMEMBERED.all():
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URI_USERINFO.sub(rf"\1:{MASK}@", text)
    text = _URI_QUERY.sub(rf"\1{MASK}", text)
    if context is Context.MESSAGE:
        return _KEYWORD.sub(rf"\1{MASK}", text)
    return _KEYWORD.sub(_masked_if_conninfo, text)


def _masked_if_conninfo(match: re.Match[str]) -> str:
    before = match.string[max(0, match.start() - 200) : match.start()]
    after = match.string[match.end() : match.end() + 200]
    neighbours = re.search(r"(\S+\s*=\s*\S+)\s+$", before), re.match(r"\s+(\S+\s*=\s*\S)", after)
    # search, not match: the neighbour may open the literal, as in dblink('host=db password=…').
    if any(n and _CONNINFO_NEIGHBOUR.search(n.group(1)) for n in neighbours):
        return f"{match.group(1)}{MASK}"
    return match.group(0)


def sanitize_strings(value: Any, context: Context = Context.DOCUMENT) -> Any:
    """Every string inside a JSON-like value or a tree of frozen dataclasses, sanitized."""
    return map_strings(value, lambda text: sanitize(text, context))


def map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return change(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        updates = {
            f.name: map_strings(getattr(value, f.name), change)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **updates)
    if isinstance(value, tuple | list):
        return type(value)(map_strings(v, change) for v in value)
    if isinstance(value, Mapping):
        return {map_strings(k, change): map_strings(v, change) for k, v in value.items()}
    return value


class _RedactingRecordFactory:
    """Makes every log record's message (and traceback) sanitized when it is created, so no
    handler — kopf's Event poster included — ever sees a password."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        try:
            record.msg, record.args = sanitize(record.getMessage()), None
        except (TypeError, ValueError):  # a malformed format string: keep the record as is
            record.msg = sanitize(str(record.msg))
        if record.exc_info and not record.exc_text:
            record.exc_text = sanitize(logging.Formatter().formatException(record.exc_info))
        return record


def install_log_redaction() -> None:
    """Sanitize every log record from now on (idempotent)."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _RedactingRecordFactory):
        logging.setLogRecordFactory(_RedactingRecordFactory(current))
