"""Masking transforms as SQL expressions, evaluated inside the source database.

Raw values never leave production: each column is replaced, in the ``SELECT`` that feeds
``COPY … TO STDOUT``, by an expression built here with ``psycopg.sql`` (other people's table and
column names are always composed as identifiers).

Keyed transforms start from HMAC-SHA256 of the value (``seed.mac``: PostgreSQL's own ``sha256()``,
or pgcrypto's ``hmac()`` when the source already has it — the same bytes either way), with the
key kept out of SQL text. Equal inputs give equal outputs in every table and every run with the
same key, so joins on masked keys survive; NULL stays NULL. A transform whose output depends on
the value alone (``per_value``) is evaluated by the plan in a subquery of its own, once per value
when PostgreSQL's Memoize finds the value repeated.

The expressions are written for cost per row (``make bench-seed`` and the README's table): bytes
of the digest are read with ``get_byte`` and hex-encoded only as far as needed, word lists are
arrays of the fixed-width type ``name`` (a subscript is then an offset, not a walk through the
array) — and every output is byte for byte what earlier versions gave (a test pins them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from psycopg import sql

from pgparity.seed.mac import BUILTIN, Mac

MIN_KEY_BYTES = 16


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
    """The expression that replaces a column, and what it reads besides the row.

    ``from_items`` are joined to the row (LATERAL steps computed once per row); a per-value
    transform may name the FROM item of its per-value subquery instead (``value_source``).
    """

    expression: sql.Composable
    from_items: tuple[sql.Composable, ...] = ()
    value_source: sql.Composable | None = None


@dataclass(frozen=True)
class Context:
    """Per-table context: the row's key for per-row transforms, and how HMACs are computed."""

    row_key: sql.Composable | None = None
    mac: Mac = BUILTIN


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
    digest: bool = False  # reads the value's HMAC (DIGEST, computed by the plan)
    # Without a digest, the output still depends on the value alone (and the key). Such
    # transforms, and digest ones, are computed by the plan in a LATERAL subquery that reads
    # only the value, which PostgreSQL's Memoize runs once per distinct value.
    per_value: bool = False
    base_types: frozenset[str] = frozenset()  # when set, only columns of these (base) types
    check: Checker = _no_problems

    @property
    def value_only(self) -> bool:
        """The output depends on the value alone (and the key): computed once per value."""
        return self.digest or self.per_value


def source_column(column: ColumnInfo) -> sql.Composable:
    return sql.Identifier("src", column.name)


# The value's HMAC, as digest transforms read it inside their per-value subquery.
DIGEST = sql.Identifier("pgparity_value", "d")


def digest_source(column: ColumnInfo, mac: Mac) -> sql.Composable:
    """The FROM item that computes DIGEST once per value (OFFSET 0 keeps it a subquery, so
    transforms reading the digest twice, like email or name, do not compute it twice)."""
    return sql.SQL("(SELECT {} AS d OFFSET 0) AS pgparity_value").format(value_digest(column, mac))


HASH_BITS_MASK = 2**60 - 1


def hash_int(digest: sql.Composable, offset: int = 0) -> sql.Composable:
    """A non-negative 60-bit integer from bytes ``offset`` … ``offset + 7`` of a digest.

    The last 60 bits of those 8 bytes read big-endian, as ``('x' || hex)::bit(64)::bigint &
    (2^60 - 1)`` gave them; ``get_byte`` and shifts cost less than the hex round trip.
    """
    parts: list[sql.Composable] = [
        sql.SQL("((get_byte({}, {}) & 15)::int8 << 56)").format(digest, sql.Literal(offset))
    ]
    parts += [
        sql.SQL("(get_byte({}, {})::int8 << {})").format(
            digest, sql.Literal(offset + i), sql.Literal(8 * (7 - i))
        )
        for i in range(1, 7)
    ]
    parts.append(sql.SQL("get_byte({}, {})::int8").format(digest, sql.Literal(offset + 7)))
    return sql.SQL("({})").format(sql.SQL(" | ").join(parts))


def hash_int_of(digest: sql.Composable) -> sql.Composable:
    """``hash_int(digest)`` of an expression, evaluated once (get_byte would run it 8 times)."""
    return sql.SQL(
        "((('x' || encode(substring({} FROM 1 FOR 8), 'hex'))::bit(64)::bigint) & {})"
    ).format(digest, sql.Literal(HASH_BITS_MASK))


def hex_prefix(digest: sql.Composable, length: int) -> sql.Composable:
    """The first ``length`` hex digits of a digest: ``left(encode(d, 'hex'), length)``."""
    head = sql.SQL("encode(substring({} FROM 1 FOR {}), 'hex')").format(
        digest, sql.Literal((length + 1) // 2)
    )
    if length % 2 == 0:  # whole bytes: no character-counting left() needed
        return head
    return sql.SQL("left({}, {})").format(head, sql.Literal(length))


NAME_BYTES = 63  # a value of type name holds at most NAMEDATALEN - 1 bytes


def _words(filename: str) -> list[str]:
    text = resources.files("pgparity").joinpath("data", filename).read_text(encoding="utf-8")
    words = [line.strip() for line in text.splitlines() if line.strip()]
    too_long = [w for w in words if len(w.encode()) > NAME_BYTES]
    if too_long:  # _word reads them as name[], which would cut them short
        raise ValueError(f"{filename}: words longer than {NAME_BYTES} bytes: {too_long}")
    return words


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


def value_digest(column: ColumnInfo, mac: Mac) -> sql.Composable:
    """HMAC of the column's value, as text: what every value-keyed transform starts from."""
    return mac.of_text(sql.SQL("{}::text").format(source_column(column)))


def _hash(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    length = params.get("length")
    if length:
        return Masked(_cast(hex_prefix(DIGEST, int(length)), column))
    width = sql.SQL("least(64, greatest(16, length({}::text)))").format(source_column(column))
    return Masked(_cast(sql.SQL("left(encode({}, 'hex'), {})").format(DIGEST, width), column))


def _hash_int(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    low, high = int(params.get("min", 0)), int(params.get("max", 2**31 - 1))
    return Masked(
        _cast(
            sql.SQL("{} + {} % {}").format(
                sql.Literal(low), hash_int(DIGEST), sql.Literal(high - low + 1)
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
    return Masked(_cast(sql.SQL("{}::uuid").format(hex_prefix(DIGEST, 32)), column))


EMAIL_DOMAINS = ("example.com", "example.net", "example.org")


def _email(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    local: sql.Composable = (
        hex_prefix(DIGEST, 32)
        if params.get("unique")
        else sql.SQL(
            "left(encode({}, 'hex'), least(30, greatest(6, position('@' in {}) - 1)))"
        ).format(DIGEST, source_column(column))
    )
    domain = _word(EMAIL_DOMAINS, hash_int(DIGEST, 16))
    return Masked(_cast(sql.SQL("{} || '@' || {}").format(local, domain), column))


def _word(words: Sequence[str], number: sql.Composable) -> sql.Composable:
    """``words[1 + number % len(words)]``, from a constant array of the fixed-width type name:
    its subscript is an offset, where a text[] subscript walks every element before it."""
    return sql.SQL("({}::name[])[1 + {} % {}]::text").format(
        sql.Literal(list(words)), number, sql.Literal(len(words))
    )


def _name(column: ColumnInfo, params: Mapping[str, Any], ctx: Context) -> Masked:
    first = _word(FIRST_NAMES, hash_int(DIGEST))
    last = _word(LAST_NAMES, hash_int(DIGEST, 8))
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
    # 15 digits, zero-padded: 10^15 + n % 10^15 is a '1' and exactly those digits, which is
    # lpad((n % 10^15)::text, 15, '0') without the padding call.
    digits = sql.SQL("({} % 1000000000000000 + 1000000000000000)::text").format(hash_int(DIGEST))
    # Digits in the original: its size minus its size without them. translate is far cheaper
    # per row than a regular expression; ASCII digits are one byte in every server encoding,
    # so byte counts (O(1)) give the same difference as character counts.
    count = sql.SQL(
        "least(15, greatest(7, octet_length({v}) - octet_length(translate({v}, '0123456789', ''))))"
    ).format(v=source_column(column))
    return Masked(_cast(sql.SQL("'+' || substr({}, 2, {})").format(digits, count), column))


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
    """A deterministic number in [0, 1) from a digest expression (evaluated once)."""
    return sql.SQL("({}::float8 / 1152921504606846976.0)").format(hash_int_of(digest))


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
    digest = ctx.mac.of_text(
        sql.SQL("{} || ':' || {}").format(sql.Literal(f"noise:{column.name}"), seed)
    )
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
    pick = sql.SQL("({} % (2 * {}))").format(hash_int(DIGEST), days)
    # pick is in [0, 2 days): [0, days) shifts by -days … -1, [days, 2 days) by 1 … days.
    shift = sql.SQL("({p} - {d} + ({p} >= {d})::int)").format(p=pick, d=days)
    if column.base_type == "date":
        # date + integer days: the date that date + interval gave (via a timestamp at midnight).
        moved = sql.SQL("{} + {}::int4").format(source_column(column), shift)
    else:  # a timestamp keeps its time of day (timestamptz: in the session's time zone)
        moved = sql.SQL("{} + {} * interval '1 day'").format(source_column(column), shift)
    return Masked(_cast(moved, column))


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
    number = sql.SQL(_JSON_NUMBER).format(hash=hash_int_of(ctx.mac.of_text(sql.SQL("r.n::text"))))
    walk = sql.SQL(_JSON_WALK).format(
        doc=source_column(column),
        string=string.format(ctx.mac.of_text(text), text),
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
    """A keyed Feistel permutation of the integer's bits: a bijection, so unique stays unique.

    Each round is a subquery kept apart with OFFSET 0: both halves of a round read the previous
    round's right half, and a flattened chain would compute the early rounds' HMACs again for
    every later reference (11 HMACs instead of 4).
    """
    width = _WIDTHS[column.base_type]
    half = width // 2
    bits = sql.SQL("{}::bit({})").format(source_column(column), sql.Literal(width))
    rounds: sql.Composable = sql.SQL(
        "(SELECT substring({b} FROM 1 FOR {h}) AS l, substring({b} FROM {h1} FOR {h}) AS r "
        "OFFSET 0) AS pgparity_round"
    ).format(b=bits, h=sql.Literal(half), h1=sql.Literal(half + 1))
    for number in range(1, FEISTEL_ROUNDS + 1):
        round_input = sql.SQL("{} || pgparity_round.r::text").format(
            sql.Literal(f"permute:{number}:")
        )
        # The first `half` bits of the HMAC: its first half / 8 bytes, as bits.
        mixed = sql.SQL("('x' || encode(substring({} FROM 1 FOR {}), 'hex'))::bit({})").format(
            ctx.mac.of_text(round_input), sql.Literal(half // 8), sql.Literal(half)
        )
        rounds = sql.SQL(
            "(SELECT pgparity_round.r AS l, pgparity_round.l # {} AS r FROM {} OFFSET 0) "
            "AS pgparity_round"
        ).format(mixed, rounds)
    cast = sql.SQL("int8") if width == 64 else sql.SQL("int4")
    return Masked(
        _cast(
            sql.SQL("(pgparity_round.l || pgparity_round.r)::bit({})::{}").format(
                sql.Literal(width), cast
            ),
            column,
        ),
        value_source=rounds,
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
            per_value=True,
        ),
        Transform(
            "jsonb_mask",
            "JSON with its keys and shape kept, string and number leaves keyed",
            "keys, nesting, array lengths, booleans and nulls; joins on equal documents",
            frozenset({"U"}),
            _jsonb_mask,
            base_types=frozenset({"json", "jsonb"}),
            per_value=True,
        ),
    )
}
