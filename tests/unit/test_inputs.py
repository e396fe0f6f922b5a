"""Hostile input files: control characters, special and huge files, YAML that attacks its loader.

Each class is one cause from issue 9 with many variants; every variant must end in UsageError
(exit 2 at the CLI) with a message that says where, never in a hang, a traceback or a silent
misreading.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from pgparity.errors import UsageError
from pgparity.inputs import (
    BASELINE,
    KEY_FILE,
    MIGRATION,
    SEED_SQL,
    YAML_FILE,
    InputKind,
    check_no_nul,
    control_character,
    load_yaml_file,
    parse_yaml,
    read_bytes,
    read_text,
    sql_control_character,
)


class TestControlCharacters:
    """NUL hid the rest of a migration from the parser while psql ran it (issue 9)."""

    @pytest.mark.parametrize(
        ("text", "where"),
        [
            ("SELECT 1;\x00 DROP TABLE t;", "line 1, column 10: control character U+0000 (NUL)"),
            ("SELECT 1;\n\nDROP\x00", "line 3, column 5: control character U+0000 (NUL)"),
            ("\x00", "line 1, column 1"),
            ("SELECT 'a\x1b[2J';", "line 1, column 10: control character U+001B (ESC)"),
            ("SELECT 1;\x7f", "U+007F (DEL)"),
            ("SELECT\x0b1;", "U+000B (vertical tab)"),
            ("SELECT 1;\x08", "U+0008"),
            ("SELECT 1;\x01", "U+0001"),
            ("SELECT 1;\x1f", "U+001F"),
            ("-- é ü 日本\nSELECT '\x00';", "line 2, column 9"),  # columns count characters
            ("SELECT 1;\r\n\x00", "line 2, column 1"),
        ],
    )
    def test_refused_with_line_and_column(self, text: str, where: str) -> None:
        problem = sql_control_character(text)
        assert problem is not None
        assert where in problem

    @pytest.mark.parametrize(
        "text",
        [
            "SELECT 1;\n",
            "SELECT\t1;\r\n",
            "SELECT 1;\x0cSELECT 2;",
            "SELECT 'é', '日本', '\u2028';",
        ],
    )
    def test_tab_newlines_and_form_feed_are_sql_whitespace(self, text: str) -> None:
        assert sql_control_character(text) is None

    def test_form_feed_is_refused_outside_sql(self) -> None:
        assert "form feed" in (control_character("a: 1\x0c") or "")

    @pytest.mark.parametrize("code", [c for c in range(0x20) if c not in (9, 10, 12, 13)] + [0x7F])
    def test_every_other_c0_control_and_del_in_a_migration_file(
        self, tmp_path: Path, code: int
    ) -> None:
        path = tmp_path / "m.sql"
        path.write_bytes(b"SELECT 1;\n  SELECT " + bytes([code]) + b"2;\n")
        with pytest.raises(UsageError, match=rf"{path}: line 2, column 10: .*U\+{code:04X}"):
            read_text(path, MIGRATION)

    def test_a_baseline_may_carry_del_as_json_dumps_writes_it(self, tmp_path: Path) -> None:
        path = tmp_path / "baseline.json"
        path.write_text(json.dumps({"comment": "a\x7f\x01"}, ensure_ascii=False))
        assert json.loads(read_text(path, BASELINE)) == {"comment": "a\x7f\x01"}
        path.write_text('{"a": 1}\x00')
        with pytest.raises(UsageError, match="U\\+0000 \\(NUL\\)"):
            read_text(path, BASELINE)

    def test_seed_sql_refuses_nul_only_and_counts_lines_across_chunks(self, tmp_path: Path) -> None:
        path = tmp_path / "seed.sql"
        # A plain dump carries other control bytes raw inside COPY data: those are fine.
        ok = b"COPY t (a) FROM stdin;\n\x01\x1b\x7f\n\\.\n"
        path.write_bytes(ok)
        check_no_nul(path, SEED_SQL)
        filler = b"x" * 1000 + b"\n"
        path.write_bytes(filler * 3000 + b"abc\x00")
        with pytest.raises(UsageError, match=r"line 3001, column 4: .*NUL"):
            check_no_nul(path, SEED_SQL)


KINDS = [MIGRATION, YAML_FILE, KEY_FILE, SEED_SQL]


class TestSpecialAndHugeFiles:
    """``/dev/zero`` was read forever; a FIFO blocked; only regular files within a limit now."""

    @pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.what)
    @pytest.mark.parametrize(
        ("special", "named"),
        [("/dev/zero", "a character device"), ("/dev/null", "a character device")],
    )
    def test_devices(self, kind: InputKind, special: str, named: str) -> None:
        with pytest.raises(UsageError, match=f"is {named}, not a regular file"):
            _read(Path(special), kind)

    @pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.what)
    def test_fifo_without_a_writer_does_not_block(self, tmp_path: Path, kind: InputKind) -> None:
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        outcome: list[BaseException] = []
        reader = threading.Thread(target=lambda: outcome.append(_raised(fifo, kind)))
        reader.start()
        reader.join(timeout=10)
        if reader.is_alive():  # unblock the thread before failing
            with open(fifo, "wb"):
                pass
            pytest.fail("reading a FIFO blocked")
        assert "is a FIFO, not a regular file" in str(outcome[0])

    @pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.what)
    def test_directory_and_symlink_to_a_device(self, tmp_path: Path, kind: InputKind) -> None:
        with pytest.raises(UsageError, match="is a directory, not a regular file"):
            _read(tmp_path, kind)
        link = tmp_path / "zero"
        link.symlink_to("/dev/zero")
        with pytest.raises(UsageError, match="is a character device"):
            _read(link, kind)

    @pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.what)
    def test_ten_gigabyte_file_is_refused_with_the_limit(
        self, tmp_path: Path, kind: InputKind
    ) -> None:
        huge = tmp_path / "huge"
        with open(huge, "wb") as handle:
            handle.truncate(10 * 1024**3)  # sparse: costs no disk
        with pytest.raises(UsageError, match=r"is larger than the \d+ [MK]iB limit"):
            _read(huge, kind)

    def test_just_over_the_limit_and_at_the_limit(self, tmp_path: Path) -> None:
        kind = InputKind("test file", 1024)
        path = tmp_path / "f"
        path.write_bytes(b"a" * 1024)
        assert len(read_bytes(path, kind)) == 1024
        path.write_bytes(b"a" * 1025)
        with pytest.raises(UsageError, match="larger than the 1 KiB limit"):
            read_bytes(path, kind)

    def test_missing_and_unreadable(self, tmp_path: Path) -> None:
        with pytest.raises(UsageError, match="does not exist"):
            read_text(tmp_path / "missing.sql", MIGRATION)
        (tmp_path / "file").write_text("")
        with pytest.raises(UsageError, match="cannot be read: Not a directory"):
            read_text(tmp_path / "file" / "m.sql", MIGRATION)

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "m.sql"
        path.write_bytes(b"SELECT '\xff';")
        with pytest.raises(UsageError, match=r"is not UTF-8 \(byte 8\)"):
            read_text(path, MIGRATION)


def _read(path: Path, kind: InputKind) -> None:
    if kind is SEED_SQL:
        check_no_nul(path, kind)
    else:
        read_bytes(path, kind)


def _raised(path: Path, kind: InputKind) -> BaseException:
    try:
        _read(path, kind)
    except UsageError as exc:
        return exc
    return AssertionError("no error")


def _alias_bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


class TestYamlThatAttacksTheLoader:
    """Alias bombs hung pgparity; 20 000-deep nesting crashed it (RecursionError, exit 70)."""

    @pytest.mark.parametrize(
        "text",
        [
            _alias_bomb(9),  # the billion laughs
            _alias_bomb(2),
            "a: &x 1\nb: *x\n",
            "base: &b {clients: 2}\nworkload:\n  <<: *b\n",
            "- &x [1]\n- *x\n",
            "statements: *undefined\n",
        ],
    )
    def test_aliases_are_refused(self, text: str) -> None:
        with pytest.raises(UsageError, match=r"line \d+, column \d+: aliases"):
            parse_yaml(text, "f.yaml")

    def test_an_anchor_without_an_alias_is_harmless(self) -> None:
        assert parse_yaml("a: &x 1\n", "f.yaml") == {"a": 1}

    @pytest.mark.parametrize(
        "text",
        [
            "[" * 20_000 + "]" * 20_000,
            "{a: " * 20_000 + "}" * 20_000,
            "- " * 20_000 + "x\n",
            "? " * 20_000 + "x\n",
            "a: " + "[{b: " * 10_000,
            "".join(" " * i + f"k{i}:\n" for i in range(40)),
            "".join(" " * i + "-\n" for i in range(40)),
        ],
        ids=["flow-seq", "flow-map", "block-seq", "complex-keys", "mixed", "block-map", "seq"],
    )
    def test_deep_nesting_is_refused(self, text: str) -> None:
        with pytest.raises(UsageError, match="nested deeper than 32 levels"):
            parse_yaml(text, "f.yaml")

    def test_nesting_up_to_the_limit_is_fine(self) -> None:
        assert parse_yaml("[" * 32 + "]" * 32, "f.yaml") is not None

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("a: " + "9" * 5000, "integer too large"),
            ("a: 9223372036854775808", "integer out of the 64-bit range"),
            ("a: -9223372036854775809", "integer out of the 64-bit range"),
            ("a: 0x" + "f" * 17, "integer out of the 64-bit range"),
            ("a: .nan", "numbers must be finite"),
            ("a: .inf", "numbers must be finite"),
            ("a: -.Inf", "numbers must be finite"),
            ("a: 1.0e+400", "numbers must be finite"),
            ("a: 1\nb: 2\na: 3\n", "key 'a' is given twice"),
            ("sql: SELECT 1\nsql: DROP TABLE t\n", "key 'sql' is given twice"),
            ("<<: {a: 1}\n", "merge keys (<<) are not allowed"),
            ("a: 1\x00\n", "control character U+0000 (NUL)"),
            ("a: '\x1b[31m'\n", "control character U+001B (ESC)"),
            ("a: 1\x0c\n", "control character U+000C (form feed)"),
        ],
    )
    def test_numbers_duplicates_and_controls(self, text: str, problem: str) -> None:
        with pytest.raises(UsageError) as caught:
            parse_yaml(text, "f.yaml")
        assert problem in str(caught.value)
        assert "\n" not in str(caught.value)

    def test_bounded_numbers_are_kept(self) -> None:
        doc = parse_yaml("a: 9223372036854775807\nb: -1.5e+300\nc: 017\n", "f.yaml")
        assert doc == {"a": 2**63 - 1, "b": -1.5e300, "c": 15}

    @pytest.mark.parametrize(
        ("text", "problem"),
        [
            ("", "is empty"),
            ("# only a comment\n", "is empty"),
            ("a: [\n", "is not valid YAML: line 2, column 1"),
            ("a: !!python/object:os.system {}\n", "is not valid YAML"),
            ("--- 1\n--- 2\n", "is not valid YAML"),
        ],
    )
    def test_syntax_errors_are_one_line(self, text: str, problem: str) -> None:
        with pytest.raises(UsageError, match=problem):
            parse_yaml(text, "f.yaml")

    def test_file_errors_name_the_flag_and_the_file(self, tmp_path: Path) -> None:
        path = tmp_path / "w.yaml"
        path.write_text(_alias_bomb(9))
        with pytest.raises(UsageError, match=rf"--traffic file {path}: line 2, column \d+: alias"):
            load_yaml_file(path, "--traffic")
        with pytest.raises(UsageError, match=r"--traffic file /dev/zero is a character device"):
            load_yaml_file(Path("/dev/zero"), "--traffic")
