"""Policies, transforms and copy plans (pure parts of the seeding pipeline)."""

from __future__ import annotations

import pytest
import yaml

from pgparity.errors import SpecError
from pgparity.models.policy import ALL_STATISTICS, KEPT_STATISTICS, Policy, RowsMode
from pgparity.seed.catalog import ForeignKey, SourceCatalog, TableInfo
from pgparity.seed.mac import HMAC_BLOCK, key_pads
from pgparity.seed.plan import copy_jobs, copy_order
from pgparity.seed.policy_check import check_policy, suggest_rule, suggested_policy_text
from pgparity.seed.schema import parse_toc
from pgparity.seed.transforms import TRANSFORMS, ColumnInfo


def _column(
    table: str,
    name: str,
    type_: str = "text",
    base: str = "text",
    category: str = "S",
    not_null: bool = False,
    attnum: int = 1,
) -> ColumnInfo:
    return ColumnInfo(
        table=table,
        name=name,
        type=type_,
        base_type=base,
        category=category,
        not_null=not_null,
        attnum=attnum,
    )


def _catalog() -> SourceCatalog:
    users = TableInfo(1, "public", "users", "public.users", 8192 * 40000, 40000, 1e6)
    users.columns = [
        _column("public.users", "id", "bigint", "int8", "N", True, 1),
        _column("public.users", "email", not_null=True, attnum=2),
        _column("public.users", "bio", attnum=3),
        _column("public.users", "search", attnum=4),
    ]
    users.generated = {"search"}
    users.primary_key = ("id",)
    users.unique_keys = [("id",), ("email",)]
    orders = TableInfo(2, "public", "orders", "public.orders", 8192, 1, 10)
    orders.columns = [
        _column("public.orders", "id", "bigint", "int8", "N", True, 1),
        _column("public.orders", "email", attnum=2),
    ]
    orders.primary_key = ("id",)
    fk = ForeignKey("orders_email_fkey", "public.orders", ("email",), "public.users", ("email",))
    return SourceCatalog(tables={"public.users": users, "public.orders": orders}, foreign_keys=[fk])


GOOD = """
version: 1
tables:
  public.users:
    columns: {id: keep, email: {transform: email, unique: true}, bio: fill}
  public.orders:
    columns: {id: permute, email: {transform: email, unique: true}}
"""


def test_a_complete_policy_passes() -> None:
    assert check_policy(Policy.parse(yaml.safe_load(GOOD)), _catalog()) == []


def test_policy_problems_are_all_listed() -> None:
    doc = yaml.safe_load(GOOD)
    doc["tables"]["public.users"]["columns"] = {
        "id": {"transform": "hash_int", "min": "0"},
        "email": "name",
        "ghost": "keep",
    }
    doc["tables"]["public.orders"]["columns"]["id"] = {"transform": "noise"}
    problems = [str(p) for p in check_policy(Policy.parse(doc), _catalog())]
    assert "public.users.ghost: unknown column" in problems
    assert "public.users.bio: unclassified column" in problems
    assert any(
        p.startswith("public.users.id: parameter 'min' of hash_int must be int") for p in problems
    )
    assert any(
        "public.users.id: transform hash_int can make different values equal" in p for p in problems
    )
    assert any(
        "public.users.email: transform name can make different values equal" in p for p in problems
    )
    assert "public.orders.id: noise needs parameter 'percent'" in problems
    assert any(p.startswith("public.orders.email: foreign key orders_email_fkey") for p in problems)


def test_type_and_nullability_fit() -> None:
    doc = yaml.safe_load(GOOD)
    doc["tables"]["public.users"]["columns"]["bio"] = "permute"
    doc["tables"]["public.users"]["columns"]["email"] = None  # YAML null: the null transform
    problems = [str(p) for p in check_policy(Policy.parse(doc), _catalog())]
    assert "public.users.bio: transform permute does not apply to type text" in problems
    assert "public.users.email: transform null on a NOT NULL column" in problems


def test_unclassified_tables_name_every_column_but_generated_ones() -> None:
    doc = yaml.safe_load(GOOD)
    del doc["tables"]["public.users"]
    problems = [str(p) for p in check_policy(Policy.parse(doc), _catalog())]
    assert [p for p in problems if "unclassified" in p] == [
        "public.users.id: unclassified column (the table is not in the policy)",
        "public.users.email: unclassified column (the table is not in the policy)",
        "public.users.bio: unclassified column (the table is not in the policy)",
    ]


def test_policy_parse_names_the_bad_field_and_hashes_meaning() -> None:
    with pytest.raises(SpecError, match=r"tables\.public\.users\.columns\.email\.transform"):
        Policy.parse({"version": 1, "tables": {"public.users": {"columns": {"email": {}}}}})
    with pytest.raises(SpecError, match=r"tables\.t\.rows: must be all or none"):
        Policy.parse({"tables": {"t": {"rows": "some", "columns": {"a": "keep"}}}})
    with pytest.raises(SpecError, match="unsupported policy version"):
        Policy.parse({"version": 2, "tables": {"t": {"columns": {"a": "keep"}}}})
    reformatted = GOOD.replace("{id: keep, email", "{email").replace(
        "bio: fill}", "bio: fill, id: keep}"
    )
    assert (
        Policy.parse(yaml.safe_load(GOOD)).sha256
        == Policy.parse(yaml.safe_load(reformatted)).sha256
    )
    none = Policy.parse({"tables": {"t": {"rows": "none"}}})
    assert none.tables["t"].rows is RowsMode.NONE


def test_suggestions() -> None:
    email = _column("t", "email", not_null=True)
    assert suggest_rule(email, is_key=True).rule == "{transform: email, unique: true}"
    assert suggest_rule(email, is_key=False).rule == "email"
    assert suggest_rule(_column("t", "password_hash", not_null=True), False).rule == "fill"
    assert suggest_rule(_column("t", "ssn"), False).rule == "null"
    assert (
        suggest_rule(_column("t", "date_of_birth", "date", "date", "D"), False).rule
        == "{transform: date_shift, days: 30}"
    )
    assert suggest_rule(_column("t", "amount", "numeric", "numeric", "N"), False).rule == "keep"
    text = suggested_policy_text(_catalog(), "db")
    assert (
        Policy.parse(yaml.safe_load(text)).tables["public.users"].columns["bio"].transform == "fill"
    )
    assert "search" not in text  # generated: computed again on the target


def test_hmac_pads_follow_rfc_2104() -> None:
    ipad, opad = key_pads(b"k" * 10)
    assert len(bytes.fromhex(ipad)) == HMAC_BLOCK
    assert bytes.fromhex(ipad)[:1] == bytes([ord("k") ^ 0x36])
    assert bytes.fromhex(opad)[-1:] == bytes([0x5C])  # zero padding xor opad
    long_key_pads = key_pads(b"x" * 100)  # longer than a block: hashed first
    assert long_key_pads != key_pads(b"x" * 64)


def test_copy_plan_splits_big_tables_by_page_ranges() -> None:
    catalog = _catalog()
    policy = Policy.parse(yaml.safe_load(GOOD))
    users = catalog.tables["public.users"]
    jobs = copy_jobs(users, policy.tables["public.users"].columns, split=True, chunk_pages=16384)
    assert [(j.first_page, j.end_page) for j in jobs] == [
        (0, 16384),
        (16384, 32768),
        (32768, 2**32 - 1),
    ]
    text = jobs[1].copy_out().as_string(None)
    assert 'FROM ONLY "public"."users" AS src' in text
    assert "src.ctid >= '(16384,0)'::tid AND src.ctid < '(32768,0)'::tid" in text
    # The key is read from the session's settings (once per query), never written in the text.
    assert "current_setting('pgparity.mask_ipad')" in text
    assert '"search"' not in text  # generated columns are not copied
    assert (
        jobs[0].copy_in().as_string(None)
        == 'COPY "public"."users" ("id", "email", "bio") FROM STDIN (FORMAT binary)'
    )
    assert len(copy_jobs(users, policy.tables["public.users"].columns, split=False)) == 1


def _sized(name: str, table_bytes: int, index_bytes: int) -> TableInfo:
    table = TableInfo(0, "public", name, f"public.{name}", table_bytes, table_bytes // 8192, 1.0)
    table.index_bytes = index_bytes
    table.columns = [_column(f"public.{name}", "id", "bigint", "int8", "N", True, 1)]
    return table


def test_copy_order_copies_the_table_with_the_longest_builds_early() -> None:
    """Johnson's rule: build-heavy tables first (cheapest copy first), then the others with the
    costliest builds first — the last table copied is one whose index builds are short."""
    tables = [
        _sized("big_copy_small_index", 10_000, 100),
        _sized("big_copy_big_index", 10_000, 5_000),
        _sized("index_heavy_slow", 3_000, 9_000),
        _sized("index_heavy_quick", 1_000, 4_000),
    ]
    doc = {"tables": {t.display: {"columns": {"id": "keep"}} for t in tables}}
    order = [t.name for t in copy_order(tables, Policy.parse(doc))]
    assert order == [
        "index_heavy_quick",
        "index_heavy_slow",
        "big_copy_big_index",
        "big_copy_small_index",
    ]
    # Masking weighs a copy up (keyed hashing on the source): the quick table's copy now
    # outweighs its builds, and it moves among the copy-heavy ones, by its builds.
    doc["tables"]["public.index_heavy_quick"] = {"columns": {"id": "hash_int"}}
    order = [t.name for t in copy_order(tables, Policy.parse(doc))]
    assert order == [
        "index_heavy_slow",
        "big_copy_big_index",
        "index_heavy_quick",
        "big_copy_small_index",
    ]


def _problems_for(column: ColumnInfo, rule: object) -> list[str]:
    users = TableInfo(1, "public", "t", "public.t", 8192, 1, 10)
    users.columns = [_column("public.t", "id", "int", "int4", "N", True, 1), column]
    catalog = SourceCatalog(tables={"public.t": users}, foreign_keys=[])
    doc = {"tables": {"public.t": {"columns": {"id": "keep", column.name: rule}}}}
    return [str(p) for p in check_policy(Policy.parse(doc), catalog)]


TEXT_COLUMN = _column("public.t", "v", attnum=2)
INT2_COLUMN = _column("public.t", "v", "smallint", "int2", "N", attnum=2)
DATE_COLUMN = _column("public.t", "v", "date", "date", "D", attnum=2)
TIME_COLUMN = _column("public.t", "v", "time without time zone", "time", "D", attnum=2)
JSONB_COLUMN = _column("public.t", "v", "jsonb", "jsonb", "U", attnum=2)
NUMERIC_COLUMN = _column("public.t", "v", "numeric", "numeric", "N", attnum=2)


class TestTransformParametersHaveMeaning:
    """A parameter that would copy raw values, or means nothing, is a policy problem naming the
    column and the parameter."""

    @pytest.mark.parametrize(
        ("column", "rule", "message"),
        [
            (TEXT_COLUMN, {"transform": "partial", "first": 100},
             "parameter 'first' of partial must be between 0 and 32 (got 100)"),
            (TEXT_COLUMN, {"transform": "partial", "first": -1},
             "parameter 'first' of partial must be between 0 and 32 (got -1)"),
            (TEXT_COLUMN, {"transform": "partial", "last": 33},
             "parameter 'last' of partial must be between 0 and 32 (got 33)"),
            (TEXT_COLUMN, {"transform": "partial", "first": True},
             "parameter 'first' of partial must be int"),
            (TEXT_COLUMN, {"transform": "partial", "mask": ""},
             "parameter 'mask' of partial must be exactly one character"),
            (TEXT_COLUMN, {"transform": "partial", "mask": "**"},
             "parameter 'mask' of partial must be exactly one character"),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": 0},
             "parameter 'percent' of noise must be between 0.01 and 100 (got 0.0)"),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": -5},
             "parameter 'percent' of noise must be between 0.01 and 100 (got -5.0)"),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": 1000},
             "parameter 'percent' of noise must be between 0.01 and 100 (got 1000.0)"),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": float("nan")},
             "parameter 'percent' of noise must be a finite number (got nan)"),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": float("inf")},
             "parameter 'percent' of noise must be a finite number (got inf)"),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": "5"},
             "parameter 'percent' of noise must be float"),
            (DATE_COLUMN, {"transform": "date_shift", "days": 0},
             "parameter 'days' of date_shift must be between 1 and 3650 (got 0)"),
            (DATE_COLUMN, {"transform": "date_shift", "days": -7},
             "parameter 'days' of date_shift must be between 1 and 3650 (got -7)"),
            (TIME_COLUMN, {"transform": "date_shift", "days": 3},
             "transform date_shift does not apply to type time without time zone"),
            (DATE_COLUMN, {"transform": "date_trunc", "unit": "day"},
             "parameter 'unit' of date_trunc: truncating a date to a day changes nothing"),
            (DATE_COLUMN, {"transform": "date_trunc", "unit": "fortnight"},
             "parameter 'unit' of date_trunc must be one of millisecond, second"),
            (TEXT_COLUMN, {"transform": "hash", "length": 0},
             "parameter 'length' of hash must be between 1 and 64 (got 0)"),
            (TEXT_COLUMN, {"transform": "hash", "length": 65},
             "parameter 'length' of hash must be between 1 and 64 (got 65)"),
            (INT2_COLUMN, {"transform": "hash_int", "min": 10, "max": 1},
             "parameters of hash_int: min (10) is greater than max (1)"),
            (INT2_COLUMN, {"transform": "hash_int"},
             "parameters of hash_int: [0, 2147483647] does not fit smallint"),
            (TEXT_COLUMN, {"transform": "name", "part": "middle"},
             "parameter 'part' of name must be one of full, first, last (got 'middle')"),
            (TEXT_COLUMN, {"transform": "constant", "value": ["a"]},
             "parameter 'value' of constant must be a single value"),
            (TEXT_COLUMN, {"transform": "constant", "value": None},
             "parameter 'value' of constant is empty"),
            (TEXT_COLUMN, {"transform": "jsonb_mask"},
             "transform jsonb_mask does not apply to type text"),
            (JSONB_COLUMN, {"transform": "jsonb_mask", "keys": "hash"},
             "unknown parameter 'keys' for jsonb_mask"),
        ],
    )  # fmt: skip
    def test_refused(self, column: ColumnInfo, rule: object, message: str) -> None:
        problems = _problems_for(column, rule)
        assert any(p.startswith(f"public.t.v: {message}") for p in problems), problems

    @pytest.mark.parametrize(
        ("column", "rule"),
        [
            (TEXT_COLUMN, {"transform": "partial", "first": 6, "last": 4}),
            (TEXT_COLUMN, {"transform": "partial", "first": 32, "last": 32, "mask": "✓"}),
            (NUMERIC_COLUMN, {"transform": "noise", "percent": 5}),
            (DATE_COLUMN, {"transform": "date_trunc", "unit": "month"}),
            (DATE_COLUMN, {"transform": "date_shift", "days": 1}),
            (INT2_COLUMN, {"transform": "hash_int", "min": -100, "max": 100}),
            (JSONB_COLUMN, "jsonb_mask"),
        ],
    )
    def test_accepted(self, column: ColumnInfo, rule: object) -> None:
        assert _problems_for(column, rule) == []


class TestPolicyFilesRefuseUnknownKeys:
    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ({"version": 1, "table": {}}, "table: unknown key (did you mean 'tables'?)"),
            ({"tables": {"t": {"colums": {"a": "keep"}}}},
             "tables.t.colums: unknown key (did you mean 'columns'?)"),
            ({"tables": {"t": {"rows": "none", "row": "all"}}},
             "tables.t.row: unknown key (did you mean 'rows'?)"),
        ],
    )  # fmt: skip
    def test_refused_with_the_closest_key(self, doc: object, message: str) -> None:
        with pytest.raises(SpecError) as raised:
            Policy.parse(doc)
        assert str(raised.value).startswith(message)


STRUCTURED = [
    ("jsonb", "jsonb", "U", False, None, "jsonb_mask"),
    ("json", "json", "U", True, None, "jsonb_mask"),
    ("text[]", "_text", "A", False, "{}", "null"),
    ("text[]", "_text", "A", True, "{}", '{transform: constant, value: "{}"}'),
    ("address", "address", "C", False, "(,)", "null"),
    ("address", "address", "C", True, "(,)", '{transform: constant, value: "(,)"}'),
    ("xml", "xml", "U", True, "", '{transform: constant, value: ""}'),
    ("bytea", "bytea", "U", False, "", "null"),
    ("hstore", "hstore", "U", False, "", "null"),
    ("tsvector", "tsvector", "U", False, "", "null"),
    ("doc_domain", "jsonb", "U", False, None, "jsonb_mask"),  # a domain over jsonb
]


@pytest.mark.parametrize(
    ("type_", "base", "category", "not_null", "empty", "rule"),
    STRUCTURED,
    ids=[f"{s[0]}{'-not-null' if s[3] else ''}" for s in STRUCTURED],
)
def test_structured_types_are_marked_for_review_with_a_mask(
    type_: str, base: str, category: str, not_null: bool, empty: str | None, rule: str
) -> None:
    column = ColumnInfo("public.t", "data", type_, base, category, not_null, 2, empty)
    suggestion = suggest_rule(column, is_key=False)
    assert suggestion.rule == rule
    assert suggestion.review
    assert _problems_for(column, yaml.safe_load(f"x: {rule}")["x"]) == []


def test_the_table_of_contents_is_read_by_dump_id_and_oids_only() -> None:
    # pg_restore --list prints names with newlines as spaces, and types of several words: an
    # INDEX in a schema called ATTACH reads like an INDEX ATTACH. Only the numbers are read.
    listing = "\n".join(
        [
            ";",
            "; Archive created at 2026-11-29 00:33:49 UTC",
            ";     dbname: hostile",
            "; Selected TOC Entries:",
            "3218; 2606 16393 CONSTRAINT ATTACH we ird;t we ird;t_pkey pgparity",
            "3216; 1259 16394 INDEX ATTACH ix \\connect postgres pgparity",
            '3383; 0 0 COMMENT ATTACH INDEX "ix \\connect postgres" pgparity',
            "3226; 0 0 INDEX ATTACH public p1_k_idx pgparity",
            "3376; 0 16415 MATERIALIZED VIEW DATA public mv pgparity",
            "",
        ]
    )
    entries = parse_toc(listing)
    assert [(e.dump_id, e.catalog, e.oid) for e in entries] == [
        (3218, 2606, 16393),
        (3216, 1259, 16394),
        (3383, 0, 0),
        (3226, 0, 0),
        (3376, 0, 16415),
    ]
    assert entries[1].listing == "INDEX ATTACH ix \\connect postgres pgparity"


def test_every_transform_says_which_statistics_it_keeps() -> None:
    """Data parity reads this table (``models.policy``) without knowing the transforms."""
    assert set(KEPT_STATISTICS) == set(TRANSFORMS)
    assert all(kept <= ALL_STATISTICS for kept in KEPT_STATISTICS.values())
