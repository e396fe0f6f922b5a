"""Each transform's cost per row on the source: the CPU its masked ``COPY … TO STDOUT`` adds.

One table of ``--rows`` rows (default 200,000) whose columns are unique values of each kind (the
worst case: PostgreSQL's Memoize, which computes a per-value transform once per distinct value,
saves nothing) and one date column with 25,000 distinct values (as birth dates repeat). For each
transform and HMAC construction, the table is copied with only that column masked, ``--rounds``
times; the server backend's CPU (``/proc/<pid>/stat``) minus that of copying the column as it is
(``keep``), divided by the rows, is the transform's cost. Printed as a Markdown table (µs/row,
median over the rounds) for the README.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pgparity.models.policy import ColumnRule
from pgparity.pg.localcluster import LocalCluster
from pgparity.seed.catalog import TableInfo, read_catalog
from pgparity.seed.mac import BUILTIN, Mac, choose_mac
from pgparity.seed.plan import masked_select

KEY = b"profile-masking-key-0123456789ab"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TABLE = """
CREATE SCHEMA crypto;
CREATE EXTENSION pgcrypto SCHEMA crypto;
CREATE TABLE people (
    id int8 PRIMARY KEY, email text, full_name text, phone text, token text, birth date,
    seen timestamptz, amount numeric(12, 2), score int4, ref int8, doc jsonb);
INSERT INTO people
SELECT g, 'user' || g || '@mail.example', 'First' || g || ' Last' || (g % 997),
       '+1 555 ' || lpad(g::text, 7, '0'), md5(g::text), date '1950-01-01' + g % 25000,
       timestamptz '2020-01-01' + g * interval '1 minute', g * 1.25, g, g * 7919,
       jsonb_build_object('name', 'n' || g, 'age', g % 90, 'ok', true)
FROM generate_series(1, {rows}) g;
"""
# (label, column, rule): every transform at its usual parameters.
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("hash", "token", {"transform": "hash"}),
    ("hash (length 32)", "token", {"transform": "hash", "length": 32}),
    ("hash_int", "ref", {"transform": "hash_int"}),
    ("uuid", "token", {"transform": "uuid"}),
    ("email", "email", {"transform": "email"}),
    ("email (unique)", "email", {"transform": "email", "unique": True}),
    ("name", "full_name", {"transform": "name"}),
    ("phone", "phone", {"transform": "phone"}),
    ("noise (int4)", "score", {"transform": "noise", "percent": 5}),
    ("noise (numeric)", "amount", {"transform": "noise", "percent": 5}),
    ("date_shift (unique timestamps)", "seen", {"transform": "date_shift", "days": 30}),
    ("date_shift (25,000 distinct dates)", "birth", {"transform": "date_shift", "days": 30}),
    ("permute (int8)", "ref", {"transform": "permute"}),
    ("jsonb_mask (3 leaves)", "doc", {"transform": "jsonb_mask"}),
    ("partial", "phone", {"transform": "partial", "first": 2, "last": 2}),
    ("fill", "full_name", {"transform": "fill"}),
    ("date_trunc", "seen", {"transform": "date_trunc", "unit": "month"}),
    ("constant", "email", {"transform": "constant", "value": "x"}),
    ("null", "email", {"transform": "null"}),
]


def backend_cpu(conn: psycopg.Connection[Any]) -> float:
    stat = Path(f"/proc/{conn.info.backend_pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def copy_seconds(
    conn: psycopg.Connection[Any], table: TableInfo, column: str, rule: dict[str, Any], mac: Mac
) -> float:
    """Backend CPU seconds of copying ``table`` with ``column`` masked by ``rule``."""
    params = {k: v for k, v in rule.items() if k != "transform"}
    rules = {
        c.name: ColumnRule(rule["transform"], params) if c.name == column else ColumnRule("keep")
        for c in table.copied_columns
    }
    query = sql.SQL("COPY ({}) TO STDOUT").format(masked_select(table, rules, mac=mac))
    before = backend_cpu(conn)
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        for _ in copy:
            pass
    return backend_cpu(conn) - before


def profile(dsn: str, mac: Mac, rows: int, rounds: int) -> dict[str, float]:
    """µs per row that each case adds to a keep-everything copy, median over ``rounds``."""
    with psycopg.connect(dsn, autocommit=True, options=mac.session_options(KEY)) as conn:
        table = read_catalog(conn).tables["public.people"]
        costs: dict[str, list[float]] = {label: [] for label, _, _ in CASES}
        for _ in range(rounds):
            for label, column, rule in CASES:
                keep = copy_seconds(conn, table, column, {"transform": "keep"}, mac)
                masked = copy_seconds(conn, table, column, rule, mac)
                costs[label].append((masked - keep) / rows * 1e6)
    return {label: statistics.median(values) for label, values in costs.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with (
        LocalCluster(durable=False, replicas=0) as cluster,
        psycopg.connect(cluster.primary_dsn, autocommit=True) as conn,
    ):
        conn.execute(TABLE.format(rows=args.rows).encode())
        conn.execute("VACUUM (FREEZE, ANALYZE) people")
        print(f"profiling {len(CASES)} transforms over {args.rows:,} rows", file=sys.stderr)
        builtin = profile(cluster.primary_dsn, BUILTIN, args.rows, args.rounds)
        pgcrypto = profile(cluster.primary_dsn, choose_mac(conn, KEY), args.rows, args.rounds)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(
        f"\nµs of source CPU per row, over keep ({args.rows:,} rows, median of "
        f"{args.rounds}; load average {load})\n"
    )
    print("| transform | builtin HMAC | pgcrypto hmac() |")
    print("|---|---:|---:|")
    for label, _, _ in CASES:
        print(f"| {label} | {builtin[label]:.2f} | {pgcrypto[label]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
