"""A hung API server or a hung database cannot hold the operator's threads for ever.

The "hung" servers here are real sockets that complete TCP handshakes (the kernel does that) and
never answer: what a stopped or overloaded server looks like from the client's side. Each call
must give up after its configured timeout with one clear error.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from fix_pg import PgDatabase
from pgparity.clonecheck import inspect_clone, sample_clone
from pgparity.errors import DatabaseError
from pgparity.kube import client as kube

pytestmark = pytest.mark.kube


@pytest.fixture
def silent_port() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)  # never accepted, never answered
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


@pytest.fixture
def hung_api(silent_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    server = {"server": f"https://127.0.0.1:{silent_port}", "insecure-skip-tls-verify": True}
    config = tmp_path / "kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": server}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(config))
    kube.configure(timeout=1.0, connections=2)
    yield
    kube.configure(timeout=10.0, connections=10)


class TestHungApiServer:
    def test_a_read_gives_up(self, hung_api: None) -> None:
        start = time.monotonic()
        with pytest.raises(kube.KubeError, match=r"cannot reach the API server.*timed out"):
            kube.get("v1", "Secret", "anything", "default")
        assert time.monotonic() - start < 5  # one timeout, no hidden retries

    def test_a_write_gives_up(self, hung_api: None) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "d"},
        }
        start = time.monotonic()
        with pytest.raises(kube.KubeError, match="timed out"):
            kube.create_missing(body)
        assert time.monotonic() - start < 5


class TestHungDatabase:
    def test_a_clone_check_reports_unreachable(self, silent_port: int) -> None:
        dsn = f"host=127.0.0.1 port={silent_port} dbname=x user=x"
        start = time.monotonic()
        health = inspect_clone(dsn, dsn, timeout=2)
        assert time.monotonic() - start < 6
        assert not health.reachable
        assert health.reason == "Unreachable"
        assert "timeout expired" in health.message

    def test_a_sample_gives_up(self, silent_port: int) -> None:
        dsn = f"host=127.0.0.1 port={silent_port} dbname=x user=x password=secret-pw"
        start = time.monotonic()
        with pytest.raises(DatabaseError, match="timeout expired") as caught:
            sample_clone(dsn, timeout=2)
        assert time.monotonic() - start < 6
        assert "secret-pw" not in str(caught.value)


class TestBusyClone:
    """A migration holding locks makes reading the catalog wait: busy is not broken."""

    def test_a_locked_catalog_keeps_the_clone_ready(self, pg_db: PgDatabase) -> None:
        pg_db.execute("CREATE TABLE accounts (id int PRIMARY KEY, note text)")
        pg_db.execute("CREATE INDEX ON accounts (note)")
        pg_db.cluster.wait_replay()
        free = inspect_clone(pg_db.dsn, pg_db.replica_dsn, timeout=2)
        assert free.ready
        assert free.digest is not None
        with pg_db.connect() as holder:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
            start = time.monotonic()
            busy = inspect_clone(pg_db.dsn, pg_db.replica_dsn, timeout=2)
            assert time.monotonic() - start < 6
            sample = sample_clone(pg_db.dsn, timeout=2)  # the live numbers still come
            holder.execute("ROLLBACK")
        assert busy.ready
        assert busy.digest is None  # the status keeps the last digest it knew
        assert sample.waiting_sessions == 0
