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
    # A literal of the column's type holding nothing ('{}' for arrays, '(,)' for a composite
    # of two fields, '' for bytea, xml, hstore and tsvector): what `policy init` suggests for
    # NOT NULL columns of such types. None for other types.
    empty_value: str | None = None


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    default: Any = None
    required: bool = False
    help: str = ""
    minimum: float | None = None  # for numbers: the range that masks something
    maximum: float | None = None
    choices: tuple[str, ...] = ()


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
# What is wrong with a transform's parameters for this column, beyond each parameter's range.
Checker = Callable[[Mapping[str, Any], ColumnInfo], list[str]]


def _no_problems(params: Mapping[str, Any], column: ColumnInfo) -> list[str]:
    return []


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
    base_types: frozenset[str] = frozenset()  # when set, only columns of these (base) types
    check: Checker = _no_problems


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
    low, high = int(params.get("min", 0)), int(params.get("max", 2**31 - 1))
    return Masked(
        _cast(
            sql.SQL("{} + {} % {}").format(
                sql.Literal(low), hash_int(_digest(column)), sql.Literal(high - low + 1)
            ),
            column,
        )
    )


def _check_hash_int(params: Mapping[str, Any], column: ColumnInfo) -> list[str]:
    low, high = params.get("min", 0), params.get("max", 2**31 - 1)
    if not isinstance(low, int) or not isinstance(high, int):
        return []  # the parameter check names the type
    if low > high:
        return [f"parameters of hash_int: min ({low}) is greater than max ({high})"]
    bounds = _INTEGER_RANGES.get(column.base_type)
    if bounds and not (bounds[0] <= low and high <= bounds[1]):
        return [
            f"parameters of hash_int: [{low}, {high}] does not fit {column.type} "
            f"([{bounds[0]}, {bounds[1]}])"
        ]
    return []


def _check_constant(params: Mapping[str, Any], column: ColumnInfo) -> list[str]:
    value = params.get("value")
    if value is None:
        return ["parameter 'value' of constant is empty (for NULL use the transform null)"]
    if not isinstance(value, str | int | float | bool):
        return ["parameter 'value' of constant must be a single value, written as text"]
    return []


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
    """Keep up to ``first`` and ``last`` characters, but never more than half of any value.

    A value of n characters keeps at most n / 2 (rounded down), the first ones before the last:
    at least half of every value — and at least one character of any non-empty one — is masked,
    whatever the parameters (``first: 100`` on a 7-character value keeps 3).
    """
    value = source_column(column)
    half = sql.SQL("(length({}) / 2)").format(value)
    first = sql.SQL("least({}, {})").format(sql.Literal(_count(params.get("first", 0))), half)
    last = sql.SQL("least({}, {} - {})").format(
        sql.Literal(_count(params.get("last", 0))), half, first
    )
    return Masked(
        _cast(
            sql.SQL(
                "left({v}, {f}) || repeat({m}, length({v}) - {f} - {l}) || right({v}, {l})"
            ).format(v=value, f=first, l=last, m=sql.Literal(str(params.get("mask", "*")))),
            column,
        )
    )


def _count(value: Any) -> int:
    """A character count in [0, 2^30]: negative counts would make left()/right() drop from the
    other end, and no text value is longer (1 GB)."""
    return min(max(int(value), 0), 2**30)


def _check_partial(params: Mapping[str, Any], column: ColumnInfo) -> list[str]:
    mask = params.get("mask", "*")
    if isinstance(mask, str) and len(mask) != 1:
        return [f"parameter 'mask' of partial must be exactly one character (got {mask!r})"]
    return []


def _unit_interval(digest: sql.Composable) -> sql.Composable:
    """A deterministic number in [0, 1) from a digest."""
    return sql.SQL("({}::float8 / 1152921504606846976.0)").format(hash_int(digest))


_INTEGER_RANGES = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}


def _noise(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    """± percent, deterministic per row; a value the noise would leave equal moves by one unit.

    Multiplying small integers (or whole amounts) by 1 ± 5 % and rounding often gives the same
    value back — a raw copy. Such values move one unit of their granularity towards zero (1 for
    integers, 0.01 for 12.34 or $12.34, ``max(|v|, 1) × percent`` for floating point), so no
    finite value is copied as it was (NaN and infinities stay what they are).
    """
    value = source_column(column)
    percent = float(params["percent"]) / 100.0
    seed: sql.Composable = (
        ctx.row_key if ctx.row_key is not None else sql.SQL("{}::text").format(value)
    )
    digest = hmac_sql(sql.SQL("{} || ':' || {}").format(sql.Literal(f"noise:{column.name}"), seed))
    factor = sql.SQL("(1 + {} * (2 * {} - 1))").format(sql.Literal(percent), _unit_interval(digest))
    noisy = sql.SQL("{}::numeric * {}::numeric").format(value, factor)
    unit: sql.Composable = sql.SQL("(greatest(abs({}::numeric), 1) * {})").format(
        value, sql.Literal(percent)
    )
    if column.base_type in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[column.base_type]
        noisy = sql.SQL("least(greatest(round({}), {}), {})").format(
            noisy, sql.Literal(low), sql.Literal(high)
        )
        unit = sql.SQL("1")
    elif column.base_type == "numeric":
        # Keep each value's granularity (min_scale: 1200.00 stays whole, 12.34 keeps cents),
        # so widths and rounding patterns stay production's.
        scale = sql.SQL("coalesce(min_scale({}), 0)").format(value)
        noisy = sql.SQL("round({}, {})").format(noisy, scale)
        unit = sql.SQL("power(10::numeric, -{})").format(scale)
    elif column.base_type == "money":  # rounded to the currency's cents when cast back
        unit = sql.SQL("power(10::numeric, -scale({}::numeric))").format(value)
    step = sql.Identifier(f"pgparity_noise_{column.attnum}")
    # In numeric, which every number type (money too) casts to and from.
    moved = sql.SQL(
        "CASE WHEN {v}::numeric > 0 THEN {v}::numeric - {u} ELSE {v}::numeric + {u} END"
    ).format(v=value, u=unit)
    return Masked(
        sql.SQL(
            "CASE WHEN {v} IS NULL THEN NULL WHEN {s}.v = {v} THEN {moved} ELSE {s}.v END"
        ).format(v=value, s=step, moved=_cast(moved, column)),
        # OFFSET 0 keeps the step a subquery, so its HMAC is computed once per row.
        (
            sql.SQL("CROSS JOIN LATERAL (SELECT {} AS v OFFSET 0) AS {}").format(
                _cast(noisy, column), step
            ),
        ),
    )


def _date_shift(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    """Shift by 1 to ``days`` days, earlier or later, never by zero (which would copy the value)."""
    days = sql.Literal(int(params["days"]))
    pick = sql.SQL("({} % (2 * {}))").format(hash_int(_digest(column)), days)
    # pick is in [0, 2 days): [0, days) shifts by -days … -1, [days, 2 days) by 1 … days.
    shift = sql.SQL("(({p} - {d} + ({p} >= {d})::int) * interval '1 day')").format(p=pick, d=days)
    return Masked(_cast(sql.SQL("{} + {}").format(source_column(column), shift), column))


DATE_UNITS = ("week", "month", "quarter", "year", "decade", "century", "millennium")
TIME_UNITS = ("millisecond", "second", "minute", "hour", "day")
DATETIME_TYPES = frozenset({"date", "timestamp", "timestamptz"})


def _date_trunc(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    unit = str(params.get("unit", "month"))
    return Masked(
        _cast(
            sql.SQL("date_trunc({}, {})").format(sql.Literal(unit), source_column(column)), column
        )
    )


def _check_date_trunc(params: Mapping[str, Any], column: ColumnInfo) -> list[str]:
    unit = params.get("unit", "month")
    if column.base_type == "date" and unit in TIME_UNITS:
        return [
            f"parameter 'unit' of date_trunc: truncating a date to a {unit} changes nothing "
            f"(use one of {', '.join(DATE_UNITS)})"
        ]
    return []


# jsonb_mask: the document is walked by a recursive CTE in a scalar subquery (read-only: no
# function is created on the source) and written again as JSON text token by token, ordered by
# each node's path of positions: keys verbatim (quoted by to_jsonb), string and number leaves
# replaced, booleans, nulls and the shape of arrays and objects kept.
_JSON_WALK = """(SELECT string_agg(tok.token, '' ORDER BY tok.sort)::jsonb FROM (
 WITH RECURSIVE walk(sort, prefix, v) AS (
  SELECT ARRAY[]::int[], ''::text, ({doc})::jsonb
  UNION ALL
  SELECT w.sort || c.ord::int,
         CASE WHEN c.ord > 1 THEN ',' ELSE '' END || coalesce(to_jsonb(c.k)::text || ':', ''), c.v
  FROM walk w CROSS JOIN LATERAL (
   SELECT e.key, e.value, e.ord FROM jsonb_each(
     CASE WHEN jsonb_typeof(w.v) = 'object' THEN w.v END) WITH ORDINALITY AS e(key, value, ord)
   UNION ALL
   SELECT NULL, a.value, a.ord FROM jsonb_array_elements(
     CASE WHEN jsonb_typeof(w.v) = 'array' THEN w.v END) WITH ORDINALITY AS a(value, ord)
  ) AS c(k, v, ord))
 SELECT w.sort, w.prefix || CASE jsonb_typeof(w.v)
   WHEN 'object' THEN '{{' WHEN 'array' THEN '['
   WHEN 'string' THEN {string} WHEN 'number' THEN {number} ELSE w.v::text END
 FROM walk w
 UNION ALL
 SELECT w.sort || 2147483647, CASE jsonb_typeof(w.v) WHEN 'object' THEN '}}' ELSE ']' END
 FROM walk w WHERE jsonb_typeof(w.v) IN ('object', 'array')
) AS tok(sort, token))"""

# A number leaf becomes another number of the same sign, scale (after trim_scale, so 1.0 and
# 1.00 mask alike) and digit count, chosen by its HMAC; if that is the number itself, the next
# one in the same range. Every number of that shape spans at least 9 values, so none stays.
_JSON_NUMBER = """(SELECT round(x.sgn * CASE WHEN x.m = x.whole
       THEN x.lo + (x.m - x.lo + 1) % x.size ELSE x.m END / 10::numeric ^ x.s, x.s)::text
 FROM (SELECT y.*, y.lo + y.h % y.size AS m FROM (
  SELECT z.*, CASE WHEN z.k >= 1 THEN 10::numeric ^ (greatest(1, z.k + z.s) - 1) ELSE 0 END AS lo,
         10::numeric ^ greatest(1, z.k + z.s)
           - CASE WHEN z.k >= 1 THEN 10::numeric ^ (greatest(1, z.k + z.s) - 1) ELSE 0 END
           AS size,
         abs(z.n) * 10::numeric ^ z.s AS whole
  FROM (SELECT q.n, q.h, scale(q.n) AS s, CASE WHEN q.n < 0 THEN -1 ELSE 1 END AS sgn,
               CASE WHEN abs(q.n) >= 1 THEN length(trunc(abs(q.n))::text) ELSE 0 END AS k
        FROM (SELECT r.n, {hash} AS h
              FROM (SELECT trim_scale((w.v #>> '{{}}')::numeric) AS n) AS r OFFSET 0) AS q
  ) AS z) AS y) AS x)"""


def _jsonb_mask(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    """Keys and shape kept; strings as ``hash`` would mask them, numbers keyed to numbers."""
    text = sql.SQL("(w.v #>> '{}')")
    string = sql.SQL("to_jsonb(left(encode({}, 'hex'), least(64, greatest(16, length({})))))::text")
    number = sql.SQL(_JSON_NUMBER).format(hash=hash_int(hmac_sql(sql.SQL("r.n::text"))))
    walk = sql.SQL(_JSON_WALK).format(
        doc=source_column(column),
        string=string.format(hmac_sql(text), text),
        number=number,
    )
    return Masked(
        sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(
            source_column(column), _cast(walk, column)
        )
    )


MAX_PARTIAL_KEEP = 32
MAX_SHIFT_DAYS = 3650
NAME_PARTS = ("full", "first", "last")
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
        ),
        Transform(
            "null",
            "NULL in every row",
            "nothing (the column becomes empty)",
            ANY,
            _null,
            keyed=False,
        ),
        Transform(
            "constant",
            "the same value in every non-NULL row",
            "NULLs",
            ANY,
            _constant,
            (Param("value", object, required=True),),
            keyed=False,
            check=_check_constant,
        ),
        Transform(
            "hash",
            "keyed hash as hex (length kept, 16 to 64 characters)",
            "joins, NULLs, distinct counts; uniqueness when length >= 32",
            TEXT,
            _hash,
            (
                Param(
                    "length",
                    int,
                    help="fixed output length (32+ keeps uniqueness)",
                    minimum=1,
                    maximum=64,
                ),
            ),
            unique=_unique_if_long,
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
            check=_check_hash_int,
        ),
        Transform(
            "uuid",
            "keyed hash shaped as a UUID",
            "joins, NULLs, uniqueness (128 bits)",
            frozenset({"U", "S"}),
            _uuid,
            unique=lambda _: True,
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
            digest=True,
        ),
        Transform(
            "name",
            "name-like, from pgparity's word list",
            "joins, NULLs",
            TEXT,
            _name,
            (Param("part", str, "full", help="full, first or last", choices=NAME_PARTS),),
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
            "keep the first/last characters (at most half of each value), mask the rest",
            "length, NULLs, the kept characters",
            TEXT,
            _partial,
            (
                Param("first", int, 0, minimum=0, maximum=MAX_PARTIAL_KEEP),
                Param("last", int, 0, minimum=0, maximum=MAX_PARTIAL_KEEP),
                Param("mask", str, "*"),
            ),
            keyed=False,
            check=_check_partial,
        ),
        Transform(
            "noise",
            "± percent, deterministic per row; never the value itself",
            "NULLs, approximate distribution",
            NUMBERS,
            _noise,
            (Param("percent", float, required=True, minimum=0.01, maximum=100),),
        ),
        Transform(
            "date_shift",
            "shift by 1 to days days, earlier or later, deterministic per value",
            "NULLs, approximate distribution and order",
            TIMES,
            _date_shift,
            (Param("days", int, required=True, minimum=1, maximum=MAX_SHIFT_DAYS),),
            digest=True,
            base_types=DATETIME_TYPES,
        ),
        Transform(
            "date_trunc",
            "truncate to a unit (day, month, year, …)",
            "NULLs, order",
            TIMES,
            _date_trunc,
            (Param("unit", str, "month", choices=TIME_UNITS + DATE_UNITS),),
            keyed=False,
            base_types=DATETIME_TYPES,
            check=_check_date_trunc,
        ),
        Transform(
            "fill",
            "filler text of the same length",
            "length (avg_width), NULLs",
            TEXT,
            _fill,
            keyed=False,
        ),
        Transform(
            "permute",
            "keyed Feistel permutation of an integer (int4, int8)",
            "joins, NULLs, uniqueness (a bijection)",
            NUMBERS,
            _permute,
            unique=lambda _: True,
            base_types=frozenset({"int4", "int8"}),
        ),
        Transform(
            "jsonb_mask",
            "JSON with its keys and shape kept, string and number leaves keyed",
            "keys, nesting, array lengths, booleans and nulls; joins on equal documents",
            frozenset({"U"}),
            _jsonb_mask,
            base_types=frozenset({"json", "jsonb"}),
        ),
    )
}
