"""Issue 9, hostile and unusual input, end to end through the ``pgparity`` command.

Every class is one cause with many variants. A bad input must end in exit 2 with one line on
stderr (``pgparity: error: …``), no traceback, nothing written, and — where it can be shown —
before anything connects: the DSN given points at a closed port, so any connection attempt
would end in exit 4 instead.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from psycopg import conninfo

from fix_pg import PgDatabase, postgres_processes_under, start_local_validation
from pgparity.pg.localcluster import LocalCluster, free_port

PGPARITY = [sys.executable, "-m", "pgparity"]
HANG = 20.0  # seconds after which a run counts as hung
# A regression that reads /dev/zero or expands an alias bomb must fail the test, not exhaust
# the memory of a machine others share: each run gets at most this much address space.
MEMORY_LIMIT = 4 * 1024**3


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = HANG
) -> subprocess.CompletedProcess[str]:
    command = [*PGPARITY, *map(str, args)]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=_limit_memory,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            return subprocess.CompletedProcess(command, -9, out, f"HUNG after {timeout}s\n{err}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.args[3:], result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pgparity: error:"), lines[0]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert result.stdout == ""


@pytest.fixture
def closed_dsn() -> str:
    """A DSN nothing listens on: reaching it would be exit 4, so exit 2 proves no connection."""
    return f"host=127.0.0.1 port={free_port()} dbname=x user=u password=ClosedPortSecret"


@pytest.fixture
def ok_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "migration": tmp_path / "ok.sql",
        "policy": tmp_path / "ok-policy.yaml",
    }
    files["migration"].write_text("SELECT 1;\n")
    files["policy"].write_text("version: 1\ntables:\n  public.t:\n    columns:\n      id: keep\n")
    return files


def _commands(flag: str, path: Path, dsn: str, ok: dict[str, Path]) -> list[str | Path]:
    """The command line that hands ``path`` to ``flag`` (every text input pgparity reads)."""
    validate: list[str | Path] = ["validate", "--migration", ok["migration"], "--dsn", dsn]
    seed: list[str | Path] = ["seed", "--source-dsn", dsn, "--target-dsn", dsn]
    parity: list[str | Path] = ["parity", "--production-dsn", dsn, "--staging-dsn", dsn]
    commands: dict[str, list[str | Path]] = {
        "--migration": ["validate", "--migration", path, "--dsn", dsn],
        "--traffic": [*validate, "--traffic", path],
        "--explain": [*validate, "--explain", path],
        "--seed-sql": ["validate", "--migration", ok["migration"], "--local", "--seed-sql", path],
        "--baseline": ["drift", "--dsn", dsn, "--baseline", path],
        "policy check --policy": ["policy", "check", "--dsn", dsn, "--policy", path],
        "seed --policy": [*seed, "--policy", path],
        "parity --policy": [*parity, "--policy", path],
        "parity --queries": [*parity, "--queries", path],
        "parity --settings": [*parity, "--settings", path],
        "parity --migration": [*parity, "--migration", path],
        "--key-file": [*seed, "--policy", ok["policy"], "--key-file", path],
    }
    return commands[flag]


TEXT_FLAGS = [
    "--migration",
    "--traffic",
    "--explain",
    "--seed-sql",
    "--baseline",
    "policy check --policy",
    "seed --policy",
    "parity --policy",
    "parity --queries",
    "parity --settings",
    "parity --migration",
]
YAML_FLAGS = [
    "--traffic",
    "--explain",
    "policy check --policy",
    "parity --queries",
    "parity --settings",
]


class TestNulByteHidesNothing:
    """Issue 9: ``SELECT 1;<NUL> DROP TABLE t`` was VALIDATED (pglast stopped at the NUL)."""

    def test_the_issue_example(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        pg_db.execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1);")
        path = tmp_path / "m.sql"
        path.write_bytes(b"SELECT 1;\x00 DROP TABLE t;\n")
        result = run("validate", "--migration", path, "--dsn", pg_db.dsn, "--quiet")
        assert_usage_error(result, str(path), "line 1, column 10", "U+0000 (NUL)")
        assert pg_db.scalar("SELECT count(*) FROM t") == 1

    @pytest.mark.parametrize(
        ("content", "where"),
        [
            (b"SELECT 1;\n\x00", "line 2, column 1: control character U+0000 (NUL)"),
            (b"CREATE TABLE a (i int);\x1b[2K\n", "line 1, column 24: control character U+001B"),
            (b"SELECT 1;\x7f\n", "U+007F (DEL)"),
            (b"SELECT\x0b1;\n", "U+000B (vertical tab)"),
            (b"SELECT '\x01';\n", "U+0001"),
            (b"-- comment\x00\nDROP TABLE t;\n", "line 1, column 11"),
            (b"SELECT 1; /* \x00 */ DROP TABLE t;\n", "line 1, column 14"),
            (b"SELECT $$\x00$$;\n", "line 1, column 10"),
        ],
    )
    def test_control_characters_anywhere(
        self, tmp_path: Path, closed_dsn: str, content: bytes, where: str
    ) -> None:
        path = tmp_path / "m.sql"
        path.write_bytes(content)
        assert_usage_error(run("validate", "--migration", path, "--dsn", closed_dsn), where)

    def test_form_feed_is_whitespace_for_every_sql_scanner(
        self, pg_db: PgDatabase, tmp_path: Path
    ) -> None:
        path = tmp_path / "m.sql"
        path.write_bytes(b"CREATE TABLE ff (i int);\x0cSELECT 1;\n")
        result = run("validate", "--migration", path, "--dsn", pg_db.dsn, "--quiet")
        assert result.returncode == 0, result.stderr


class TestEveryTextInputIsBounded:
    """Control characters, devices, FIFOs, directories and 10 GB files through every flag that
    reads a file: one line, exit 2, in seconds, before connecting."""

    @pytest.mark.parametrize("flag", TEXT_FLAGS)
    def test_nul_byte(
        self, tmp_path: Path, closed_dsn: str, ok_files: dict[str, Path], flag: str
    ) -> None:
        path = tmp_path / "input"
        path.write_bytes(b"a: 1\n\x00\n")
        result = run(*_commands(flag, path, closed_dsn, ok_files))
        assert_usage_error(result, str(path), "line 2, column 1", "U+0000 (NUL)")

    @pytest.mark.parametrize("flag", [*TEXT_FLAGS, "--key-file"])
    @pytest.mark.parametrize("special", ["/dev/zero", "fifo", "directory", "10GB"])
    def test_special_and_huge_files(
        self, tmp_path: Path, closed_dsn: str, ok_files: dict[str, Path], flag: str, special: str
    ) -> None:
        path, named = _special(tmp_path, special)
        result = run(*_commands(flag, path, closed_dsn, ok_files))
        assert_usage_error(result, str(path), named)


def _special(tmp_path: Path, special: str) -> tuple[Path, str]:
    if special == "/dev/zero":
        return Path("/dev/zero"), "is a character device, not a regular file"
    if special == "fifo":
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        return fifo, "is a FIFO, not a regular file"
    if special == "directory":
        return tmp_path, "is a directory, not a regular file"
    huge = tmp_path / "huge"
    with open(huge, "wb") as handle:
        handle.truncate(10 * 1024**3)  # sparse
    return huge, "limit"


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nstatements: *a9\n"


YAML_ATTACKS = {
    "billion-laughs": (_alias_bomb(), "aliases (*name) are not allowed"),
    "deep-flow": ("[" * 20_000 + "]" * 20_000 + "\n", "nested deeper than 32 levels"),
    "deep-block": ("- " * 20_000 + "x\n", "nested deeper than 32 levels"),
    "huge-int": ("clients: " + "9" * 5000 + "\n", "integer too large"),
    "int65": ("clients: 18446744073709551616\n", "integer out of the 64-bit range"),
    "nan": ("rate: .nan\n", "numbers must be finite"),
    "inf": ("rate: -.inf\n", "numbers must be finite"),
    "duplicate-key": ("sql: SELECT 1\nsql: DROP TABLE t\n", "key 'sql' is given twice"),
}


class TestYamlAttacks:
    """Alias bombs hung pgparity, 20 000-deep nesting ended in exit 70 (RecursionError)."""

    @pytest.mark.parametrize("flag", [*YAML_FLAGS, "seed --policy", "parity --policy"])
    @pytest.mark.parametrize("attack", list(YAML_ATTACKS))
    def test_every_yaml_input(
        self, tmp_path: Path, closed_dsn: str, ok_files: dict[str, Path], flag: str, attack: str
    ) -> None:
        text, problem = YAML_ATTACKS[attack]
        path = tmp_path / "doc.yaml"
        path.write_text(text)
        result = run(*_commands(flag, path, closed_dsn, ok_files))
        assert_usage_error(result, str(path), "line ", problem)


class TestMisspeltKeysAreErrors:
    """Issue 9: an explain expectation under a misspelt key never ran, and gave VALIDATED."""

    def test_the_issue_example(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        pg_db.execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
        migration = tmp_path / "m.sql"
        migration.write_text("ALTER TABLE t ADD COLUMN note text;\n")
        explain = tmp_path / "explain.yaml"
        explain.write_text("- name: q\n  sql: SELECT * FROM t WHERE id = 1\n  usesIndx: t_pkey\n")
        result = run("validate", "--migration", migration, "--dsn", pg_db.dsn, "--explain", explain)
        assert_usage_error(
            result, str(explain), "queries[0].usesIndx: unknown key; did you mean usesIndex?"
        )

    @pytest.mark.parametrize(
        ("flag", "text", "problem"),
        [
            ("--explain", "queries:\n  - name: q\n    sql: SELECT 1\nanalyse: true\n", "analyse: "),
            ("--explain", "- name: q\n  sql: SELECT 1\n  no_seq_scan: [t]\n", "noSeqScanOn"),
            ("--explain", "- name: q\n  sql: SELECT 1\n  maxTotalCost: -1\n", "must not be neg"),
            ("parity --queries", "- name: q\n  sql: SELECT 1\n  uses_indx: i\n", "usesIndex"),
            ("--traffic", "clinets: 2\nstatements:\n  - sql: SELECT 1\n", "did you mean clients"),
            ("--traffic", "statements:\n  - sql: SELECT 1\n    wieght: 2\n", "did you mean weight"),
            (
                "--traffic",
                "statements:\n  - sql: SELECT %(i)s\n    params:\n      i: {int_rnge: [1, 2]}\n",
                "statements[0].params.i.int_rnge: unknown key; did you mean intRange?",
            ),
            ("--traffic", "statements:\n  - sql: SELECT 1\nrate: 1.0e+9\n", "rate: must be betw"),
            ("--traffic", "statements:\n  - sql: SELECT 1\nwarmup: 99999999999h\n", "warmup"),
        ],
    )
    def test_variants(
        self,
        tmp_path: Path,
        closed_dsn: str,
        ok_files: dict[str, Path],
        flag: str,
        text: str,
        problem: str,
    ) -> None:
        path = tmp_path / "doc.yaml"
        path.write_text(text)
        assert_usage_error(run(*_commands(flag, path, closed_dsn, ok_files)), problem)


class TestNumbersAreFiniteAndInRange:
    """``--lock-timeout 99999999999h`` reached the server and came back as exit 70."""

    def test_the_issue_example(self, pg_db: PgDatabase, ok_files: dict[str, Path]) -> None:
        result = run(
            "validate",
            "--migration",
            ok_files["migration"],
            "--dsn",
            pg_db.dsn,
            "--lock-timeout",
            "99999999999h",
        )
        assert_usage_error(result, "--lock-timeout", "at most 2147483647ms")

    @pytest.mark.parametrize(
        ("extra", "needle"),
        [
            (["--lock-timeout", "1" + "0" * 400 + "s"], "--lock-timeout"),
            (["--lock-timeout", "nan"], "--lock-timeout"),
            (["--lock-timeout", "inf"], "--lock-timeout"),
            (["--lock-timeout=-1s"], "--lock-timeout"),
            (["--lock-timeout", "1e400s"], "--lock-timeout"),
            (["--statement-timeout", "2147483648"], "--statement-timeout"),
            (["--statement-timeout", "25d"], "--statement-timeout"),
            (["--max-lock-wait", "1000d"], "--max-lock-wait"),
            (["--max-lock-wait", "nan"], "--max-lock-wait"),
            (["--max-replication-lag", "99999999999TB"], "--max-replication-lag"),
            (["--max-replication-lag", "99999999999h"], "--max-replication-lag"),
            (["--max-replication-lag", "inf"], "--max-replication-lag"),
            (["--sample-period", "1e400"], "--sample-period"),
            (["--traffic", "auto", "--traffic-rate", "nan"], "--traffic-rate"),
            (["--traffic", "auto", "--traffic-rate", "inf"], "--traffic-rate"),
            (["--traffic", "auto", "--traffic-rate", "1e400"], "--traffic-rate"),
            (["--traffic", "auto", "--traffic-rate=-1"], "--traffic-rate"),
            (["--traffic", "auto", "--traffic-rate", "1e9"], "--traffic-rate"),
            (["--traffic", "auto", "--traffic-clients", "0"], "--traffic-clients"),
            (["--traffic", "auto", "--traffic-clients", "257"], "--traffic-clients"),
            (["--traffic", "auto", "--traffic-clients", "9" * 30], "--traffic-clients"),
            (["--max-blocked-sessions=-1"], "--max-blocked-sessions"),
            (["--max-blocked-sessions", "1e9"], "--max-blocked-sessions"),
            (["--max-blocked-sessions", "9" * 30], "--max-blocked-sessions"),
            (["--hold-lock", "t:inf"], "--hold-lock"),
            (["--hold-lock", "t:nan"], "--hold-lock"),
            (["--hold-lock", "t:1e400"], "--hold-lock"),
            (["--hold-lock", "t:99999999999"], "--hold-lock"),
            (["--hold-lock", "t:-1"], "--hold-lock"),
        ],
    )
    def test_validate_flags(
        self, closed_dsn: str, ok_files: dict[str, Path], extra: list[str], needle: str
    ) -> None:
        result = run("validate", "--migration", ok_files["migration"], "--dsn", closed_dsn, *extra)
        assert_usage_error(result, needle)
        assert len(result.stderr) < 400  # a 400-digit value is cut short in the message

    @pytest.mark.parametrize("jobs", ["0", "65", "-1", "nan", "1e3", "9" * 30])
    @pytest.mark.parametrize("command", ["seed", "snapshot", "restore"])
    def test_jobs(
        self, tmp_path: Path, closed_dsn: str, ok_files: dict[str, Path], command: str, jobs: str
    ) -> None:
        args = {
            "seed": [
                "seed",
                "--source-dsn",
                closed_dsn,
                "--target-dsn",
                closed_dsn,
                "--policy",
                str(ok_files["policy"]),
            ],
            "snapshot": ["snapshot", "--dsn", closed_dsn, "--output", str(tmp_path / "snap")],
            "restore": ["restore", "--archive", str(tmp_path), "--target-dsn", closed_dsn],
        }[command]
        assert_usage_error(run(*args, f"--jobs={jobs}"), "--jobs")


class TestOutputPathsCheckedFirst:
    """An output that is a directory was found only after the whole run (exit 70)."""

    @pytest.mark.parametrize(
        "case", ["directory", "missing-directory", "unwritable-directory", "device"]
    )
    @pytest.mark.parametrize("command", ["validate --output", "digest --save", "policy init"])
    def test_files(
        self, tmp_path: Path, closed_dsn: str, ok_files: dict[str, Path], command: str, case: str
    ) -> None:
        target, needle = {
            "directory": (tmp_path, "is a directory"),
            "missing-directory": (tmp_path / "nope" / "out", "does not exist"),
            # /proc takes no new files, even from root: a directory nothing can be written in.
            "unwritable-directory": (Path("/proc/pgparity-out"), "cannot write in /proc"),
            # Renaming a report over /dev/null would have replaced the device with a file.
            "device": (Path("/dev/null"), "exists and is not a regular file"),
        }[case]
        commands: dict[str, list[str | Path]] = {
            "validate --output": [
                "validate",
                "--migration",
                ok_files["migration"],
                "--dsn",
                closed_dsn,
                "--output",
                target,
            ],
            "digest --save": ["digest", "--dsn", closed_dsn, "--save", target],
            "policy init": ["policy", "init", "--dsn", closed_dsn, "--policy", target, "--force"],
        }
        args = commands[command]
        before = sorted(tmp_path.rglob("*"))
        assert_usage_error(run(*args), str(target), needle)
        assert sorted(tmp_path.rglob("*")) == before
        assert Path("/dev/null").is_char_device()

    @pytest.mark.parametrize("case", ["file", "not-empty", "missing-parent", "unwritable"])
    def test_snapshot_directory(
        self, tmp_path: Path, closed_dsn: str, ok_files: dict[str, Path], case: str
    ) -> None:
        (tmp_path / "full").mkdir()
        (tmp_path / "full" / "x").write_text("")
        target, needle = {
            "file": (ok_files["migration"], "exists and is not a directory"),
            "not-empty": (tmp_path / "full", "exists and is not empty"),
            "missing-parent": (tmp_path / "a" / "b", "does not exist"),
            "unwritable": (Path("/proc/pgparity-snapshot"), "cannot write in /proc"),
        }[case]
        before = sorted(tmp_path.rglob("*"))
        assert_usage_error(run("snapshot", "--dsn", closed_dsn, "--output", target), needle)
        assert sorted(tmp_path.rglob("*")) == before


InProcess = Callable[[Sequence[str | Path], dict[str, str]], tuple[int, str, str]]


@pytest.fixture
def in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """``pgparity.cli.main`` in this process (the same code path as the command, and fast
    enough for a matrix of hundreds of runs): (exit code, stdout, stderr)."""
    from pgparity.cli import main

    for name in [k for k in os.environ if k.startswith("PGPARITY_") and k.endswith("DSN")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # keep pytest's own handlers

    def invoke(args: Sequence[str | Path], env: dict[str, str]) -> tuple[int, str, str]:
        with monkeypatch.context() as scoped:
            for key, value in env.items():
                scoped.setenv(key, value)
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:
                code = int(exc.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


# DSNs libpq cannot parse, each hiding its own secret; libpq quoted pieces of some of them.
MALFORMED_DSNS = [
    ("postgresql://u:Pct%zzSecretA@127.0.0.1/db", "Pct%zzSecretA"),
    ("postgresql://u:Space SecretB@127.0.0.1/db", "Space SecretB"),
    ("postgresql://u:At@SecretC@127.0.0.1/db?bogus=1", "At@SecretC"),
    ("postgresql://u:Colon:SecretD@[::1/db", "Colon:SecretD"),
    ("postgresql://u@127.0.0.1/db?password=QuerySecretE&bogus=1", "QuerySecretE"),
    ("postgresql://u:Юникод%SecretF@127.0.0.1/db", "Юникод%SecretF"),
    ("host=127.0.0.1 password='Unterminated SecretG", "Unterminated SecretG"),
    ("host=127.0.0.1 password='it\\'s SecretH' bogus=1", "it's SecretH"),
    ("host=127.0.0.1 password=PlainSecretI bogus", "PlainSecretI"),
    ("host=127.0.0.1 port=notaport password=PortSecretJ", "PortSecretJ"),
    ("host=127.0.0.1 port=99999999 password=PortSecretK", "PortSecretK"),
    ("host=127.0.0.1 sslmode=bogus password=SslSecretL", "SslSecretL"),
]


def _secret_pieces(secret: str) -> list[str]:
    import re

    return [secret, *(p for p in re.split(r"[\s@:/?#&%']", secret) if len(p) >= 4)]


class TestPasswordsNeverShown:
    """libpq's parse errors echoed passwords (``invalid percent-encoded token: "s3cr%zz"``)."""

    @pytest.fixture
    def archive(self, tmp_path: Path) -> Path:
        """A minimal archive whose manifest checks out, so restore gets as far as connecting."""
        import hashlib

        directory = tmp_path / "archive"
        (directory / "data").mkdir(parents=True)
        toc = directory / "data" / "toc.dat"
        toc.write_bytes(b"toc")
        manifest = {
            "version": 1,
            "created_at": "2024-01-01T00:00:00Z",
            "schema_digest": "sha256:" + "0" * 64,
            "source_digest": "sha256:" + "0" * 64,
            "policy_sha256": "0" * 64,
            "rows": {},
            "toc_sha256": hashlib.sha256(b"toc").hexdigest(),
            "server_version": "15",
            "pgparity_version": "0",
            "archive": "data",
        }
        (directory / "manifest.json").write_text(json.dumps(manifest))
        return directory

    def _commands(
        self, dsn: str, good: str, tmp_path: Path, ok: dict[str, Path], archive: Path
    ) -> dict[str, tuple[list[str | Path], dict[str, str]]]:
        out = tmp_path / "out"
        return {
            "validate": (["validate", "--migration", ok["migration"], "--dsn", dsn], {}),
            "validate-output": (
                ["validate", "--migration", ok["migration"], "--dsn", dsn, "--output", out],
                {},
            ),
            "validate-replica": (
                ["validate", "--migration", ok["migration"], "--dsn", good, "--replica-dsn", dsn],
                {},
            ),
            "digest": (["digest", "--dsn", dsn, "--save", out], {}),
            "drift": (["drift", "--dsn", dsn, "--expect", "sha256:" + "0" * 64], {}),
            "seed-source": (
                ["seed", "--source-dsn", dsn, "--target-dsn", good, "--policy", ok["policy"]],
                {},
            ),
            "seed-target": (
                ["seed", "--source-dsn", good, "--target-dsn", dsn, "--policy", ok["policy"]],
                {},
            ),
            "policy-init": (["policy", "init", "--dsn", dsn, "--policy", out], {}),
            "policy-check": (["policy", "check", "--dsn", dsn, "--policy", ok["policy"]], {}),
            "parity-production": (["parity", "--production-dsn", dsn, "--staging-dsn", good], {}),
            "parity-staging": (["parity", "--production-dsn", good, "--staging-dsn", dsn], {}),
            "snapshot": (["snapshot", "--dsn", dsn, "--output", out], {}),
            "restore": (["restore", "--archive", archive, "--target-dsn", dsn], {}),
            "env-validate": (
                ["validate", "--migration", ok["migration"]],
                {"PGPARITY_DSN": dsn},
            ),
            "env-replica": (
                ["validate", "--migration", ok["migration"], "--dsn", good],
                {"PGPARITY_REPLICA_DSN": dsn},
            ),
            "env-seed": (
                ["seed", "--policy", ok["policy"]],
                {"PGPARITY_SOURCE_DSN": dsn, "PGPARITY_TARGET_DSN": good},
            ),
            "env-restore": (["restore", "--archive", archive], {"PGPARITY_TARGET_DSN": dsn}),
        }

    @pytest.mark.parametrize(("dsn", "secret"), MALFORMED_DSNS, ids=[s for _, s in MALFORMED_DSNS])
    def test_every_command_every_malformed_dsn(
        self,
        pg_db: PgDatabase,
        tmp_path: Path,
        ok_files: dict[str, Path],
        archive: Path,
        in_process: InProcess,
        dsn: str,
        secret: str,
    ) -> None:
        pg_db.execute("CREATE TABLE t (id int)")
        commands = self._commands(dsn, pg_db.dsn, tmp_path, ok_files, archive)
        for name, (args, env) in commands.items():
            code, out, err = in_process(args, env)
            assert code == 2, (name, code, err)
            assert "Traceback" not in err, name
            assert len(err.strip().splitlines()) == 1, (name, err)
            written = [
                p.read_bytes().decode(errors="replace")
                for p in tmp_path.rglob("*")
                if p.is_file() and "archive" not in p.parts
            ]
            for piece in _secret_pieces(secret):
                assert piece not in out + err, (name, piece, err)
                assert not any(piece in text for text in written), (name, piece)
            assert not (tmp_path / "out").exists(), name

    def test_reports_and_progress_of_a_real_run(self, pg_db: PgDatabase, tmp_path: Path) -> None:
        password = str(conninfo.conninfo_to_dict(pg_db.dsn)["password"])
        migration = tmp_path / "m.sql"
        migration.write_text(
            "SELECT 'host=10.0.0.1 port=5432 password=InSqlSecret1';\n"
            "SELECT 'postgresql://app:InSqlSecret2@10.0.0.1/db';\n"
            "CREATE TABLE accounts (id int, password text);\n"
            "UPDATE accounts SET password = 'shown-as-written';\n"
        )
        for fmt in ("json", "markdown", "junit", "text"):
            out = tmp_path / f"report.{fmt}"
            result = run(
                "validate",
                "--migration",
                migration,
                "--dsn",
                pg_db.dsn,
                "--format",
                fmt,
                "--output",
                out,
            )
            assert result.returncode == 0, result.stderr
            text = out.read_text() + result.stdout + result.stderr
            for secret in (password, "InSqlSecret1", "InSqlSecret2"):
                assert secret not in text, (fmt, secret)
            assert "password = 'shown-as-written'" in text, fmt
            if fmt == "json":
                json.loads(out.read_text())
            if fmt == "junit":
                import xml.etree.ElementTree as ET

                ET.fromstring(out.read_text())


class TestStaleLocalDirectories:
    """A ``kill -9`` left the ``--local`` cluster's directory (and maybe its servers) behind."""

    def test_kill_9_mid_run_then_the_next_start_cleans_up(
        self, tmp_path: Path, workdir: Path
    ) -> None:
        slow = tmp_path / "slow.sql"
        slow.write_text("SELECT pg_sleep(60);\n")
        process, _ = start_local_validation(slow, workdir)
        left = list(workdir.glob("pgparity-cluster-*"))
        assert len(left) == 1
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert left[0].exists()  # nothing could clean up
        quick = tmp_path / "quick.sql"
        quick.write_text("CREATE TABLE again (i int);\n")
        second = subprocess.run(
            [*PGPARITY, "validate", "--local", "--migration", str(quick)],
            capture_output=True,
            text=True,
            env={**os.environ, "PGPARITY_WORKDIR": str(workdir)},
            timeout=300,
            check=False,
        )
        assert second.returncode == 0, second.stderr
        assert f"removed {left[0]}" in second.stderr
        assert not left[0].exists()
        assert postgres_processes_under(workdir) == []
        assert not list(workdir.glob("pgparity-cluster-*"))

    def test_an_orphaned_postmaster_is_stopped_and_its_directory_removed(
        self, workdir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from pgparity.pg.localcluster import OWNER_FILE, process_start, remove_stale_clusters

        monkeypatch.setenv("PGPARITY_WORKDIR", str(workdir))
        with LocalCluster(durable=False, replicas=0) as cluster:
            directory = next(workdir.glob("pgparity-cluster-*"))
            assert cluster.primary is not None
            assert cluster.primary.process is not None
            postmaster = cluster.primary.process.pid
            # Play a pgparity killed where the kernel did not stop its servers: the recorded
            # owner is a process that has exited.
            owner = json.loads((directory / OWNER_FILE).read_text())
            dead = subprocess.Popen(["true"])
            dead.wait()
            owner.update(pid=dead.pid, started=1)
            (directory / OWNER_FILE).write_text(json.dumps(owner))
            assert remove_stale_clusters(workdir) == [directory]
            assert process_start(postmaster) is None
            assert not directory.exists()

    def test_what_is_not_provably_stale_is_left_alone(self, workdir: Path) -> None:
        from pgparity.pg.localcluster import OWNER_FILE, process_start, remove_stale_clusters

        def make(name: str, owner: dict[str, object] | None) -> Path:
            directory = workdir / f"pgparity-cluster-{name}"
            (directory / "primary").mkdir(parents=True)
            if owner is not None:
                (directory / OWNER_FILE).write_text(json.dumps(owner))
            return directory

        namespace = os.readlink("/proc/self/ns/pid")
        alive = make(
            "alive",
            {"pid": os.getpid(), "started": process_start(os.getpid()), "pid_namespace": namespace},
        )
        foreign = make("other-namespace", {"pid": 1, "started": 1, "pid_namespace": "pid:[1]"})
        unowned = make("no-owner", None)
        garbage = make("garbage", None)
        (garbage / OWNER_FILE).write_text("{not json")
        # A dead owner whose postmaster.pid names a PID that is not a postgres of that
        # directory (a reused PID): the process must survive, the directory goes.
        decoy = subprocess.Popen(["sleep", "60"])
        try:
            stale = make("stale", {"pid": 2**22 + 1, "started": 1, "pid_namespace": namespace})
            (stale / "primary" / "postmaster.pid").write_text(f"{decoy.pid}\n{stale / 'primary'}\n")
            assert remove_stale_clusters(workdir) == [stale]
            assert decoy.poll() is None
        finally:
            decoy.kill()
            decoy.wait()
        for kept in (alive, foreign, unowned, garbage):
            assert kept.exists()
