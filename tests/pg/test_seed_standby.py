"""Seeding from a hot standby, the recommended source: one exported snapshot, parallel pieces.

The source is the streaming replica of the test cluster. Its table is big enough to be copied
in several ``ctid`` ranges by two workers, each importing the snapshot the standby exported, while
the primary keeps moving money between accounts (the total never changes): the copy must hold
the total exactly — every piece saw the same instant — and be byte for byte the masked copy made
from the primary itself (same key, same outputs), with pgcrypto on the source or without.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from fix_pg import PgDatabase, _create_database, _drop_database

PGPARITY = [sys.executable, "-m", "pgparity"]
KEY = "standby-masking-key-0123456789abcdef"
ACCOUNTS = 120_000
TOTAL = ACCOUNTS * 1000
SOURCE = f"""
CREATE TABLE accounts (
    id int8 PRIMARY KEY, email text NOT NULL, owner text, balance int8 NOT NULL, born date,
    filler text);
INSERT INTO accounts
SELECT g, 'holder' || g || '@bank.example', 'Holder ' || g, 1000, date '1960-01-01' + g % 9000,
       repeat('x', 40)
FROM generate_series(1, {ACCOUNTS}) g;
"""
POLICY = """version: 1
tables:
  public.accounts:
    columns:
      id: permute
      email: {transform: email, unique: true}
      owner: name
      balance: keep
      born: {transform: date_shift, days: 30}
      filler: fill
"""
MASKED_ROWS = "SELECT id, email, owner, born, filler FROM accounts ORDER BY id"


def seed(source_dsn: str, target: PgDatabase, policy: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PGPARITY_")}
    env["PGPARITY_MASKING_KEY"] = KEY
    return subprocess.run(
        [
            *PGPARITY, "seed", "--source-dsn", source_dsn, "--target-dsn", target.dsn,
            "--policy", str(policy), "--jobs", "2", "--no-parity",
        ],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip


class Transfers(threading.Thread):
    """Moves money between accounts on the primary until stopped: the total stays TOTAL."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self._dsn = dsn
        self._done = threading.Event()
        self.count = 0

    def run(self) -> None:
        with psycopg.connect(self._dsn, autocommit=True) as conn:
            while not self._done.is_set():
                first = 1 + self.count * 7919 % ACCOUNTS
                second = 1 + (self.count * 104729 + 1) % ACCOUNTS
                with conn.transaction():
                    conn.execute(
                        "UPDATE accounts SET balance = balance - 7 WHERE id = %s", (first,)
                    )
                    conn.execute(
                        "UPDATE accounts SET balance = balance + 7 WHERE id = %s", (second,)
                    )
                self.count += 1

    def stop(self) -> None:
        self._done.set()
        self.join()


@pytest.fixture
def second_target(pg_target_db: PgDatabase) -> Iterator[PgDatabase]:
    db = _create_database(pg_target_db.cluster, clone=False)
    yield db
    _drop_database(pg_target_db.cluster, db.name)


@pytest.mark.parametrize("pgcrypto", [False, True], ids=["builtin-hmac", "pgcrypto-hmac"])
def test_a_hot_standby_seeds_in_parallel_from_one_snapshot(
    pg_plain_db: PgDatabase,
    pg_target_db: PgDatabase,
    second_target: PgDatabase,
    tmp_path: Path,
    pgcrypto: bool,
) -> None:
    pg_plain_db.execute(SOURCE)
    pg_plain_db.execute("VACUUM ANALYZE accounts")  # pages and statistics for the plan
    if pgcrypto:
        pg_plain_db.execute("CREATE SCHEMA crypto; CREATE EXTENSION pgcrypto SCHEMA crypto")
    pg_plain_db.execute("CHECKPOINT")  # every commit written, so the standby replays it
    pg_plain_db.cluster.wait_replay()
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)

    transfers = Transfers(pg_plain_db.dsn)
    transfers.start()
    try:
        from_standby = seed(pg_plain_db.replica_dsn, pg_target_db, policy)
    finally:
        transfers.stop()
    assert from_standby.returncode == 0, from_standby.stderr
    assert transfers.count > 0
    progress = from_standby.stderr
    construction = "pgcrypto's crypto.hmac()" if pgcrypto else "the builtin construction"
    assert f"keyed transforms: HMAC-SHA256 by {construction}" in progress
    pieces = int(progress.split("data: 1 tables in ", 1)[1].split(" pieces", 1)[0])
    assert pieces >= 2, progress  # the table was copied in parallel ranges

    # Every piece saw the same instant of the standby: no transfer is half in the copy.
    assert totals(pg_target_db) == (ACCOUNTS, TOTAL)

    # The same policy and key, seeded from the primary itself: the same masked rows (balances
    # aside, which the transfers moved).
    from_primary = seed(pg_plain_db.dsn, second_target, policy)
    assert from_primary.returncode == 0, from_primary.stderr
    assert totals(second_target) == (ACCOUNTS, TOTAL)
    assert masked_rows(pg_target_db) == masked_rows(second_target)


def totals(db: PgDatabase) -> tuple[object, ...] | None:
    with db.connect() as conn:
        return conn.execute("SELECT count(*), sum(balance) FROM accounts").fetchone()


def masked_rows(db: PgDatabase) -> list[tuple[object, ...]]:
    with db.connect() as conn:
        return conn.execute(MASKED_ROWS).fetchall()
