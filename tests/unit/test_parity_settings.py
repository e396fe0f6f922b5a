"""The floor's setting list and value comparison (pure)."""

from __future__ import annotations

import pytest

from pgparity.errors import UsageError
from pgparity.parity.settings import (
    SettingClass,
    SettingsList,
    SettingType,
    list_elements,
    normalize,
    parse_settings_list,
    with_unit,
)

KB = SettingType("integer", "kB")
MS = SettingType("integer", "ms")
BLOCKS = SettingType("integer", "8kB")


@pytest.mark.parametrize(
    ("name", "left", "right", "kind"),
    [
        ("work_mem", "64MB", "65536", KB),
        ("work_mem", "64 MB", "65536kB", KB),
        ("work_mem", "1GB", "1048576", KB),
        ("shared_buffers", "128MB", "16384", BLOCKS),
        ("lock_timeout", "1min", "60000", MS),
        ("lock_timeout", "1h", "3600s", MS),
        ("lock_timeout", "0", "0ms", MS),
        ("jit", "yes", "on", SettingType("bool")),
        ("jit", "0", "off", SettingType("bool")),
        ("plan_cache_mode", "Auto", "auto", SettingType("enum")),
        ("random_page_cost", "1.10", "1.1", SettingType("real")),
        ("search_path", '"$user",public', '"$user", public', SettingType("string")),
    ],
)
def test_equal_values_in_other_spellings(
    name: str, left: str, right: str, kind: SettingType
) -> None:
    assert normalize(name, left, kind) == normalize(name, right, kind)


@pytest.mark.parametrize(
    ("name", "left", "right", "kind"),
    [
        ("work_mem", "64MB", "64", KB),
        ("lock_timeout", "1s", "1", MS),
        ("jit", "on", "off", SettingType("bool")),
        ("search_path", "a, b", "b, a", SettingType("string")),
        ("search_path", '"a,b"', "a, b", SettingType("string")),
    ],
)
def test_different_values(name: str, left: str, right: str, kind: SettingType) -> None:
    assert normalize(name, left, kind) != normalize(name, right, kind)


def test_list_elements_unquote_identifiers() -> None:
    assert list_elements('"$user", public, "a,b", "q""x"') == ["$user", "public", "a,b", 'q"x']
    assert list_elements("") == []


def test_with_unit_makes_configuration_values() -> None:
    assert with_unit("4096", "kB") == "4096kB"
    assert with_unit("16384", "8kB") == "131072kB"
    assert with_unit("-1", "kB") == "-1"
    assert with_unit("1.1", None) == "1.1"


class TestSettingsList:
    def test_defaults(self) -> None:
        defaults = SettingsList()
        assert defaults.classify("work_mem") is SettingClass.MUST_EQUAL
        assert defaults.classify("enable_hashjoin") is SettingClass.MUST_EQUAL
        assert defaults.classify("TimeZone") is SettingClass.MUST_EQUAL
        assert defaults.classify("shared_buffers") is SettingClass.SCALED
        assert defaults.classify("port") is None
        assert defaults.classify("pgparity.clone") is None

    def test_a_file_overrides_and_exact_names_win(self) -> None:
        listed = parse_settings_list(
            {"settings": {"enable_*": "ignored", "enable_seqscan": "must-equal"}}, "f"
        )
        assert listed.classify("enable_hashjoin") is SettingClass.IGNORED
        assert listed.classify("enable_seqscan") is SettingClass.MUST_EQUAL
        assert listed.classify("work_mem") is SettingClass.MUST_EQUAL
        assert listed.exact_names() == {"enable_seqscan"}

    def test_replace_defaults(self) -> None:
        listed = parse_settings_list({"replaceDefaults": True, "settings": {"jit": "scaled"}}, "f")
        assert listed.classify("work_mem") is None
        assert listed.classify("jit") is SettingClass.SCALED

    @pytest.mark.parametrize(
        "doc",
        [
            [],
            {"settings": {"work_mem": "sometimes"}},
            {"settings": {"pgparity.seed_state": "ignored"}},
            {"settings": {"a b": "ignored"}},
            {"settings": {1: "ignored"}},
            {"extra": 1},
        ],
    )
    def test_bad_documents(self, doc: object) -> None:
        with pytest.raises(UsageError):
            parse_settings_list(doc, "f")
