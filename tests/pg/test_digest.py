"""The schema digest: canonical across servers, creation orders and dump/restore."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from fix_pg import PgDatabase
from pgparity.pg.localcluster import LocalCluster
from pgparity.schema.digest import CatalogSnapshot, ChangeKind, diff_snapshots, take_snapshot

TYPES = """
CREATE EXTENSION IF NOT EXISTS citext;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
"""
CUSTOMERS = """
CREATE TABLE customers (id bigserial PRIMARY KEY, email citext UNIQUE NOT NULL,
                        name text COLLATE "C", mood mood DEFAULT 'ok');
"""
ORDERS = """
CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer_id bigint REFERENCES customers (id),
                     quantity positive, total numeric(12, 2) CHECK (total >= 0));
CREATE INDEX orders_customer_idx ON orders (customer_id) WHERE quantity > 1;
"""
REST = """
CREATE VIEW big_orders AS SELECT * FROM orders WHERE total > 100;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.total := coalesce(NEW.total, 0); RETURN NEW; END $$;
CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TABLE events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON customers USING (name = current_user);
CREATE SCHEMA reporting;
CREATE MATERIALIZED VIEW reporting.totals AS SELECT customer_id, sum(total) FROM orders GROUP BY 1;
"""


@pytest.fixture(scope="module")
def second_server() -> Iterator[LocalCluster]:
    with LocalCluster(durable=False, replicas=0) as cluster:
        yield cluster


def _snapshot(dsn: str) -> CatalogSnapshot:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return take_snapshot(conn)


def test_same_schema_same_digest_across_servers_and_creation_orders(
    pg_db: PgDatabase, second_server: LocalCluster
) -> None:
    pg_db.execute(TYPES + CUSTOMERS + ORDERS + REST)
    with psycopg.connect(second_server.primary_dsn, autocommit=True) as conn:
        # Other order, throwaway objects created and dropped (other OIDs), and a dropped
        # column that leaves a hole in attnum.
        conn.execute(b"CREATE TABLE scratch (a int); DROP TABLE scratch;")
        conn.execute(TYPES.encode())
        conn.execute(b"CREATE SCHEMA reporting;")
        conn.execute(
            CUSTOMERS.replace("mood mood DEFAULT 'ok'", "gone int, mood mood DEFAULT 'ok'").encode()
        )
        conn.execute(b"ALTER TABLE customers DROP COLUMN gone;")
        conn.execute(ORDERS.encode())
        conn.execute(REST.replace("CREATE SCHEMA reporting;", "").encode())
    first, second = _snapshot(pg_db.dsn), _snapshot(second_server.primary_dsn)
    assert diff_snapshots(first, second) == []
    assert first.digest == second.digest
    assert first.digest.startswith("sha256:")
    assert len(first.digest) == 71
    for kind in (
        "table",
        "index",
        "constraint",
        "sequence",
        "view",
        "materialized-view",
        "function",
        "trigger",
        "extension",
        "enum",
        "domain",
        "policy",
        "schema",
    ):
        assert any(key.startswith(kind + ":") for key in first.objects), kind


def test_digest_survives_dump_and_restore(pg_db: PgDatabase, pg_plain_db: PgDatabase) -> None:
    pg_db.execute(TYPES + CUSTOMERS + ORDERS + REST)
    bindir = pg_db.cluster.bindir
    assert bindir is not None
    dump = subprocess.run(
        [str(bindir / "pg_dump"), "--schema-only", "--no-owner", "-d", pg_db.dsn],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subprocess.run(
        [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg_plain_db.dsn],
        input=dump,
        capture_output=True,
        text=True,
        check=True,
    )
    assert _snapshot(pg_db.dsn).digest == _snapshot(pg_plain_db.dsn).digest


def test_every_kind_of_change_changes_the_digest(pg_db: PgDatabase) -> None:
    pg_db.execute(TYPES + CUSTOMERS + ORDERS)
    baseline = _snapshot(pg_db.dsn)
    changes = [
        ("ALTER TABLE orders ALTER COLUMN total SET DEFAULT 0", "table:public.orders"),
        (
            "ALTER TABLE customers ALTER COLUMN name DROP NOT NULL; "
            "ALTER TABLE customers ALTER COLUMN name SET NOT NULL",
            "table:public.customers",
        ),
        ("CREATE INDEX orders_total_idx ON orders (total)", "index:public.orders_total_idx"),
        ("ALTER TYPE mood ADD VALUE 'ecstatic'", "enum:public.mood"),
        (
            'ALTER TABLE customers ALTER COLUMN name TYPE text COLLATE "POSIX"',
            "table:public.customers",
        ),
    ]
    for statement, key in changes:
        pg_db.execute(statement)
        current = _snapshot(pg_db.dsn)
        changed = {c.key for c in diff_snapshots(baseline, current)}
        assert key in changed, statement
        baseline = current
    pg_db.execute("ALTER TABLE orders ADD CONSTRAINT small CHECK (total < 1000) NOT VALID")
    diff = diff_snapshots(baseline, _snapshot(pg_db.dsn))
    assert [(c.key, c.kind) for c in diff] == [("constraint:public.orders.small", ChangeKind.ADDED)]


def test_snapshot_save_and_load_round_trip(pg_db: PgDatabase, tmp_path) -> None:
    pg_db.execute(TYPES + CUSTOMERS)
    snapshot = _snapshot(pg_db.dsn)
    path = tmp_path / "baseline.json"
    snapshot.save(path)
    loaded = CatalogSnapshot.load(path)
    assert loaded.digest == snapshot.digest
    assert loaded.objects == snapshot.objects
