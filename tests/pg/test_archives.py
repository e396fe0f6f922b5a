"""Archives in a real S3-compatible store (versitygw on loopback, ``fix_s3``): snapshot → list →
restore round trips, multipart uploads, tampered and truncated archives, interrupted uploads,
wrong credentials, retention.

The clone that is archived is a database marked as a completed pgparity seed (what ``snapshot``
checks); ``test_seed.py`` covers seeding itself, and a seed → snapshot → restore on a directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import obstore
import psycopg
import pytest

from fix_pg import PgDatabase, _drop_database, completed_seed
from fix_s3 import SECRET_KEY, S3Server
from pgparity.pg.clone import database_settings
from pgparity.pg.localcluster import LocalCluster
from pgparity.schema.digest import take_snapshot

PGPARITY = [sys.executable, "-m", "pgparity"]
BLOB_ROWS = 800  # × 16,000 random bytes: a data file of ~12.8 MB, three parts of 5 MiB

CLONE = f"""
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name_upper text GENERATED ALWAYS AS (upper(email)) STORED,
    born date
);
CREATE TABLE "Odd ""Names"" here" ("Mixed Col" int, "select" text);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    amount numeric(12, 2) NOT NULL,
    placed timestamptz NOT NULL DEFAULT '2026-01-01'
);
CREATE TABLE blobs (id int PRIMARY KEY, payload bytea NOT NULL);
CREATE TABLE empty_one (id int);
INSERT INTO customers (email, born)
SELECT 'person' || g || '@example.test', date '1970-01-01' + g FROM generate_series(1, 5000) g;
INSERT INTO "Odd ""Names"" here" SELECT g, 'row ' || g FROM generate_series(1, 50) g;
INSERT INTO orders (customer_id, amount)
SELECT 1 + g % 5000, g % 997 FROM generate_series(1, 20000) g;
INSERT INTO blobs
SELECT g, (SELECT decode(string_agg(md5(g::text || ':' || i::text), ''), 'hex')
           FROM generate_series(1, 1000) i)
FROM generate_series(1, {BLOB_ROWS}) g;
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE VIEW spend AS SELECT customer_id, sum(amount) AS total FROM orders GROUP BY customer_id;
SELECT setval('orders_id_seq', 123456);
ANALYZE;
"""
# Every table's rows, as one md5 per table (independent of the order they were loaded in).
CHECKSUMS = """
SELECT c.relname, (xpath('/row/c/text()', query_to_xml(format(
         'SELECT md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) AS c '
         'FROM %I.%I t', n.nspname, c.relname), false, true, '')))[1]::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = 'public' ORDER BY 1
"""


def pgparity(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PGPARITY, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The run failed with ``code`` and one error line, its last (progress lines may precede)."""
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("pgparity: error: ")]
    assert errors == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def checksums(db: PgDatabase) -> dict[str, str]:
    with db.connect() as conn:
        return {str(k): str(v) for k, v in conn.execute(CHECKSUMS.encode()).fetchall()}


def relations(db: PgDatabase) -> int:
    return int(
        str(
            db.scalar(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public'"
            )
        )
    )


def settings(db: PgDatabase) -> dict[str, str]:
    with db.connect() as conn:
        return database_settings(conn)


@pytest.fixture(scope="module")
def clone(pg_cluster: LocalCluster) -> Iterator[PgDatabase]:
    """A database holding what a seed leaves, marked as a completed seed."""
    digests = {"policy_sha256": "ab" * 32, "source_digest": "sha256:" + "cd" * 32}
    db = completed_seed(pg_cluster, CLONE, "archived", **digests)
    yield db
    _drop_database(pg_cluster, db.name)


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.bucket(f"archives-{os.getpid()}")


@pytest.fixture(scope="module")
def archive(s3_server: S3Server, clone: PgDatabase, bucket: str) -> str:
    """One archive taken with 5 MiB parts; tests that damage archives damage copies of it."""
    url = f"s3://{bucket}/base/first.pgparity"
    made = pgparity(
        "snapshot", "--dsn", clone.dsn, "--output", url, "--part-size", "5", "--jobs", "2",
        env=s3_server.environment(),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return url


def key_of(url: str) -> str:
    return url.split("/", 3)[3]


def copy_archive(server: S3Server, bucket: str, url: str, name: str) -> str:
    store = server.store(bucket)
    source = key_of(url)
    for batch in obstore.list(store, source + "/"):
        for meta in batch:
            obstore.copy(store, meta["path"], f"copies/{name}/{meta['path'][len(source) + 1 :]}")
    return f"s3://{bucket}/copies/{name}"


class TestRoundTrip:
    def test_snapshot_list_restore_latest(
        self, s3_server: S3Server, clone: PgDatabase, pg_plain_db: PgDatabase, bucket: str
    ) -> None:
        env = s3_server.environment()
        made = pgparity(
            "snapshot", "--dsn", clone.dsn, "--output", f"s3://{bucket}/nightly/",
            "--part-size", "5", env=env,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert "blobs" in made.stderr  # progress, table by table
        listed = pgparity(
            "archives", "list", f"s3://{bucket}/nightly/", "--format", "json", env=env
        )
        assert listed.returncode == 0, listed.stderr
        [entry] = json.loads(listed.stdout)
        assert entry["status"] == "complete"
        assert entry["name"].endswith(".pgparity")
        assert entry["rows"] == 5000 + 50 + 20000 + BLOB_ROWS
        assert entry["source_digest"] == "sha256:" + "cd" * 32
        assert entry["policy_sha256"] == "ab" * 32
        assert entry["bytes"] > BLOB_ROWS * 16000
        text = pgparity("archives", "list", f"s3://{bucket}/nightly", env=env)
        assert entry["name"] in text.stdout
        assert "complete" in text.stdout

        restored = pgparity(
            "restore", "--archive", f"s3://{bucket}/nightly/latest", "--target-dsn",
            pg_plain_db.dsn, "--jobs", "3", env=env,
        )  # fmt: skip
        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert entry["name"] in restored.stdout
        assert checksums(pg_plain_db) == checksums(clone)
        with clone.connect() as a, pg_plain_db.connect() as b:
            assert take_snapshot(a).digest == take_snapshot(b).digest
            assert b.execute("SELECT last_value FROM orders_id_seq").fetchone() == (123456,)
        assert settings(pg_plain_db)["seed_state"] == "complete"
        assert settings(pg_plain_db)["policy_sha256"] == "ab" * 32

    def test_multipart_upload_with_small_parts(
        self, s3_server: S3Server, archive: str, bucket: str
    ) -> None:
        """The blobs' data file (~12.8 MB, 5 MiB parts) went up in three parts: its ETag is an
        S3 multipart ETag, ``<md5 of the parts' md5s>-3``."""
        store = s3_server.store(bucket)
        manifest = json.loads(bytes(obstore.get(store, f"{key_of(archive)}/manifest.json").bytes()))
        [blobs] = [t for t in manifest["tables"] if t["name"] == "blobs"]
        head = obstore.head(store, f"{key_of(archive)}/{blobs['file']}")
        assert head["size"] > 12_000_000
        assert str(head["e_tag"]).strip('"').endswith("-3")

    def test_restore_replace_over_a_restored_clone(
        self, s3_server: S3Server, archive: str, clone: PgDatabase, pg_plain_db: PgDatabase
    ) -> None:
        env = s3_server.environment()
        first = pgparity("restore", "--archive", archive, "--target-dsn", pg_plain_db.dsn, env=env)
        assert first.returncode == 0, first.stderr
        again = pgparity("restore", "--archive", archive, "--target-dsn", pg_plain_db.dsn, env=env)
        one_error_line(again, 2, "not empty")
        replaced = pgparity(
            "restore", "--archive", archive, "--target-dsn", pg_plain_db.dsn, "--replace", env=env
        )
        assert replaced.returncode == 0, replaced.stderr
        assert checksums(pg_plain_db) == checksums(clone)


def flip_byte(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


class TestDamagedArchivesAreRefused:
    """A truncated or tampered archive: one line, exit 2, and nothing of it committed — the
    target holds no row of a file that did not match, and stays ``seed_state = incomplete``
    (or, when the schema or the manifest is wrong, is not touched at all)."""

    @pytest.mark.parametrize(
        ("damage", "untouched", "needle"),
        [
            ("flip-byte-in-data", False, "does not match the manifest"),
            ("flip-byte-in-gzip-header", False, "does not match the manifest"),
            ("truncate-data", True, "truncated or tampered"),
            ("append-to-data", True, "truncated or tampered"),
            ("delete-data", True, "is missing"),
            ("flip-byte-in-schema", True, "does not match the manifest"),
            ("manifest-sha-changed", False, "does not match the manifest"),
            ("manifest-path-escapes", True, "malformed file entry"),
            ("manifest-other-major", True, "taken from PostgreSQL 9"),
            ("manifest-not-json", True, "cannot be read"),
            ("manifest-removed", True, "has no manifest.json"),
        ],
    )
    def test_refused(
        self,
        s3_server: S3Server,
        bucket: str,
        archive: str,
        pg_plain_db: PgDatabase,
        damage: str,
        untouched: bool,
        needle: str,
    ) -> None:
        url = copy_archive(s3_server, bucket, archive, damage)
        store = s3_server.store(bucket)
        prefix = key_of(url)
        manifest = json.loads(bytes(obstore.get(store, f"{prefix}/manifest.json").bytes()))
        [blobs] = [t for t in manifest["tables"] if t["name"] == "blobs"]
        data_key = f"{prefix}/{blobs['file']}"
        data = bytes(obstore.get(store, data_key).bytes())
        if damage == "flip-byte-in-data":
            obstore.put(store, data_key, flip_byte(data, len(data) // 2))
        elif damage == "flip-byte-in-gzip-header":
            obstore.put(store, data_key, flip_byte(data, 0))
        elif damage == "truncate-data":
            obstore.put(store, data_key, data[: len(data) - 1000])
        elif damage == "append-to-data":
            obstore.put(store, data_key, data + b"\0" * 10)
        elif damage == "delete-data":
            obstore.delete(store, data_key)
        elif damage == "flip-byte-in-schema":
            schema = bytes(obstore.get(store, f"{prefix}/schema.dump").bytes())
            obstore.put(store, f"{prefix}/schema.dump", flip_byte(schema, len(schema) // 2))
        elif damage.startswith("manifest-"):
            for entry in manifest["files"]:
                if entry["path"] == blobs["file"] and damage == "manifest-sha-changed":
                    entry["sha256"] = "0" * 64
                if entry["path"] == blobs["file"] and damage == "manifest-path-escapes":
                    entry["path"] = "../base/first.pgparity/schema.dump"
            if damage == "manifest-other-major":
                manifest["server_major"] = 9
            body = json.dumps(manifest).encode()
            if damage == "manifest-not-json":
                body = body[:100]
            obstore.put(store, f"{prefix}/manifest.json", body)
            if damage == "manifest-removed":
                obstore.delete(store, f"{prefix}/manifest.json")
        result = pgparity(
            "restore", "--archive", url, "--target-dsn", pg_plain_db.dsn,
            env=s3_server.environment(),
        )  # fmt: skip
        one_error_line(result, 2, needle)
        if untouched:
            assert relations(pg_plain_db) == 0
            assert "seed_state" not in settings(pg_plain_db)
        else:
            assert settings(pg_plain_db)["seed_state"] == "incomplete"
            if relations(pg_plain_db):
                assert pg_plain_db.scalar("SELECT count(*) FROM blobs") == 0


class TestInterruptedSnapshot:
    """A snapshot killed mid-upload leaves no manifest: ``archives list`` shows the archive
    incomplete, ``latest`` never resolves to it, ``restore`` refuses it; one stopped by SIGTERM
    removes what it uploaded and exits 130."""

    def start(self, server: S3Server, clone: PgDatabase, url: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*PGPARITY, "snapshot", "--dsn", clone.dsn, "--output", url, "--jobs", "1",
             "--part-size", "5"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=server.environment(),
        )  # fmt: skip

    def wait_for_schema_upload(self, process: subprocess.Popen[str]) -> None:
        """The schema is uploaded and the data is being read: the largest table (blobs) first,
        ~12.8 MB of it still to stream."""
        assert process.stderr is not None
        for line in process.stderr:
            if "schema: schema.dump" in line:
                return
        pytest.fail(f"snapshot ended before its schema was uploaded ({process.wait()})")

    def test_killed(
        self, s3_server: S3Server, clone: PgDatabase, bucket: str, pg_plain_db: PgDatabase
    ) -> None:
        env = s3_server.environment()
        url = f"s3://{bucket}/killed/one.pgparity"
        process = self.start(s3_server, clone, url)
        self.wait_for_schema_upload(process)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        store = s3_server.store(bucket)
        keys = [m["path"] for batch in obstore.list(store, "killed/") for m in batch]
        assert "killed/one.pgparity/schema.dump" in keys
        assert "killed/one.pgparity/manifest.json" not in keys
        listed = pgparity("archives", "list", f"s3://{bucket}/killed/", "--format", "json", env=env)
        assert [(e["name"], e["status"]) for e in json.loads(listed.stdout)] == [
            ("one.pgparity", "incomplete")
        ]
        restore = pgparity("restore", "--archive", url, "--target-dsn", pg_plain_db.dsn, env=env)
        one_error_line(restore, 2, "has no manifest.json")
        latest = pgparity(
            "restore", "--archive", f"s3://{bucket}/killed/latest", "--target-dsn", pg_plain_db.dsn,
            env=env,
        )  # fmt: skip
        one_error_line(latest, 2, "no complete archive")
        assert relations(pg_plain_db) == 0

    def test_terminated_cleans_up(
        self, s3_server: S3Server, clone: PgDatabase, bucket: str
    ) -> None:
        process = self.start(s3_server, clone, f"s3://{bucket}/terminated/one.pgparity")
        self.wait_for_schema_upload(process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130
        store = s3_server.store(bucket)
        assert [m for batch in obstore.list(store, "terminated/") for m in batch] == []


def test_interrupted_restore_leaves_the_target_incomplete(
    s3_server: S3Server, archive: str, pg_plain_db: PgDatabase
) -> None:
    """SIGTERM once the tables exist and load: exit 130, each table loaded wholly (its file
    verified) or not at all, and the target marked ``seed_state = incomplete`` (validations
    refuse it) — never half restored."""
    process = subprocess.Popen(
        [*PGPARITY, "restore", "--archive", archive, "--target-dsn", pg_plain_db.dsn,
         "--jobs", "1", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=s3_server.environment(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while pg_plain_db.scalar("SELECT to_regclass('public.blobs')") is None:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the tables were never created"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert settings(pg_plain_db)["seed_state"] == "incomplete"
    assert pg_plain_db.scalar("SELECT count(*) FROM blobs") in (0, BLOB_ROWS)


class TestStoreFailures:
    """Unusable stores and locations: one line, the documented exit code, no secret."""

    def test_wrong_credentials(
        self, s3_server: S3Server, clone: PgDatabase, archive: str, bucket: str
    ) -> None:
        wrong = "wrong-secret-7d1e0c"
        env = s3_server.environment(AWS_SECRET_ACCESS_KEY=wrong)
        for args in (
            ["snapshot", "--dsn", clone.dsn, "--output", f"s3://{bucket}/wrong/"],
            ["restore", "--archive", archive, "--target-dsn", clone.dsn],
            ["archives", "list", f"s3://{bucket}/base/"],
            ["archives", "prune", f"s3://{bucket}/base/", "--keep", "1"],
        ):
            result = pgparity(*args, env=env)
            line = one_error_line(result, 4, f"bucket '{bucket}'", "refused the credentials")
            assert wrong not in result.stderr + result.stdout
            assert SECRET_KEY not in result.stderr + result.stdout
            assert len(line) < 300

    def test_missing_bucket(self, s3_server: S3Server, clone: PgDatabase) -> None:
        env = s3_server.environment()
        for args in (
            ["snapshot", "--dsn", clone.dsn, "--output", "s3://no-such-bucket/x/"],
            ["restore", "--archive", "s3://no-such-bucket/x", "--target-dsn", clone.dsn],
            ["archives", "list", "s3://no-such-bucket/"],
        ):
            one_error_line(pgparity(*args, env=env), 4, "bucket 'no-such-bucket' does not exist")

    def test_unreachable_endpoint(self, s3_server: S3Server, clone: PgDatabase) -> None:
        closed = s3_server.environment(AWS_ENDPOINT_URL="http://127.0.0.1:9")
        result = pgparity("archives", "list", "s3://some-bucket/", env=closed, timeout=200)
        one_error_line(result, 4, "cannot reach the store of bucket 'some-bucket'")

    @pytest.mark.parametrize(
        ("url", "needle"),
        [
            ("ftp://bucket/x", "unknown scheme"),
            ("s3:///orders/x", "without a bucket"),
            ("s3://Bad_Bucket/x", "not a valid s3:// bucket name"),
            ("s3://AKIAKEY:secret@bucket/x", "credentials or ports do not belong"),
            ("s3://bucket/../x", "'.' and '..'"),
            ("gs://bucket/x?sig=1", "no ?query"),
        ],
    )
    def test_bad_urls(self, s3_server: S3Server, clone: PgDatabase, url: str, needle: str) -> None:
        env = s3_server.environment()
        for args in (
            ["snapshot", "--dsn", clone.dsn, "--output", url],
            ["restore", "--archive", url, "--target-dsn", clone.dsn],
            ["archives", "list", url],
        ):
            result = pgparity(*args, env=env)
            one_error_line(result, 2, needle)
            assert "secret" not in result.stderr.replace("secret key", "")

    def test_snapshot_refuses_a_non_empty_archive(
        self, s3_server: S3Server, clone: PgDatabase, archive: str
    ) -> None:
        result = pgparity(
            "snapshot", "--dsn", clone.dsn, "--output", archive, env=s3_server.environment()
        )
        one_error_line(result, 2, "exists and is not empty")


class TestRetention:
    def test_keep_keeps_the_newest_complete_archives(
        self, s3_server: S3Server, clone: PgDatabase, bucket: str
    ) -> None:
        env = s3_server.environment()
        collection = f"s3://{bucket}/kept"
        store = s3_server.store(bucket)
        # A run that died long ago, and one that may still be writing (recent objects).
        obstore.put(store, "kept/dead.pgparity/schema.dump", b"x")
        obstore.put(store, "kept/writing.pgparity/schema.dump", b"x")
        dead = s3_server.root / bucket / "kept" / "dead.pgparity" / "schema.dump"
        old = (datetime.now(UTC) - timedelta(days=2)).timestamp()
        os.utime(dead, (old, old))  # the posix backend reports a file's mtime
        names = []
        for name in ("a.pgparity", "b.pgparity", "c.pgparity"):
            made = pgparity(
                "snapshot", "--dsn", clone.dsn, "--output", f"{collection}/{name}",
                *(["--keep", "2"] if name == "c.pgparity" else []), env=env,
            )  # fmt: skip
            assert made.returncode == 0, made.stderr
            names.append(name)
            time.sleep(0.01)  # distinct creation times (microseconds) even on a fast machine
        listed = pgparity("archives", "list", collection, "--format", "json", env=env)
        found = [(e["name"], e["status"]) for e in json.loads(listed.stdout)]
        assert found == [
            ("c.pgparity", "complete"),
            ("b.pgparity", "complete"),
            ("writing.pgparity", "incomplete"),
        ]
        pruned = pgparity("archives", "prune", collection, "--keep", "1", env=env)
        assert pruned.returncode == 0, pruned.stderr
        assert "removed s3://" in pruned.stdout
        listed = pgparity("archives", "list", collection, "--format", "json", env=env)
        assert [e["name"] for e in json.loads(listed.stdout)] == ["c.pgparity", "writing.pgparity"]


def test_local_directory_and_file_url_are_one_format(
    s3_server: S3Server, clone: PgDatabase, pg_plain_db: PgDatabase, tmp_path: Path
) -> None:
    env = s3_server.environment()
    made = pgparity("snapshot", "--dsn", clone.dsn, "--output", f"{tmp_path}/", env=env)
    assert made.returncode == 0, made.stderr
    [archive] = list(tmp_path.iterdir())
    assert (archive / "manifest.json").is_file()
    restored = pgparity(
        "restore",
        "--archive",
        f"file://{tmp_path}/latest",
        "--target-dsn",
        pg_plain_db.dsn,
        env=env,
    )
    assert restored.returncode == 0, restored.stderr
    assert checksums(pg_plain_db) == checksums(clone)
    with psycopg.connect(pg_plain_db.dsn) as conn:
        assert database_settings(conn)["seed_state"] == "complete"
