"""The one way user SQL reaches the server: one statement per round trip, read as pglast read it.

Migration statements, explain queries, traffic statements and their ``sample`` queries are text
pgparity did not write. psycopg sends a query without parameters with the *simple* query
protocol, in which the server runs every statement of ``a; b`` — so a second statement hidden
where pglast saw one (a lexer trick, a query file that was never split) would run outside
pgparity's control. Here every such text goes through the *extended* protocol (Parse / Bind /
Execute): the server itself refuses a string holding more than one statement (42601, "cannot
insert multiple commands into a prepared statement"). psycopg uses it whenever a query has
parameters or asks for binary results (``psycopg/_cursor_base.py::_execute_send``); asking for
binary results is the public way to force it, and nothing here reads user statements' rows but
EXPLAIN's JSON, which psycopg loads the same in binary.

pglast splits and classifies a migration assuming ``standard_conforming_strings = on`` and UTF-8
text; the server lexes with the session's settings. Sessions that run user SQL pin both in their
start-up packet (which also makes ``RESET`` and ``DISCARD ALL`` come back to them), and after
every statement ``execute_one`` checks — from the ParameterStatus messages the server sends when
they change, so at no cost — that they still hold: a ``set_config`` inside a function can change
them where no static check sees it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from pgparity.errors import EngineError

# The settings that decide how the server splits and reads SQL text, at the values pglast
# (libpg_query) assumes. backslash_quote is not among them: it only decides whether the server
# accepts \' inside E'' strings, so it can make the server refuse a statement, never read a
# different one.
PINNED_LEXING: Mapping[str, str] = {
    "standard_conforming_strings": "on",
    "client_encoding": "UTF8",
}
# client_encoding goes to libpq as a connection parameter of its own: libpq sends one anyway
# (from PGCLIENTENCODING, say), and that one would win over a ``-c`` option.
LEXING_OPTIONS = "-c standard_conforming_strings=on"

# pgparity's own SQL in a session where user SQL ran resolves names in pg_catalog first, so a
# migration's ``public.pg_current_wal_insert_lsn()`` or ``public.=`` cannot answer for it.
CATALOG_SEARCH_PATH = "pg_catalog, pg_temp"


class LexingChangedError(EngineError):
    """A statement changed a setting that decides how the server reads SQL text."""

    def __init__(self, setting: str, value: str) -> None:
        super().__init__(
            f"it changed {setting} to {value!r} at run time (pgparity reads SQL with "
            f"{setting} = {PINNED_LEXING[setting]}, as the server must too); the run stopped"
        )
        self.setting = setting
        self.value = value


def execute_one(
    conn: psycopg.Connection[Any], text: str, params: Mapping[str, Any] | None = None
) -> psycopg.Cursor[Any]:
    """Run one user-supplied statement; the server refuses ``text`` if it holds two."""
    cur = conn.cursor()
    # A statement that fails is rolled back with its settings (AbortTransaction runs at once),
    # so only one that succeeded can have left them changed.
    cur.execute(text.encode("utf-8"), params, binary=True)
    check_lexing(conn)
    return cur


def fetch_rows(conn: psycopg.Connection[Any], query: str) -> list[tuple[Any, ...]]:
    """The rows of one user-supplied query, as text-format values, in a rolled-back transaction.

    A server-side cursor (``DECLARE … CURSOR FOR``, sent with the extended protocol) accepts
    exactly one SELECT or VALUES: a second statement, or a query that writes, is refused.
    """
    with conn.transaction(force_rollback=True), conn.cursor(name="pgparity_user_query") as cur:
        cur.execute(query.encode("utf-8"))
        rows = cur.fetchall()
    check_lexing(conn)
    return rows


def check_lexing(conn: psycopg.Connection[Any]) -> None:
    """Raise ``LexingChangedError`` if the session no longer reads SQL the way pglast does."""
    if conn.closed:
        return
    for name, pinned in PINNED_LEXING.items():
        value = conn.info.parameter_status(name)
        if value is not None and _normal(value) != _normal(pinned):
            raise LexingChangedError(name, value)


def _normal(value: str) -> str:
    # The server reports client_encoding by its canonical name; compare the way it matches.
    return value.replace("-", "").replace("_", "").upper()


@dataclass(frozen=True)
class SessionSettings:
    """What the session had before pgparity's own queries took over (and get back after)."""

    search_path: str
    statement_timeout: str


@contextmanager
def own_queries(
    conn: psycopg.Connection[Any], *, catalog_names: bool = True
) -> Iterator[SessionSettings]:
    """Run pgparity's own queries in a session where user SQL ran: no statement_timeout (a
    migration's ``SET statement_timeout = '1ms'`` must not cancel the measurements) and, with
    ``catalog_names``, ``search_path = pg_catalog, pg_temp``. Whatever the session had — a
    migration's own SETs included — is put back afterwards and yielded.

    Inside a transaction block the changes are local to it, and undone by the rollback anyway;
    outside one they are session settings, restored explicitly.
    """
    local = conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    path = CATALOG_SEARCH_PATH if catalog_names else None
    row = conn.execute(_TAKE_OVER, {"path": path, "local": local}).fetchone()
    assert row is not None
    saved = SessionSettings(search_path=str(row[0]), statement_timeout=str(row[1]))
    try:
        yield saved
    finally:
        if conn.info.transaction_status in _USABLE:
            conn.execute(
                _GIVE_BACK,
                {"path": saved.search_path, "timeout": saved.statement_timeout, "local": local},
            )


# pg_catalog-qualified and operator-free: these run before the search_path is the catalog's.
_TAKE_OVER = """
SELECT s.path, s.timeout,
       pg_catalog.set_config('search_path', coalesce(%(path)s, s.path), %(local)s),
       pg_catalog.set_config('statement_timeout', '0', %(local)s)
FROM (SELECT pg_catalog.current_setting('search_path') AS path,
             pg_catalog.current_setting('statement_timeout') AS timeout OFFSET 0) s
"""
_GIVE_BACK = """
SELECT pg_catalog.set_config('search_path', %(path)s, %(local)s),
       pg_catalog.set_config('statement_timeout', %(timeout)s, %(local)s)
"""
_USABLE = (psycopg.pq.TransactionStatus.IDLE, psycopg.pq.TransactionStatus.INTRANS)
