"""SIGTERM behaves like SIGINT on a real target: the running statement is cancelled on the
server, the transaction rolled back (so the target holds no lock of pgparity's a moment
later), every session pgparity opened is closed, and the exit code is 130."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from fix_pg import PgDatabase, start_pgparity, table_t, wait_for_progress

ROWS = table_t(2000)
SIGNALS = [signal.SIGTERM, signal.SIGINT]


def _start(db: PgDatabase, tmp_path: Path, migration: str, *extra: str) -> subprocess.Popen[str]:
    path = tmp_path / "m.sql"
    path.write_text(migration)
    return start_pgparity("validate", "--migration", str(path), "--dsn", db.dsn, *extra)


def _interrupt_at(process: subprocess.Popen[str], needle: str, signum: int) -> str:
    """Wait for the progress line containing ``needle``, let it run, send ``signum``."""
    seen = wait_for_progress(process, needle)
    time.sleep(0.7)
    started = time.monotonic()
    process.send_signal(signum)
    _, rest = process.communicate(timeout=60)
    assert time.monotonic() - started < 15, "cleaning up took too long"
    return "".join(seen) + rest


def _assert_clean(db: PgDatabase, process: subprocess.Popen[str], output: str) -> None:
    assert process.returncode == 130, output
    assert "pgparity: interrupted; cleaned up" in output
    assert "Traceback" not in output
    deadline = time.monotonic() + 3
    while True:
        locks = db.scalar(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.application_name LIKE 'pgparity%' AND a.datname = current_database()"
        )
        sessions = db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'pgparity%' "
            "AND datname = current_database()"
        )
        if locks == 0 and sessions == 0:
            break
        assert time.monotonic() < deadline, f"{locks} locks, {sessions} sessions left"
        time.sleep(0.05)
    assert db.scalar("SELECT count(*) FROM t") == 2000


class TestInterruption:
    @pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
    def test_during_a_statement_holding_access_exclusive(
        self, pg_db: PgDatabase, tmp_path: Path, signum: int
    ) -> None:
        pg_db.execute(ROWS)
        process = _start(
            pg_db,
            tmp_path,
            "ALTER TABLE t ADD COLUMN w int;\nDELETE FROM t;\nSELECT pg_sleep(60);\n",
        )
        output = _interrupt_at(process, "statement 3 (line 3)", signum)
        _assert_clean(pg_db, process, output)
        assert (
            pg_db.scalar(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' "
                "AND column_name = 'w'"
            )
            == 0
        )

    @pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
    def test_under_traffic_and_a_long_reader(
        self, pg_db: PgDatabase, tmp_path: Path, signum: int
    ) -> None:
        pg_db.execute(ROWS)
        process = _start(
            pg_db,
            tmp_path,
            "ALTER TABLE t ADD COLUMN w int;\nSELECT pg_sleep(60);\n",
            "--traffic",
            "auto",
            "--traffic-clients",
            "2",
            "--hold-lock",
            "t:30",
            "--lock-timeout",
            "60s",
            "--statement-timeout",
            "120s",
        )
        output = _interrupt_at(process, "statement 1 (line 1)", signum)
        _assert_clean(pg_db, process, output)

    @pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
    def test_during_a_concurrent_index_build_on_a_clone(
        self, pg_db: PgDatabase, tmp_path: Path, signum: int
    ) -> None:
        """The cancelled CREATE INDEX CONCURRENTLY leaves an invalid index; it is dropped."""
        pg_db.execute(ROWS)
        reader = pg_db.connect()
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT 1")  # an old snapshot: the build waits for it
        try:
            process = _start(pg_db, tmp_path, "CREATE INDEX CONCURRENTLY t_v ON t (v);\n")
            output = _interrupt_at(process, "outside the transaction", signum)
        finally:
            reader.execute("ROLLBACK")
            reader.close()
        _assert_clean(pg_db, process, output)
        assert pg_db.scalar("SELECT to_regclass('t_v')") is None
