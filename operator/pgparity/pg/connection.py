"""Connections to PostgreSQL; failures become one-line errors that never show a password."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from pgparity.errors import DatabaseError, UsageError
from pgparity.pg.sqlexec import LEXING_OPTIONS, PINNED_LEXING
from pgparity.redaction import remember_dsn, sanitize

APPLICATION_NAME = "pgparity"
# libpq's wording for a DSN whose values do not parse (a port that is not a number, …), and
# psycopg's for a connection libpq refused before trying (PQconnectStart's option checks:
# "invalid port number", "invalid sslmode value", …).
_MALFORMED = ("for connection option", "invalid connection option", "connection is bad:")


def parse_dsn(dsn: str) -> dict[str, str]:
    """The DSN's parameters; a malformed DSN is bad input. Its password is remembered, so
    that nothing pgparity prints afterwards can show it (pgparity.redaction)."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        remember_dsn(dsn)
        # libpq quotes the part it could not parse, which may be the password: the message is
        # sanitized, and the exception (which holds it raw) is not chained.
        raise UsageError(f"cannot parse DSN: {sanitize(first_line(str(exc)))}") from None
    remember_dsn(dsn, str(params.get("password") or ""))
    return {k: str(v) for k, v in params.items() if v is not None}


def describe_dsn(dsn: str) -> str:
    """A printable description of a DSN: host, port, database, user — never the password."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparseable DSN)"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    where = f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"
    return f"{where} as {params['user']}" if params.get("user") else where


def redact(text: str, dsn: str) -> str:
    """``text`` with the raw DSN described instead, and no password (pgparity.redaction)."""
    if dsn:
        remember_dsn(dsn)
        text = text.replace(dsn, describe_dsn(dsn))
    return sanitize(text)


def first_line(text: str) -> str:
    """libpq messages run over several lines; the first non-empty one says what went wrong."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else text.strip()


def connect(
    dsn: str,
    *,
    role: str = "target",
    read_only: bool = False,
    autocommit: bool = True,
    connect_timeout: int = 10,
    application_name: str = APPLICATION_NAME,
    session_options: str = "",
    user_sql: bool = False,
) -> psycopg.Connection[tuple[Any, ...]]:
    """Open a connection; ``role`` names it in errors ("target", "replica", "source", …).

    ``read_only`` sets ``default_transaction_read_only`` for the whole session, the way
    pgparity talks to production (DESIGN.md safety rules). ``session_options`` are more
    ``-c name=value`` settings for the start-up packet (never echoed in errors). ``user_sql``
    pins the settings that decide how the server reads SQL text (``sqlexec.PINNED_LEXING``)
    for a session that will run SQL pgparity did not write.
    """
    params = parse_dsn(dsn)
    options = " ".join(
        part
        for part in (
            params.get("options", ""),
            "-c default_transaction_read_only=on" if read_only else "",
            LEXING_OPTIONS if user_sql else "",
            session_options,
        )
        if part
    )
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=autocommit,
            connect_timeout=connect_timeout,
            application_name=application_name,
            options=options or None,
            client_encoding=PINNED_LEXING["client_encoding"] if user_sql else None,
        )
    except psycopg.OperationalError as exc:
        malformed = any(words in str(exc) for words in _MALFORMED)
        reason = redact(_connection_failure(str(exc)), dsn)
        if session_options:
            reason = reason.replace(session_options, "(session options)")
        # Not chained: libpq's message may quote a value of the DSN.
        if malformed:
            raise UsageError(f"cannot parse DSN {describe_dsn(dsn)}: {reason}") from None
        raise DatabaseError(f"cannot connect to {role} {describe_dsn(dsn)}: {reason}") from None
    return conn


def _connection_failure(message: str) -> str:
    # libpq prefixes every attempt with 'connection to server at "h" (addr), port p failed:';
    # the part after the last "failed:" is the reason a person can act on.
    line = first_line(message).removeprefix("connection is bad:").strip()
    reason = line.rsplit("failed:", 1)[-1].strip()
    return reason or line


def error_message(exc: psycopg.Error) -> str:
    """The server's primary message (with its detail), or the client's first line."""
    diag = exc.diag
    text = diag.message_primary or first_line(str(exc))
    return f"{text} ({diag.message_detail})" if diag.message_detail else text
