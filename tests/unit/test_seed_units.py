"""Policies, transforms and copy plans (pure parts of the seeding pipeline)."""

from __future__ import annotations

import pytest
import yaml

from pgparity.errors import SpecError
from pgparity.models.policy import Policy, RowsMode
from pgparity.seed.catalog import ForeignKey, SourceCatalog, TableInfo
from pgparity.seed.plan import copy_jobs
from pgparity.seed.policy_check import check_policy, suggest_rule, suggested_policy_text
from pgparity.seed.transforms import HMAC_BLOCK, ColumnInfo, key_pads


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
    assert 'WITH "pgparity_key" AS MATERIALIZED' in text
    assert '"search"' not in text  # generated columns are not copied
    assert (
        jobs[0].copy_in().as_string(None)
        == 'COPY "public"."users" ("id", "email", "bio") FROM STDIN (FORMAT binary)'
    )
    assert len(copy_jobs(users, policy.tables["public.users"].columns, split=False)) == 1
