"""The HMAC every keyed transform starts from: pgcrypto's equals the builtin one, byte for byte,
and pgparity uses pgcrypto only when it is already installed, usable and right — creating nothing.

Both constructions are compared with Python's ``hmac`` over many messages (empty, one byte,
multibyte, longer than a block, very long, NULL) and keys (shorter than, exactly, and longer than
the 64-byte block, with zero and high bytes). Detection is tried against hostile catalogs: no
extension, a look-alike ``hmac()`` outside the extension, an odd schema name, revoked
privileges, a read-only session, and a hot standby.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import psycopg
import pytest
from psycopg import conninfo, sql

from fix_pg import PgDatabase, Unprivileged
from pgparity.seed.mac import BUILTIN, Mac, MacKind, choose_mac, text_key

MESSAGES: list[str | None] = [
    "",
    "a",
    "alice@example.com",
    "Zoë Ünïcödé 名前 ✓ 🙂",
    "x" * 55,  # the inner hash's padding boundaries, with the 64-byte pad in front
    "y" * 56,
    "z" * 64,
    "0123456789abcdef" * 500,  # 8,000 bytes
    "'; DROP TABLE t; --",
    None,
]
KEYS = [
    b"sixteen-byte-key",
    bytes(range(1, 64)),
    bytes(range(64)),  # exactly a block, with a zero byte
    bytes(range(256))[::-1][:65],  # one byte over: hashed first
    b"\xff" * 200,
    "κλειδί-μυστικό-ключ".encode(),
    b"trailing-zero-bytes" + bytes(8),  # the same HMAC as without them
]
CRYPTO_SCHEMA = 'Crypto "odd" schema'
EACH_MESSAGE = sql.SQL("SELECT {} FROM unnest(%s::text[]) WITH ORDINALITY AS m(v, n) ORDER BY n")


def expected(key: bytes, message: str | None) -> bytes | None:
    if message is None:
        return None
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def computed(dsn: str, mac: Mac, key: bytes) -> list[bytes | None]:
    """Each message's HMAC as ``mac`` computes it in SQL, in a session given the key as pgparity
    gives it (start-up options)."""
    with psycopg.connect(dsn, autocommit=True, options=mac.session_options(key)) as conn:
        rows = conn.execute(
            EACH_MESSAGE.format(mac.of_text(sql.SQL("m.v"))), (MESSAGES,)
        ).fetchall()
    return [None if row[0] is None else bytes(row[0]) for row in rows]


def install_pgcrypto(db: PgDatabase, schema: str = CRYPTO_SCHEMA) -> None:
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE EXTENSION pgcrypto SCHEMA {}").format(sql.Identifier(schema)))


def catalog_state(conn: psycopg.Connection[Any]) -> tuple[Any, ...]:
    """What creating anything would change: extensions, schemas, functions, settings, xid."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_extension), (SELECT count(*) FROM pg_namespace), "
        "(SELECT count(*) FROM pg_proc), (SELECT count(*) FROM pg_db_role_setting)"
    ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.fixture
def with_pgcrypto(pg_db: PgDatabase) -> PgDatabase:
    install_pgcrypto(pg_db)
    # wait_replay waits for the WAL written so far; with synchronous_commit = off the last
    # commit may not be written yet: a checkpoint writes it.
    pg_db.execute("CHECKPOINT")
    pg_db.cluster.wait_replay()
    return pg_db


def constructions(key: bytes) -> list[Mac]:
    """Every way pgparity may compute the HMAC with ``key`` (pgcrypto's text form: text keys)."""
    kinds = [MacKind.PGCRYPTO, *([MacKind.PGCRYPTO_TEXT] if text_key(key) else [])]
    return [BUILTIN, *(Mac(kind, CRYPTO_SCHEMA) for kind in kinds)]


class TestBothConstructionsAreHmacSha256:
    @pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}-bytes")
    def test_builtin_and_pgcrypto_give_the_same_bytes(
        self, with_pgcrypto: PgDatabase, key: bytes
    ) -> None:
        want = [expected(key, m) for m in MESSAGES]
        for mac in constructions(key):
            assert computed(with_pgcrypto.dsn, mac, key) == want, mac

    @pytest.mark.parametrize("key", KEYS, ids=lambda k: f"{len(k)}-bytes")
    def test_the_text_form_is_chosen_only_for_a_text_key(
        self, with_pgcrypto: PgDatabase, key: bytes
    ) -> None:
        with with_pgcrypto.connect() as conn:
            chosen = choose_mac(conn, key)
        assert chosen.kind is (MacKind.PGCRYPTO_TEXT if text_key(key) else MacKind.PGCRYPTO)

    def test_which_keys_are_text(self) -> None:
        assert text_key(b"sixteen-byte-key")
        assert text_key("κλειδί-μυστικό-ключ".encode())
        assert text_key(b"trailing-zero-bytes" + bytes(8))  # padding, dropped
        assert not text_key(bytes(range(64)))  # a zero byte inside
        assert not text_key(b"\xff" * 20)  # not UTF-8

    def test_a_server_that_is_not_utf8_gets_the_bytea_form(self, pg_db: PgDatabase) -> None:
        """The text form would hash LATIN1 bytes: the value's UTF-8 bytes are hashed instead."""
        name = f"{pg_db.name}_latin1"
        with psycopg.connect(pg_db.cluster.primary_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
                    "TEMPLATE template0"
                ).format(sql.Identifier(name))
            )
        try:
            dsn = conninfo.make_conninfo(pg_db.dsn, dbname=name)
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("CREATE EXTENSION pgcrypto")
                mac = choose_mac(conn, KEYS[0])
            assert mac == Mac(MacKind.PGCRYPTO, "public")
            key, messages = KEYS[0], ["", "Zoë Ünïcödé ÿ", "x" * 64, None]
            for each in (mac, BUILTIN):
                with psycopg.connect(
                    dsn, autocommit=True, options=each.session_options(key)
                ) as conn:
                    rows = conn.execute(
                        EACH_MESSAGE.format(each.of_text(sql.SQL("m.v"))), (messages,)
                    ).fetchall()
                got = [None if r[0] is None else bytes(r[0]) for r in rows]
                assert got == [expected(key, m) for m in messages], each
        finally:
            with psycopg.connect(pg_db.cluster.primary_dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )

    def test_bytes_with_zero_bytes(self, with_pgcrypto: PgDatabase) -> None:
        key, message = KEYS[0], b"\x00\x01\x00" * 30
        for mac in constructions(key):
            with psycopg.connect(
                with_pgcrypto.dsn, autocommit=True, options=mac.session_options(key)
            ) as conn:
                row = conn.execute(
                    sql.SQL("SELECT {}").format(mac.of_bytes(sql.SQL("%s::bytea"))), (message,)
                ).fetchone()
            assert row is not None
            assert bytes(row[0]) == hmac.new(key, message, hashlib.sha256).digest(), mac

    def test_the_key_is_in_no_sql_text(self, with_pgcrypto: PgDatabase) -> None:
        key = b"a-secret-key-that-must-not-leak"
        for mac in constructions(key):
            text = sql.SQL("SELECT {}").format(mac.of_text(sql.Literal("v")))
            with with_pgcrypto.connect() as conn:
                rendered = text.as_string(conn)
            for form in (key.hex(), key.decode(), *_pads(mac, key)):
                assert form not in rendered


def _pads(mac: Mac, key: bytes) -> list[str]:
    return [option.split("=", 1)[1] for option in mac.session_options(key).split(" -c ")[1:]]


class TestPgcryptoIsUsedOnlyWhenAlreadyThereAndRight:
    def test_absent_means_builtin(self, pg_db: PgDatabase) -> None:
        with pg_db.connect() as conn:
            assert choose_mac(conn) == BUILTIN

    def test_installed_in_an_odd_schema_is_found_and_called_qualified(
        self, with_pgcrypto: PgDatabase
    ) -> None:
        with with_pgcrypto.connect() as conn:
            conn.execute("SET search_path = pg_catalog")
            assert choose_mac(conn) == Mac(MacKind.PGCRYPTO, CRYPTO_SCHEMA)

    def test_a_look_alike_hmac_outside_the_extension_is_not_used(self, pg_db: PgDatabase) -> None:
        pg_db.execute(
            "CREATE FUNCTION public.hmac(bytea, bytea, text) RETURNS bytea "
            "LANGUAGE sql AS $$ SELECT sha256($1) $$"
        )
        with pg_db.connect() as conn:
            assert choose_mac(conn) == BUILTIN

    def test_a_look_alike_earlier_on_the_search_path_does_not_shadow_pgcrypto(
        self, with_pgcrypto: PgDatabase
    ) -> None:
        with_pgcrypto.execute(
            "CREATE FUNCTION public.hmac(bytea, bytea, text) RETURNS bytea "
            "LANGUAGE sql AS $$ SELECT sha256($1) $$"
        )
        with with_pgcrypto.connect() as conn:
            conn.execute(
                sql.SQL("SET search_path = public, {}").format(sql.Identifier(CRYPTO_SCHEMA))
            )
            mac = choose_mac(conn)
        assert mac == Mac(MacKind.PGCRYPTO, CRYPTO_SCHEMA)
        key = KEYS[0]
        assert computed(with_pgcrypto.dsn, mac, key) == [expected(key, m) for m in MESSAGES]

    @pytest.mark.parametrize(
        "revoke",
        [
            "REVOKE EXECUTE ON FUNCTION {schema}.hmac(bytea, bytea, text) FROM PUBLIC",
            "REVOKE USAGE ON SCHEMA {schema} FROM PUBLIC",
        ],
        ids=["no-execute", "no-schema-usage"],
    )
    def test_a_role_that_may_not_call_it_gets_the_builtin(
        self, pg_db: PgDatabase, pg_unprivileged: Unprivileged, revoke: str
    ) -> None:
        install_pgcrypto(pg_db)
        schema = sql.Identifier(CRYPTO_SCHEMA)
        with pg_db.connect() as conn:
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(schema))
            with psycopg.connect(pg_unprivileged.dsn, autocommit=True) as reader:
                assert choose_mac(reader) == Mac(MacKind.PGCRYPTO, CRYPTO_SCHEMA)
            conn.execute(sql.SQL(revoke).format(schema=schema))
        with psycopg.connect(pg_unprivileged.dsn, autocommit=True) as reader:
            assert choose_mac(reader) == BUILTIN

    def test_detection_creates_nothing_and_works_read_only(self, with_pgcrypto: PgDatabase) -> None:
        with with_pgcrypto.connect() as conn:
            before = catalog_state(conn)
            xid = conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone()
        read_only = "-c default_transaction_read_only=on"
        with psycopg.connect(with_pgcrypto.dsn, options=read_only) as conn:  # not autocommit
            assert choose_mac(conn).kind is MacKind.PGCRYPTO
            assert conn.execute("SELECT pg_current_xact_id_if_assigned()").fetchone() == (None,)
            conn.rollback()
        with psycopg.connect(with_pgcrypto.dsn, options=read_only) as conn:
            assert choose_mac(conn) == choose_mac(conn)  # twice in one transaction: no state
        with with_pgcrypto.connect() as conn:
            assert catalog_state(conn) == before
        assert xid == (None,)

    def test_on_a_hot_standby_pgcrypto_installed_on_the_primary_is_used(
        self, with_pgcrypto: PgDatabase
    ) -> None:
        with psycopg.connect(with_pgcrypto.replica_dsn, autocommit=True) as standby:
            assert standby.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            mac = choose_mac(standby)
        assert mac == Mac(MacKind.PGCRYPTO, CRYPTO_SCHEMA)
        key = KEYS[3]
        want = [expected(key, m) for m in MESSAGES]
        assert computed(with_pgcrypto.replica_dsn, mac, key) == want
        assert computed(with_pgcrypto.replica_dsn, BUILTIN, key) == want


def test_unprivileged_dsn_is_a_different_role(pg_unprivileged: Unprivileged) -> None:
    """Guards the privilege tests above: they only mean something for a non-superuser."""
    with psycopg.connect(pg_unprivileged.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row == (False,)
    assert conninfo.conninfo_to_dict(pg_unprivileged.dsn)["user"] == pg_unprivileged.role
