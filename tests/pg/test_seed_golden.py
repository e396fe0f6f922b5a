"""Golden outputs: every keyed transform gives, for one fixed key, exactly what it always gave.

Masked values are join keys: the same email must mask to the same value in every table, in every
seed and in every archive made with the same key, across pgparity versions. So a cheaper way of
computing a transform is only allowed if it is byte-for-byte the old one. The outputs below were
pinned before the masking was optimised (issue 17), through the real plan (``masked_select``) on
a real server, and each is checked in every HMAC construction pgparity can choose.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from fix_pg import PgDatabase
from pgparity.models.policy import ColumnRule
from pgparity.seed.catalog import TableInfo, read_catalog
from pgparity.seed.mac import BUILTIN, Mac, MacKind, choose_mac
from pgparity.seed.plan import masked_select
from pgparity.seed.transforms import TRANSFORMS

GOLDEN_FILE = Path(__file__).with_name("golden_masking.json")
GOLDEN_KEY = b"pgparity-golden-outputs-key-2024"
# The text form of dates, times, money and floats depends on these; the outputs do not.
FORMAT_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO,MDY -c lc_monetary=C -c extra_float_digits=1"

LONG = "0123456789abcdef" * 20
TEXTS = [
    "",
    "a",
    "alice@example.com",
    "Zoë Ünïcödé 名前 ✓",
    "+1 (555) 013-3713",
    LONG,
    None,
    "bob.smith+tag@mail.example.org",
    'O\'Brien, "Q" \\ tab\there',
    "12345",
    "x@y",
    "no-at-sign",
]
SOURCE = """
CREATE TABLE golden (
    id int PRIMARY KEY, t text, u uuid, i4 int4, i8 int8, n numeric(14, 2), m money,
    f float8, d date, ts timestamp, tz timestamptz, j jsonb);
CREATE TABLE golden_by_value (i4 int4, n numeric(14, 2), f float8);
"""
ROWS = [
    # id, uuid, int4, int8, numeric, money, float8, date, timestamp, timestamptz, jsonb
    (1, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0, 0, "0.00", "0.00", 0.0, "2000-01-01",
     "2024-05-17 13:47:12.345678", "2024-05-17 13:47:12.345678+00", '{"a": 1}'),
    (2, "00000000-0000-0000-0000-000000000000", 1, 1, "0.01", "0.01", 1.5, "1969-12-31",
     "1999-12-31 23:59:59.000001", "1999-12-31 23:59:59+00",
     '{"name": "Alice", "age": 42, "ok": true, "tags": ["x", "y"], "none": null}'),
    (3, "ffffffff-ffff-ffff-ffff-ffffffffffff", -1, -1, "-0.01", "-0.01", -2.25, "2024-02-29",
     "1900-01-01 00:00:00", "1900-01-01 00:00:00+00", '[1, -2.5, 0.001, 1e3, "s", [], {}]'),
    (4, "123e4567-e89b-12d3-a456-426614174000", 2, 2, "12.34", "12.34", "NaN", "1900-01-01",
     "2038-01-19 03:14:07", "2038-01-19 03:14:07+00", '"just a string"'),
    (5, "9f7c1c8e-2d1a-4e36-9d0b-0c1f3e5b7a91", 7, 7, "1200.00", "1200.00", "Infinity",
     "2100-12-31", "1970-01-01 00:00:00", "1970-01-01 00:00:00+00", "12345"),
    (6, "5b8a3f2e-0000-4000-8000-000000000001", 100, 100, "99999999.99", "99999999.99",
     "-Infinity", "1970-01-01", "2000-02-29 12:00:00", "2000-02-29 12:00:00+00",
     '{"nested": {"deeper": {"deepest": "value"}}, "n": -0.0}'),
    (7, None, None, None, None, None, None, None, None, None, None),
    (8, "e7d6c5b4-a392-4817-8000-aabbccddeeff", 2147483647, 9223372036854775807, "-5.50",
     "-5.50", 1e300, "0001-01-01", "2024-12-31 23:59:59.999999",
     "2024-12-31 23:59:59.999999+00", "null"),
    (9, "11111111-2222-4333-8444-555555555555", -2147483648, -9223372036854775808, "1.00",
     "1.00", -1e-300, "9999-12-31", "2001-09-09 01:46:40", "2001-09-09 01:46:40+00",
     '{"email": "x@y.z", "list": [{"k": "v"}, {"k": 1.25}]}'),
    (10, "22222222-3333-4444-8555-666666666666", 123456, 123456789012, "987654.32",
     "987654.32", 3.14159, "2020-06-15", "2020-06-15 08:30:00", "2020-06-15 08:30:00+00",
     "[]"),
    (11, "33333333-4444-4555-8666-777777777777", 42, 42, "10.00", "10.00", 100.0,
     "1985-07-04", "1985-07-04 00:00:00", "1985-07-04 00:00:00+00", "{}"),
    (12, "44444444-5555-4666-8777-888888888888", -5, -5, "-1200.00", "-1200.00", -0.5,
     "2010-10-10", "2010-10-10 10:10:10", "2010-10-10 10:10:10+00", '{"x": "ÄÖÜ名"}'),
]  # fmt: skip

# Every keyed transform, with the parameters that change how it computes.
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "hash": ("golden", "t", {"transform": "hash"}),
    "hash-length-8": ("golden", "t", {"transform": "hash", "length": 8}),
    "hash-length-64": ("golden", "t", {"transform": "hash", "length": 64}),
    "hash_int": ("golden", "i8", {"transform": "hash_int"}),
    "hash_int-range": ("golden", "i4", {"transform": "hash_int", "min": -50, "max": 50}),
    "hash_int-int8-range": (
        "golden", "i8", {"transform": "hash_int", "min": -(2**62), "max": 2**62},
    ),
    "uuid-text": ("golden", "t", {"transform": "uuid"}),
    "uuid-uuid": ("golden", "u", {"transform": "uuid"}),
    "email": ("golden", "t", {"transform": "email"}),
    "email-unique": ("golden", "t", {"transform": "email", "unique": True}),
    "name": ("golden", "t", {"transform": "name"}),
    "name-first": ("golden", "t", {"transform": "name", "part": "first"}),
    "name-last": ("golden", "t", {"transform": "name", "part": "last"}),
    "phone": ("golden", "t", {"transform": "phone"}),
    "noise-int4": ("golden", "i4", {"transform": "noise", "percent": 5}),
    "noise-int8": ("golden", "i8", {"transform": "noise", "percent": 50}),
    "noise-numeric": ("golden", "n", {"transform": "noise", "percent": 5}),
    "noise-money": ("golden", "m", {"transform": "noise", "percent": 10}),
    "noise-float8": ("golden", "f", {"transform": "noise", "percent": 1}),
    "noise-int4-by-value": ("golden_by_value", "i4", {"transform": "noise", "percent": 5}),
    "noise-numeric-by-value": ("golden_by_value", "n", {"transform": "noise", "percent": 5}),
    "noise-float8-by-value": ("golden_by_value", "f", {"transform": "noise", "percent": 100}),
    "date_shift-date": ("golden", "d", {"transform": "date_shift", "days": 30}),
    "date_shift-timestamp": ("golden", "ts", {"transform": "date_shift", "days": 1}),
    "date_shift-timestamptz": ("golden", "tz", {"transform": "date_shift", "days": 3650}),
    "permute-int4": ("golden", "i4", {"transform": "permute"}),
    "permute-int8": ("golden", "i8", {"transform": "permute"}),
    "jsonb_mask": ("golden", "j", {"transform": "jsonb_mask"}),
}  # fmt: skip
# Several keyed columns in one SELECT, as a real policy masks a table.
TOGETHER: dict[str, dict[str, Any]] = {
    "t": {"transform": "email", "unique": True},
    "i4": {"transform": "noise", "percent": 5},
    "i8": {"transform": "permute"},
    "n": {"transform": "hash_int", "min": 0, "max": 999},
    "d": {"transform": "date_shift", "days": 30},
    "j": {"transform": "jsonb_mask"},
}


def load_source(db: PgDatabase) -> None:
    db.execute(SOURCE)
    with db.connect() as conn, conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO golden VALUES (%s, %s, %s, %s, %s, %s, %s::numeric::money, %s, %s, %s, "
            "%s, %s)",
            [(row[0], TEXTS[row[0] - 1], *row[1:]) for row in ROWS],
        )
        cursor.execute(
            "INSERT INTO golden_by_value SELECT i4, n, f FROM golden ORDER BY id",
        )


def masked_rows(
    conn: psycopg.Connection[Any], table: TableInfo, rules: dict[str, dict[str, Any]], mac: Mac
) -> list[str]:
    """The masked table as COPY text lines (rows in physical order, which is insertion order)."""
    column_rules = {
        c.name: ColumnRule(rules[c.name]["transform"], _params(rules[c.name]))
        if c.name in rules
        else ColumnRule("keep")
        for c in table.copied_columns
    }
    query = sql.SQL("COPY ({}) TO STDOUT").format(masked_select(table, column_rules, mac=mac))
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        data = b"".join(bytes(block) for block in copy)
    return data.decode("utf-8").splitlines()


def _params(rule: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rule.items() if k != "transform"}


def golden_outputs(db: PgDatabase, mac: Mac = BUILTIN) -> dict[str, list[str]]:
    """Each case's masked column, and every row of the combined case."""
    options = f"{mac.session_options(GOLDEN_KEY)} {FORMAT_OPTIONS}"
    with psycopg.connect(db.dsn, autocommit=True, options=options) as conn:
        catalog = read_catalog(conn)
        outputs: dict[str, list[str]] = {}
        for name, (table, column, rule) in CASES.items():
            info = catalog.tables[f"public.{table}"]
            position = [c.name for c in info.copied_columns].index(column)
            lines = masked_rows(conn, info, {column: rule}, mac)
            outputs[name] = [line.split("\t")[position] for line in lines]
        outputs["together"] = masked_rows(conn, catalog.tables["public.golden"], TOGETHER, mac)
    return outputs


def pinned() -> dict[str, list[str]]:
    data: dict[str, list[str]] = json.loads(GOLDEN_FILE.read_text(encoding="utf-8"))
    return data


def test_every_keyed_transform_is_pinned() -> None:
    keyed = {name for name, t in TRANSFORMS.items() if t.keyed}
    pinned_transforms = {rule["transform"] for _, _, rule in CASES.values()}
    assert keyed <= pinned_transforms
    assert pinned().keys() == {*CASES, "together"}


def test_keyed_outputs_are_the_pinned_ones(pg_db: PgDatabase) -> None:
    load_source(pg_db)
    outputs = golden_outputs(pg_db)
    expected = pinned()
    assert [name for name in expected if outputs[name] != expected[name]] == []


@pytest.mark.parametrize("kind", [MacKind.PGCRYPTO, MacKind.PGCRYPTO_TEXT])
def test_keyed_outputs_through_pgcrypto_are_the_pinned_ones(
    pg_db: PgDatabase, kind: MacKind
) -> None:
    """pgcrypto's hmac(), installed in a schema off the search path, gives the same outputs, in
    both of its forms (the text form is chosen for this key, the bytea form for others)."""
    load_source(pg_db)
    pg_db.execute("CREATE SCHEMA crypto; CREATE EXTENSION pgcrypto SCHEMA crypto")
    with pg_db.connect() as conn:
        assert choose_mac(conn, GOLDEN_KEY) == Mac(MacKind.PGCRYPTO_TEXT, "crypto")
        assert choose_mac(conn) == Mac(MacKind.PGCRYPTO, "crypto")
    outputs = golden_outputs(pg_db, Mac(kind, "crypto"))
    expected = pinned()
    assert [name for name in expected if outputs[name] != expected[name]] == []
