"""Masking transforms as SQL expressions, evaluated inside the source database.

Raw values never leave production: each column is replaced, in the ``SELECT`` that feeds
``COPY … TO STDOUT``, by an expression built here with ``psycopg.sql`` (other people's table and
column names are always composed as identifiers).

Keyed transforms use HMAC-SHA256 built from PostgreSQL's own ``sha256()`` — no extension is needed
on production. The key never appears in SQL text (where ``log_statement`` or
``pg_stat_statements`` could record it): the HMAC inner and outer pads are passed in the
connection's start-up options as the settings ``pgparity.mask_ipad`` / ``pgparity.mask_opad`` and
read once per query with ``current_setting()``. Equal inputs give equal outputs in every table, so
joins on masked keys survive; NULL stays NULL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from psycopg import sql

HMAC_BLOCK = 64
MIN_KEY_BYTES = 16
KEY_ALIAS = "pgparity_key"


@dataclass(frozen=True)
class ColumnInfo:
    """What a transform needs to know of a column (from the source catalog)."""

    table: str
    name: str
    type: str
    base_type: str
    category: str
    not_null: bool = False
    attnum: int = 0


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    default: Any = None
    required: bool = False
    help: str = ""


@dataclass(frozen=True)
class Masked:
    """The expression that replaces a column, and FROM items it needs (LATERAL steps)."""

    expression: sql.Composable
    from_items: tuple[sql.Composable, ...] = ()


@dataclass(frozen=True)
class Context:
    """Per-table context: the source alias and, for per-row transforms, the row's key."""

    row_key: sql.Composable | None = None


Builder = Callable[[ColumnInfo, Mapping[str, Any], Context], Masked]


@dataclass(frozen=True)
class Transform:
    name: str
    summary: str
    preserves: str
    categories: frozenset[str]
    build: Builder
    params: tuple[Param, ...] = ()
    keyed: bool = True
    unique: Callable[[Mapping[str, Any]], bool] = field(default=lambda _: False)
    digest: bool = False  # reads value_digest(column)
    # pg_stats metrics the output keeps close to the input's: the data parity report checks
    # only these for a masked column; the others change by design.
    parity: frozenset[str] = frozenset({"null_frac"})


def source_column(column: ColumnInfo) -> sql.Composable:
    return sql.Identifier("src", column.name)


def hmac_sql(value_text: sql.Composable) -> sql.Composable:
    """HMAC-SHA256 of a text expression: H(K⊕opad ‖ H(K⊕ipad ‖ m)) with PostgreSQL's sha256."""
    key = sql.Identifier(KEY_ALIAS)
    return sql.SQL("sha256({}.opad || sha256({}.ipad || convert_to({}, 'UTF8')))").format(
        key, key, value_text
    )


def hash_int(digest: sql.Composable, offset: int = 0) -> sql.Composable:
    """A non-negative 60-bit integer from 8 bytes of a digest, starting at byte ``offset``."""
    return sql.SQL(
        "((('x' || encode(substring({} FROM {} FOR 8), 'hex'))::bit(64)::bigint) "
        "& 1152921504606846975)"
    ).format(digest, sql.Literal(1 + offset))


def key_pads(key: bytes) -> tuple[str, str]:
    """The HMAC inner and outer pads of ``key`` (RFC 2104), hex-encoded for the settings."""
    if len(key) > HMAC_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(HMAC_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    return ipad.hex(), opad.hex()


def key_options(key: bytes) -> str:
    """libpq ``options`` that set the pads for the session (never part of any SQL text)."""
    ipad, opad = key_pads(key)
    return f"-c pgparity.mask_ipad={ipad} -c pgparity.mask_opad={opad}"


def key_cte(with_names: bool) -> sql.Composable:
    """``WITH pgparity_key AS MATERIALIZED (…)``: the constants keyed expressions read.

    MATERIALIZED makes PostgreSQL compute them once per query, instead of inlining
    ``decode(current_setting(…))`` into every row's expressions.
    """
    columns: list[sql.Composable] = [
        sql.SQL("decode(current_setting('pgparity.mask_ipad'), 'hex') AS ipad"),
        sql.SQL("decode(current_setting('pgparity.mask_opad'), 'hex') AS opad"),
    ]
    if with_names:
        columns += [
            sql.SQL("{}::text[] AS first_names").format(sql.Literal(FIRST_NAMES)),
            sql.SQL("{}::text[] AS last_names").format(sql.Literal(LAST_NAMES)),
        ]
    return sql.SQL("WITH {} AS MATERIALIZED (SELECT {}) ").format(
        sql.Identifier(KEY_ALIAS), sql.SQL(", ").join(columns)
    )


def key_join() -> sql.Composable:
    return sql.SQL("CROSS JOIN {}").format(sql.Identifier(KEY_ALIAS))


def _words(filename: str) -> list[str]:
    text = resources.files("pgparity").joinpath("data", filename).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


FIRST_NAMES = _words("first_names.txt")
LAST_NAMES = _words("last_names.txt")
ALL_METRICS = frozenset({"null_frac", "n_distinct", "avg_width", "correlation"})
TEXT = frozenset({"S"})
NUMBERS = frozenset({"N"})
TIMES = frozenset({"D"})
ANY = frozenset({"*"})


def _cast(expression: sql.Composable, column: ColumnInfo) -> sql.Composable:
    # Cast back to the column's exact type (an explicit cast to varchar(n) truncates, so the
    # value always fits), which binary COPY into the target also requires.
    return sql.SQL("({})::{}").format(expression, sql.SQL(column.type))


def _keep(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    return Masked(source_column(column))


def _null(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    return Masked(_cast(sql.SQL("NULL"), column))


def _constant(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    return Masked(
        sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(
            source_column(column), _cast(sql.Literal(params["value"]), column)
        )
    )


def value_digest(column: ColumnInfo) -> sql.Composable:
    """HMAC of the column's value, as text: what every value-keyed transform starts from."""
    return hmac_sql(sql.SQL("{}::text").format(source_column(column)))


def digest_name(column: ColumnInfo) -> str:
    return f"pgparity_d_{column.attnum}"


def _digest(column: ColumnInfo) -> sql.Composable:
    # Computed once per row in the plan's inner query (see plan.masked_select): transforms
    # like email or name use the digest twice, and PostgreSQL does not share subexpressions.
    return sql.Identifier("src", digest_name(column))


def _hash(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    length = params.get("length")
    width: sql.Composable = (
        sql.Literal(int(length))
        if length
        else sql.SQL("least(64, greatest(16, length({}::text)))").format(source_column(column))
    )
    return Masked(
        _cast(sql.SQL("left(encode({}, 'hex'), {})").format(_digest(column), width), column)
    )


def _hash_int(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    low, high = int(params["min"]), int(params["max"])
    return Masked(
        _cast(
            sql.SQL("{} + {} % {}").format(
                sql.Literal(low), hash_int(_digest(column)), sql.Literal(high - low + 1)
            ),
            column,
        )
    )


def _uuid(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    return Masked(
        _cast(sql.SQL("left(encode({}, 'hex'), 32)::uuid").format(_digest(column)), column)
    )


def _email(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    value = source_column(column)
    digest = _digest(column)
    local: sql.Composable = (
        sql.SQL("left(encode({}, 'hex'), 32)").format(digest)
        if params.get("unique")
        else sql.SQL(
            "left(encode({}, 'hex'), least(30, greatest(6, position('@' in {}) - 1)))"
        ).format(digest, value)
    )
    domain = sql.SQL("(ARRAY['example.com', 'example.net', 'example.org'])[1 + {} % 3]").format(
        hash_int(digest, 16)
    )
    return Masked(_cast(sql.SQL("{} || '@' || {}").format(local, domain), column))


def _name(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    digest = _digest(column)
    key = sql.Identifier(KEY_ALIAS)
    first = sql.SQL("{}.first_names[1 + {} % {}]").format(
        key, hash_int(digest), sql.Literal(len(FIRST_NAMES))
    )
    last = sql.SQL("{}.last_names[1 + {} % {}]").format(
        key, hash_int(digest, 8), sql.Literal(len(LAST_NAMES))
    )
    part = params.get("part", "full")
    chosen = (
        first
        if part == "first"
        else last
        if part == "last"
        else sql.SQL("{} || ' ' || {}").format(first, last)
    )
    return Masked(
        _cast(
            sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(
                source_column(column), chosen
            ),
            column,
        )
    )


def _phone(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    digits = sql.SQL("lpad(({} % 1000000000000000)::text, 15, '0')").format(
        hash_int(_digest(column))
    )
    # Digits in the original: its length minus its length without them (translate is far
    # cheaper per row than a regular expression).
    count = sql.SQL(
        "least(15, greatest(7, length({v}) - length(translate({v}, '0123456789', ''))))"
    ).format(v=source_column(column))
    return Masked(_cast(sql.SQL("'+' || left({}, {})").format(digits, count), column))


def _partial(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    value = source_column(column)
    first, last = int(params.get("first", 0)), int(params.get("last", 0))
    mask = str(params.get("mask", "*"))[:1] or "*"
    return Masked(
        _cast(
            sql.SQL(
                "CASE WHEN length({v}) <= {keep} THEN repeat({m}, length({v})) "
                "ELSE left({v}, {f}) || repeat({m}, length({v}) - {keep}) || right({v}, {l}) END"
            ).format(
                v=value,
                keep=sql.Literal(first + last),
                m=sql.Literal(mask),
                f=sql.Literal(first),
                l=sql.Literal(last),
            ),
            column,
        )
    )


def _unit_interval(digest: sql.Composable) -> sql.Composable:
    """A deterministic number in [0, 1) from a digest."""
    return sql.SQL("({}::float8 / 1152921504606846976.0)").format(hash_int(digest))


def _noise(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    percent = float(params["percent"]) / 100.0
    seed: sql.Composable = (
        ctx.row_key
        if ctx.row_key is not None
        else sql.SQL("{}::text").format(source_column(column))
    )
    digest = hmac_sql(sql.SQL("{} || ':' || {}").format(sql.Literal(f"noise:{column.name}"), seed))
    factor = sql.SQL("(1 + {} * (2 * {} - 1))").format(sql.Literal(percent), _unit_interval(digest))
    scaled = sql.SQL("{}::numeric * {}::numeric").format(source_column(column), factor)
    if column.base_type in ("int2", "int4", "int8"):
        scaled = sql.SQL("round({})").format(scaled)
    elif column.base_type == "numeric":
        # Keep each value's granularity (min_scale: 1200.00 stays whole, 12.34 keeps cents),
        # so widths and rounding patterns stay production's.
        scaled = sql.SQL("round({}, min_scale({}))").format(scaled, source_column(column))
    return Masked(
        sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(
            source_column(column), _cast(scaled, column)
        )
    )


def _date_shift(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    days = int(params["days"])
    shift = sql.SQL("(({} % {}) - {}) * interval '1 day'").format(
        hash_int(_digest(column)), sql.Literal(2 * days + 1), sql.Literal(days)
    )
    return Masked(_cast(sql.SQL("{} + {}").format(source_column(column), shift), column))


def _date_trunc(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    unit = str(params.get("unit", "month"))
    return Masked(
        _cast(
            sql.SQL("date_trunc({}, {})").format(sql.Literal(unit), source_column(column)), column
        )
    )


LOREM = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "


def _fill(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    value = source_column(column)
    return Masked(
        _cast(
            sql.SQL("left(repeat({}, 1 + length({}) / {}), length({}))").format(
                sql.Literal(LOREM), value, sql.Literal(len(LOREM)), value
            ),
            column,
        )
    )


_WIDTHS = {"int4": 32, "int8": 64}
FEISTEL_ROUNDS = 4


def _permute(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    """A keyed Feistel permutation of the integer's bits: a bijection, so unique stays unique."""
    width = _WIDTHS[column.base_type]
    half = width // 2
    bits = sql.SQL("{}::bit({})").format(source_column(column), sql.Literal(width))
    step = [sql.Identifier(f"pgparity_perm_{column.attnum}_{i}") for i in range(FEISTEL_ROUNDS + 1)]
    items: list[sql.Composable] = [
        sql.SQL(
            "CROSS JOIN LATERAL (SELECT substring({b} FROM 1 FOR {h}) AS l, "
            "substring({b} FROM {h1} FOR {h}) AS r) AS {s}"
        ).format(b=bits, h=sql.Literal(half), h1=sql.Literal(half + 1), s=step[0])
    ]
    for number in range(1, FEISTEL_ROUNDS + 1):
        previous = step[number - 1]
        round_input = sql.SQL("{} || {}.r::text").format(
            sql.Literal(f"permute:{number}:"), previous
        )
        mixed = sql.SQL("substring(('x' || encode({}, 'hex'))::bit(256) FROM 1 FOR {})").format(
            hmac_sql(round_input), sql.Literal(half)
        )
        items.append(
            sql.SQL("CROSS JOIN LATERAL (SELECT {p}.r AS l, {p}.l # {f} AS r) AS {s}").format(
                p=previous, f=mixed, s=step[number]
            )
        )
    last = step[-1]
    cast = sql.SQL("int8") if width == 64 else sql.SQL("int4")
    return Masked(
        _cast(
            sql.SQL("({}.l || {}.r)::bit({})::{}").format(last, last, sql.Literal(width), cast),
            column,
        ),
        tuple(items),
    )


def _unique_if_long(params: Mapping[str, Any]) -> bool:
    return int(params.get("length") or 0) >= 32


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform(
            "keep",
            "copy the value as it is",
            "everything",
            ANY,
            _keep,
            keyed=False,
            unique=lambda _: True,
            parity=ALL_METRICS,
        ),
        Transform(
            "null",
            "NULL in every row",
            "nothing (the column becomes empty)",
            ANY,
            _null,
            keyed=False,
            parity=frozenset(),
        ),
        Transform(
            "constant",
            "the same value in every non-NULL row",
            "NULLs",
            ANY,
            _constant,
            (Param("value", object, required=True),),
            keyed=False,
        ),
        Transform(
            "hash",
            "keyed hash as hex (length kept, 16 to 64 characters)",
            "joins, NULLs, distinct counts; uniqueness when length >= 32",
            TEXT,
            _hash,
            (Param("length", int, help="fixed output length (32+ keeps uniqueness)"),),
            unique=_unique_if_long,
            parity=frozenset({"null_frac", "n_distinct", "avg_width"}),
            digest=True,
        ),
        Transform(
            "hash_int",
            "keyed hash as an integer in [min, max]",
            "joins, NULLs",
            NUMBERS,
            _hash_int,
            (Param("min", int, 0), Param("max", int, 2**31 - 1)),
            digest=True,
        ),
        Transform(
            "uuid",
            "keyed hash shaped as a UUID",
            "joins, NULLs, uniqueness (128 bits)",
            frozenset({"U", "S"}),
            _uuid,
            unique=lambda _: True,
            parity=frozenset({"null_frac", "n_distinct", "avg_width"}),
            digest=True,
        ),
        Transform(
            "email",
            "email-like: hashed local part, example domain",
            "joins, NULLs, local-part length; uniqueness with unique: true",
            TEXT,
            _email,
            (Param("unique", bool, False, help="32-character local part"),),
            unique=lambda p: bool(p.get("unique")),
            parity=frozenset({"null_frac", "n_distinct"}),
            digest=True,
        ),
        Transform(
            "name",
            "name-like, from pgparity's word list",
            "joins, NULLs",
            TEXT,
            _name,
            (Param("part", str, "full", help="full, first or last"),),
            digest=True,
        ),
        Transform(
            "phone",
            "phone-like: '+' and hashed digits, as many as the original had",
            "joins, NULLs, digit count",
            TEXT,
            _phone,
            digest=True,
        ),
        Transform(
            "partial",
            "keep the first/last characters, mask the rest",
            "length, NULLs, the kept characters",
            TEXT,
            _partial,
            (Param("first", int, 0), Param("last", int, 0), Param("mask", str, "*")),
            keyed=False,
            parity=frozenset({"null_frac", "avg_width"}),
        ),
        Transform(
            "noise",
            "± percent, deterministic per row",
            "NULLs, approximate distribution",
            NUMBERS,
            _noise,
            (Param("percent", float, required=True),),
            parity=frozenset({"null_frac", "avg_width", "correlation"}),
        ),
        Transform(
            "date_shift",
            "shift by up to ± days, deterministic per value",
            "NULLs, approximate distribution and order",
            TIMES,
            _date_shift,
            (Param("days", int, required=True),),
            parity=frozenset({"null_frac", "avg_width", "correlation"}),
            digest=True,
        ),
        Transform(
            "date_trunc",
            "truncate to a unit (day, month, year, …)",
            "NULLs, order",
            TIMES,
            _date_trunc,
            (Param("unit", str, "month"),),
            keyed=False,
            parity=frozenset({"null_frac", "avg_width", "correlation"}),
        ),
        Transform(
            "fill",
            "filler text of the same length",
            "length (avg_width), NULLs",
            TEXT,
            _fill,
            keyed=False,
            parity=frozenset({"null_frac", "avg_width"}),
        ),
        Transform(
            "permute",
            "keyed Feistel permutation of an integer (int4, int8)",
            "joins, NULLs, uniqueness (a bijection)",
            NUMBERS,
            _permute,
            unique=lambda _: True,
            parity=frozenset({"null_frac", "n_distinct", "avg_width"}),
        ),
    )
}
