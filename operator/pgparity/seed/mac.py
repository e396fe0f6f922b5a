"""The keyed hash every keyed transform starts from: HMAC-SHA256, computed inside the source.

Two constructions give the same bytes for every message and key (tests prove it over empty,
multibyte, long and NULL messages and keys of every length class), so joins across tables, runs
and archives do not depend on which one a seed used:

- ``builtin``: H(K⊕opad ‖ H(K⊕ipad ‖ m)) with PostgreSQL's own ``sha256()`` (RFC 2104); nothing
  is needed on the source;
- ``pgcrypto``: pgcrypto's ``hmac(m, K, 'sha256')`` — one call instead of two ``sha256()`` and two
  concatenations. Used only when the extension is **already installed** on the source and the
  role may execute it (pgparity never creates anything there), called schema-qualified, and only
  after a probe shows it returns RFC 2104 HMAC-SHA256. On a UTF-8 server, with a key that is
  valid text once its zero padding is dropped (HMAC pads the key with zeros anyway, so the
  result is the same), its ``hmac(text, text, text)`` form reads the value's bytes as they are
  (``pgcrypto-text``): no ``convert_to()`` and no bytea copy per call.

The key never appears in SQL text (where ``log_statement`` or ``pg_stat_statements`` could
record it): the copying sessions get it in their start-up options, as the settings
``pgparity.mask_ipad``/``pgparity.mask_opad`` (builtin) or ``pgparity.mask_key`` (pgcrypto: the
key as HMAC uses it, the block without its zero padding; both reveal the key alike).
Expressions read them through uncorrelated scalar subqueries, which PostgreSQL evaluates once
per query (InitPlans) — also inside the per-value subqueries that Memoize caches.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import psycopg
from psycopg import sql

HMAC_BLOCK = 64
SETTING_IPAD = "pgparity.mask_ipad"
SETTING_OPAD = "pgparity.mask_opad"
SETTING_KEY = "pgparity.mask_key"

# pgcrypto's hmac(bytea, bytea, text), in whichever schema the extension lives, if it is a
# member of the extension (not a look-alike created beside it) and this role may call it.
_PGCRYPTO_HMAC = """
SELECT n.nspname
FROM pg_catalog.pg_extension e
JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
JOIN pg_catalog.pg_depend d
  ON d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.refobjid = e.oid
 AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass AND d.deptype = 'e'
WHERE e.extname = 'pgcrypto'
  AND d.objid = pg_catalog.to_regprocedure(
        pg_catalog.format('%I.hmac(bytea, bytea, text)', n.nspname))
  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
  AND pg_catalog.has_function_privilege(d.objid, 'EXECUTE')
"""
# Probe messages and a probe key (not the masking key): pgcrypto must return exactly
# RFC 2104 HMAC-SHA256 for them, or the builtin construction is used.
_PROBE_KEY = b"pgparity-probe-key"
_PROBES = (b"", b"pgparity", "Zoë 名前 ✓".encode(), b"0123456789" * 20)


class MacKind(StrEnum):
    BUILTIN = "builtin"
    PGCRYPTO = "pgcrypto"  # hmac(bytea, bytea, text)
    PGCRYPTO_TEXT = "pgcrypto-text"  # hmac(text, text, text): UTF-8 server, key valid as text


@dataclass(frozen=True)
class Mac:
    """How the masked SELECTs compute HMAC-SHA256 (``schema``: pgcrypto's)."""

    kind: MacKind = MacKind.BUILTIN
    schema: str = ""

    def of_text(self, value: sql.Composable) -> sql.Composable:
        """HMAC of a text expression, over its UTF-8 bytes."""
        if self.kind is MacKind.PGCRYPTO_TEXT:  # the server's bytes are UTF-8 already
            return sql.SQL("{}.hmac({}, {}, 'sha256')").format(
                sql.Identifier(self.schema), value, _setting(SETTING_KEY, as_text=True)
            )
        return self.of_bytes(sql.SQL("convert_to({}, 'UTF8')").format(value))

    def of_bytes(self, message: sql.Composable) -> sql.Composable:
        if self.kind is not MacKind.BUILTIN:
            return sql.SQL("{}.hmac({}, {}, 'sha256')").format(
                sql.Identifier(self.schema), message, _setting(SETTING_KEY)
            )
        return sql.SQL("sha256({} || sha256({} || {}))").format(
            _setting(SETTING_OPAD), _setting(SETTING_IPAD), message
        )

    def session_options(self, key: bytes) -> str:
        """libpq ``options`` that give a session the key (never part of any SQL text)."""
        if self.kind is not MacKind.BUILTIN:
            # Without the block's zero padding: the same HMAC, and text when the key is text.
            return f"-c {SETTING_KEY}={key_block(key).rstrip(bytes(1)).hex()}"
        ipad, opad = key_pads(key)
        return f"-c {SETTING_IPAD}={ipad} -c {SETTING_OPAD}={opad}"

    def describe(self) -> str:
        if self.kind is not MacKind.BUILTIN:
            return f"pgcrypto's {self.schema}.hmac(), installed on the source"
        return "the builtin construction from sha256() (pgcrypto is not usable on the source)"


BUILTIN = Mac()


def _setting(name: str, *, as_text: bool = False) -> sql.Composable:
    # An uncorrelated scalar subquery is an InitPlan: decoded once per query, not per row.
    value = sql.SQL("decode(current_setting({}), 'hex')").format(sql.Literal(name))
    if as_text:
        value = sql.SQL("convert_from({}, 'UTF8')").format(value)
    return sql.SQL("(SELECT {})").format(value)


def key_block(key: bytes) -> bytes:
    """The key as HMAC uses it (RFC 2104): hashed if longer than a block, zero-padded to one."""
    if len(key) > HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    return key.ljust(HMAC_BLOCK, b"\0")


def key_pads(key: bytes) -> tuple[str, str]:
    """The HMAC inner and outer pads of ``key``, hex-encoded for the settings."""
    block = key_block(key)
    return bytes(b ^ 0x36 for b in block).hex(), bytes(b ^ 0x5C for b in block).hex()


def text_key(key: bytes) -> bool:
    """Whether the key, as pgcrypto gets it (the block without its zero padding), is text."""
    block = key_block(key).rstrip(bytes(1))
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bytes(1) not in block


def choose_mac(conn: psycopg.Connection[Any], key: bytes | None = None) -> Mac:
    """pgcrypto's hmac() if the source already has it, may run it, and it proves right — its
    text form for a text ``key`` on a UTF-8 server; otherwise the builtin construction."""
    row = conn.execute(_PGCRYPTO_HMAC).fetchone()
    if row is None:
        return BUILTIN
    schema = str(row[0])
    utf8 = conn.info.parameter_status("server_encoding") == "UTF8"
    kinds = [MacKind.PGCRYPTO]
    if key is not None and utf8 and text_key(key):
        kinds.insert(0, MacKind.PGCRYPTO_TEXT)
    for kind in kinds:
        if _computes_hmac_sha256(conn, Mac(kind, schema)):
            return Mac(kind, schema)
    return BUILTIN


def _computes_hmac_sha256(conn: psycopg.Connection[Any], mac: Mac) -> bool:
    as_text = mac.kind is MacKind.PGCRYPTO_TEXT
    query = sql.SQL("SELECT {}.hmac(%s::{t}, %s::{t}, 'sha256')").format(
        sql.Identifier(mac.schema), t=sql.SQL("text" if as_text else "bytea")
    )

    def argument(data: bytes) -> str | bytes:
        return data.decode() if as_text else data

    try:
        with conn.transaction():
            answers = [
                conn.execute(query, (argument(probe), argument(_PROBE_KEY))).fetchone()
                for probe in _PROBES
            ]
    except psycopg.Error:  # FIPS mode without sha256, a broken install: the builtin one works
        return False
    expected = [hmac.new(_PROBE_KEY, probe, hashlib.sha256).digest() for probe in _PROBES]
    return [bytes(a[0]) if a else None for a in answers] == expected
