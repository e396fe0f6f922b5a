"""No transform copies a raw value, for any value length, range or parameter (real source).

Property-style: many lengths (0–40 characters, ASCII and multibyte), many numbers (zero, ±1,
small integers, type extremes, several scales) and many parameters, each seeded or evaluated
on the real server; the value on the target must never equal the source's unless the column is
``keep`` (an empty string masked length for length stays empty, and NULL stays NULL).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from fix_pg import PgDatabase
from pgparity.seed.transforms import TRANSFORMS, ColumnInfo, Context

PGPARITY = [sys.executable, "-m", "pgparity"]
KEY = "masking-property-key-0123456789"
ALPHABETS = ("abcdefghij", "ÄÖÜßéèñç✓名", "0123456789")
PARTIAL = [(0, 0), (1, 0), (0, 1), (2, 1), (3, 3), (4, 0), (0, 4), (8, 8), (16, 16), (32, 32)]


def strings() -> list[str]:
    """Lengths 0 to 40 over three alphabets, none containing the mask character."""
    return [
        "".join(alphabet[(i * 7 + n) % len(alphabet)] for i in range(n))
        for n in range(41)
        for alphabet in ALPHABETS
    ]


def pgparity(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGPARITY_")}
    env["PGPARITY_MASKING_KEY"] = KEY
    return subprocess.run(
        [*PGPARITY, *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def seed(source: PgDatabase, target: PgDatabase, policy: dict[str, Any], tmp: Path) -> None:
    path = tmp / "policy.yaml"
    path.write_text(json.dumps(policy))
    result = pgparity(
        "seed", "--source-dsn", source.dsn, "--target-dsn", target.dsn, "--policy", str(path),
        "--no-parity", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def by_id(db: PgDatabase, table: str) -> dict[int, tuple[Any, ...]]:
    with db.connect() as conn:
        rows = conn.execute(
            sql.SQL("SELECT * FROM {} ORDER BY id").format(sql.Identifier(table))
        ).fetchall()
    return {int(row[0]): tuple(row[1:]) for row in rows}


def differing(source: PgDatabase, target: PgDatabase, table: str) -> list[str]:
    """(row, column) pairs where a non-NULL value arrived unchanged."""
    with source.connect() as conn:
        cursor = conn.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(sql.Identifier(table)))
        names = [d.name for d in cursor.description or ()][1:]
    before, after = by_id(source, table), by_id(target, table)
    assert before.keys() == after.keys()
    return [
        f"row {row}, {name}: {value!r}"
        for row, values in before.items()
        for name, value, masked in zip(names, values, after[row], strict=True)
        if value is not None and value not in ("", b"") and masked == value
    ]


class TestPartialMasksEveryLength:
    """``partial`` keeps at most half of any value, whatever ``first`` and ``last`` say."""

    def test_seeded_values_keep_at_most_half(
        self, pg_plain_db: PgDatabase, pg_target_db: PgDatabase, tmp_path: Path
    ) -> None:
        columns = [f"p{first}_{last}" for first, last in PARTIAL]
        pg_plain_db.execute(
            f"CREATE TABLE words (id int PRIMARY KEY, {', '.join(c + ' text' for c in columns)})"
        )
        with pg_plain_db.connect() as conn, conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL("INSERT INTO words VALUES (%s, {})").format(
                    sql.SQL(", ").join(sql.Placeholder() * len(columns))
                ),
                [(n, *[text] * len(columns)) for n, text in enumerate(strings())],
            )
            cursor.execute("INSERT INTO words (id) VALUES (-1)")
        rules: dict[str, Any] = {"id": "keep"}
        for (first, last), column in zip(PARTIAL, columns, strict=True):
            rules[column] = {"transform": "partial", "first": first, "last": last}
        seed(
            pg_plain_db,
            pg_target_db,
            {"version": 1, "tables": {"public.words": {"columns": rules}}},
            tmp_path,
        )
        before, after = by_id(pg_plain_db, "words"), by_id(pg_target_db, "words")
        assert after[-1] == (None,) * len(columns)
        for row, values in before.items():
            for (first, last), value, masked in zip(PARTIAL, values, after[row], strict=True):
                if value is None:
                    continue
                n, half = len(value), len(value) // 2
                kept_first = min(first, half)
                kept_last = min(last, half - kept_first)
                assert len(masked) == n
                assert masked.count("*") >= n - half, (first, last, value, masked)
                assert masked == (
                    value[:kept_first] + "*" * (n - kept_first - kept_last)
                    + value[n - kept_last :]
                ), (first, last, value, masked)  # fmt: skip
                assert masked != value or n == 0

    @pytest.mark.parametrize(
        "params",
        [{"first": 100}, {"last": 100}, {"first": 100, "last": 100}, {"first": -3, "last": -3},
         {"first": 2**31 - 1, "last": 5}],
        ids=["first-100", "last-100", "both-100", "negative", "huge"],
    )  # fmt: skip
    def test_the_transform_masks_even_parameters_the_policy_check_refuses(
        self, pg_plain_db: PgDatabase, params: dict[str, int]
    ) -> None:
        column = ColumnInfo("t", "s", "text", "text", "S")
        masked = TRANSFORMS["partial"].build(column, params, Context())
        query = sql.SQL("SELECT src.s, {} FROM unnest(%s::text[]) AS src(s)").format(
            masked.expression
        )
        values = strings() + ["x" * n for n in (101, 150, 257)]
        with pg_plain_db.connect() as conn:
            pairs = conn.execute(query, (values,)).fetchall()
        for value, out in pairs:
            assert len(out) == len(value), (params, value, out)
            assert sum(c != "*" for c in out) <= len(value) // 2, (params, value, out)
            assert out != value or value == ""

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"first": 100}, "parameter 'first' of partial must be between 0 and 32 (got 100)"),
            ({"last": -1}, "parameter 'last' of partial must be between 0 and 32 (got -1)"),
            ({"mask": ""}, "parameter 'mask' of partial must be exactly one character"),
            ({"mask": "##"}, "parameter 'mask' of partial must be exactly one character"),
            ({"first": 1.5}, "parameter 'first' of partial must be int"),
        ],
        ids=["first-100", "last-negative", "mask-empty", "mask-two", "first-float"],
    )
    def test_seed_refuses_meaningless_parameters_before_writing(
        self,
        pg_plain_db: PgDatabase,
        pg_target_db: PgDatabase,
        tmp_path: Path,
        params: dict[str, Any],
        message: str,
    ) -> None:
        pg_plain_db.execute("CREATE TABLE cards (id int PRIMARY KEY, number text)")
        pg_plain_db.execute("INSERT INTO cards VALUES (1, '4111111111111111')")
        policy = {
            "version": 1,
            "tables": {
                "public.cards": {
                    "columns": {"id": "keep", "number": {"transform": "partial", **params}}
                }
            },
        }
        path = tmp_path / "policy.yaml"
        path.write_text(json.dumps(policy))
        result = pgparity(
            "seed", "--source-dsn", pg_plain_db.dsn, "--target-dsn", pg_target_db.dsn,
            "--policy", str(path), "--replace",
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert f"public.cards.number: {message}" in result.stderr
        assert pg_target_db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'cards'") == 0
        checked = pgparity("policy", "check", "--dsn", pg_plain_db.dsn, "--policy", str(path))
        assert checked.returncode == 1
        assert f"public.cards.number: {message}" in checked.stdout


NUMBERS = [0, 1, -1, 2, -2, 3, 7, 10, 99, 100, 1000, 123456, -98765, 32767, -32768]
SCALED = ["0.00", "0.01", "-0.01", "1.00", "12.34", "1200.00", "99999999.99", "-5.50"]
DAYS = [date(2000, 1, 1), date(1969, 12, 31), date(2024, 2, 29), date(1900, 1, 1)]
MOMENTS = [datetime(2024, 5, 17, 13, 47, 12, 345678), datetime(1999, 12, 31, 23, 59, 59, 1)]


class TestNoTransformCopiesRawValues:
    """Every masking transform, over ranges and parameters: no non-empty value survives."""

    def test_numbers_dates_and_text(
        self, pg_plain_db: PgDatabase, pg_target_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute("""
            CREATE TABLE mixed (
                id int PRIMARY KEY,
                i2 int2, i4 int4, i8 int8, n numeric, n2 numeric(12, 2), f8 float8, f4 float4,
                i2b int2, i4b int4, n2b numeric(12, 2), f8b float8,
                d date, ts timestamp, tz timestamptz, d1 date, ts1 timestamp,
                dtm date, tsh timestamp, tzd timestamptz,
                h text, hl text, e text, nm text, ph text, fl text, u text, hi int4,
                pe int4, pe8 int8, j jsonb, js json, c text, m money)
        """)
        rows = []
        for row, (number, scaled, day, moment, text) in enumerate(
            itertools.zip_longest(NUMBERS, SCALED, DAYS, MOMENTS, strings()[3:], fillvalue=None)
        ):
            number = number if number is not None else row
            scaled = scaled or f"{row}.{row % 100:02d}"
            day = day or date(2001, 1, 1 + row % 28)
            moment = moment or datetime(2020, 1, 1 + row % 28, row % 24, 17, 5, row + 1)
            text = text or f"value {row}"
            doc = json.dumps({"name": text, "n": number, "tags": [text, scaled, True, None]})
            small = max(min(number, 32767), -32768)
            rows.append(
                (row, small, number, number, scaled, scaled, float(number), float(number),
                 small, number, scaled, float(number),
                 day, moment, moment, day, moment, date(2001, 3, 2 + row % 27), moment, moment,
                 text, text, f"{text}@corp.example", f"Q{text}", f"+1 555 {row:07d}", text,
                 text, number, number, number * 1000003, doc, doc, text, scaled)
            )  # fmt: skip
        with pg_plain_db.connect() as conn, conn.cursor() as cursor:
            cursor.executemany(
                sql.SQL("INSERT INTO mixed VALUES ({})").format(
                    sql.SQL(", ").join(sql.Placeholder() * len(rows[0]))
                ),
                rows,
            )
            cursor.execute("INSERT INTO mixed (id) VALUES (-1)")
        columns = {
            "id": "keep",
            "i2": {"transform": "noise", "percent": 1},
            "i4": {"transform": "noise", "percent": 5},
            "i8": {"transform": "noise", "percent": 100},
            "n": {"transform": "noise", "percent": 0.01},
            "n2": {"transform": "noise", "percent": 5},
            "f8": {"transform": "noise", "percent": 1},
            "f4": {"transform": "noise", "percent": 50},
            "i2b": {"transform": "hash_int", "min": -100, "max": 100},
            "i4b": {"transform": "hash_int", "min": 0, "max": 9},
            "n2b": {"transform": "noise", "percent": 0.5},
            "f8b": {"transform": "noise", "percent": 0.01},
            "d": {"transform": "date_shift", "days": 1},
            "ts": {"transform": "date_shift", "days": 2},
            "tz": {"transform": "date_shift", "days": 3650},
            "d1": {"transform": "date_shift", "days": 30},
            "ts1": {"transform": "date_trunc", "unit": "second"},
            "dtm": {"transform": "date_trunc", "unit": "month"},
            "tsh": {"transform": "date_trunc", "unit": "hour"},
            "tzd": {"transform": "date_trunc", "unit": "day"},
            "h": "hash",
            "hl": {"transform": "hash", "length": 5},
            "e": "email",
            "nm": "name",
            "ph": "phone",
            "fl": "fill",
            "u": "uuid",
            "hi": {"transform": "hash_int", "min": 0, "max": 2},
            "pe": "permute",
            "pe8": "permute",
            "j": "jsonb_mask",
            "js": "jsonb_mask",
            "c": {"transform": "constant", "value": "masked"},
            "m": {"transform": "noise", "percent": 0.01},
        }
        seed(
            pg_plain_db,
            pg_target_db,
            {"version": 1, "tables": {"public.mixed": {"columns": columns}}},
            tmp_path,
        )
        unchanged = differing(pg_plain_db, pg_target_db, "mixed")
        # hash_int into [0, 9] or [0, 2] and [-100, 100] can land on the value by chance: the
        # transform never reads the value's magnitude, so an equal output reveals nothing.
        by_chance = ("i2b", "i4b", "hi")
        assert [u for u in unchanged if not u.split(", ")[1].startswith(by_chance)] == []
        assert by_id(pg_target_db, "mixed")[-1] == (None,) * (len(columns) - 1)
        before, after = by_id(pg_plain_db, "mixed"), by_id(pg_target_db, "mixed")
        names = list(columns)[1:]
        for row in before:
            if row < 0:
                continue
            was, now = (
                dict(zip(names, before[row], strict=True)),
                dict(zip(names, after[row], strict=True)),
            )
            assert abs((now["d"] - was["d"]).days) == 1
            assert 1 <= abs((now["ts"] - was["ts"]).total_seconds()) / 86400 <= 2
            assert (now["ts"] - was["ts"]).total_seconds() % 86400 == 0


STRUCTURED_SOURCE = """
CREATE EXTENSION hstore;
CREATE TYPE postal AS (street text, town text);
CREATE DOMAIN doc AS jsonb;
CREATE DOMAIN labels AS text[];
CREATE TABLE profiles (
    id int PRIMARY KEY,
    settings jsonb, raw json, aliases text[], home postal, resume xml, photo bytea,
    extra hstore, search tsvector, meta doc, tags labels,
    prefs jsonb NOT NULL, nicks text[] NOT NULL, office postal NOT NULL, blob bytea NOT NULL,
    amount numeric
);
INSERT INTO profiles
SELECT g,
       jsonb_build_object('contact', jsonb_build_object(
           'email', 'canary.jsonb' || g || '@leak.example', 'phones', jsonb_build_array(
               'canary-phone-' || g, 5550100 + g)), 'age', 20 + g % 50, 'vip', g % 2 = 0,
           'none', NULL),
       json_build_object('who', 'canary.json' || g || '@leak.example'),
       ARRAY['canary-array-' || g, 'plain'],
       ROW('canary street ' || g, 'Canarytown')::postal,
       xmlelement(name p, 'canary.xml' || g || '@leak.example'),
       convert_to('canary.bytea' || g || '@leak', 'UTF8'),
       hstore('k', 'canary.hstore' || g || '@leak'),
       to_tsvector('simple', 'zqcanarytsv' || g),
       jsonb_build_object('m', 'canary.domain' || g || '@leak'),
       ARRAY['canary-labels-' || g]::labels,
       jsonb_build_array('canary.prefs' || g || '@leak', g),
       ARRAY['canary-nick-' || g],
       ROW('canary office ' || g, 'Canarycity')::postal,
       convert_to('canary.blob' || g || '@leak', 'UTF8'),
       g
FROM generate_series(1, 200) g;
UPDATE profiles SET settings = (SELECT settings FROM profiles WHERE id = 1) WHERE id = 2;
"""
STRUCTURED_COLUMNS = (
    "settings", "raw", "aliases", "home", "resume", "photo", "extra", "search", "meta", "tags",
    "prefs", "nicks", "office", "blob",
)  # fmt: skip


def _shape(value: Any) -> Any:
    """A JSON document with every string and number leaf replaced by its kind."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "number"
    return value


class TestPolicyInitMasksStructuredColumns:
    """Canaries inside json, jsonb, arrays, composites, xml, bytea, hstore and tsvector (and
    domains over them) never reach the target when `policy init`'s suggestions are accepted."""

    def test_no_canary_reaches_the_target(
        self, pg_plain_db: PgDatabase, pg_target_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute(STRUCTURED_SOURCE)
        path = tmp_path / "policy.yaml"
        made = pgparity("policy", "init", "--dsn", pg_plain_db.dsn, "--policy", str(path))
        assert made.returncode == 0, made.stderr
        lines = {
            line.split(":")[0].strip(): line
            for line in path.read_text().splitlines()
            if ":" in line
        }
        for column in STRUCTURED_COLUMNS:
            assert "# REVIEW" in lines[column], lines[column]
        assert lines["amount"].strip() == "amount: keep"
        seeded = pgparity(
            "seed", "--source-dsn", pg_plain_db.dsn, "--target-dsn", pg_target_db.dsn,
            "--policy", str(path), "--no-parity", "--quiet",
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stderr
        bindir = pg_target_db.cluster.bindir
        assert bindir is not None
        dumps = [
            subprocess.run(
                [str(bindir / "pg_dump"), "--data-only", "-d", db.dsn],
                capture_output=True, text=True, check=True,
            ).stdout.lower()
            for db in (pg_plain_db, pg_target_db)
        ]  # fmt: skip
        for needle in ("canary", "zqcanarytsv", b"canary".hex()):
            assert needle in dumps[0]  # the scan would see it
            assert needle not in dumps[1], needle
        with pg_target_db.connect() as conn:
            text = conn.execute("SELECT string_agg(p::text, ' ') FROM profiles p").fetchone()
        assert text is not None
        assert "canary" not in str(text[0]).lower()

    def test_jsonb_mask_keeps_keys_and_shape_and_equal_documents_stay_equal(
        self, pg_plain_db: PgDatabase, pg_target_db: PgDatabase, tmp_path: Path
    ) -> None:
        pg_plain_db.execute(STRUCTURED_SOURCE)
        columns: dict[str, Any] = dict.fromkeys(STRUCTURED_COLUMNS, "null")
        columns |= {"id": "keep", "amount": "keep", "settings": "jsonb_mask", "raw": "jsonb_mask"}
        columns |= {"meta": "jsonb_mask", "prefs": "jsonb_mask"}
        columns |= {c: {"transform": "constant", "value": v} for c, v in
                    (("nicks", "{}"), ("office", "(,)"), ("blob", ""))}  # fmt: skip
        seed(
            pg_plain_db,
            pg_target_db,
            {"version": 1, "tables": {"public.profiles": {"columns": columns}}},
            tmp_path,
        )
        query = "SELECT id, settings, raw, meta, prefs FROM profiles ORDER BY id"
        with pg_plain_db.connect() as conn:
            before = conn.execute(query).fetchall()
        with pg_target_db.connect() as conn:
            after = conn.execute(query).fetchall()
        for was, now in zip(before, after, strict=True):
            for old, new in zip(was[1:], now[1:], strict=True):
                assert _shape(new) == _shape(old)
                assert new != old
            assert now[1]["contact"]["phones"][1] >= 1_000_000  # 7 digits stay 7 digits
            assert now[1]["vip"] == was[1]["vip"]
            assert now[1]["none"] is None
        assert after[0][1] == after[1][1]  # equal documents, equal masks
        assert after[0][1] != after[2][1]
