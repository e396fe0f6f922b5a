"""pytest fixtures for a real S3-compatible server: versitygw (Apache-2.0) with its posix backend,
built from its Go module by ``scripts/s3-assets.sh`` (``make s3-assets``), on a free loopback
port (or another local address: ``running_s3_server(host)``), with static credentials, its
buckets directories in a temporary directory.

* ``s3_server`` (session): the running server — ``.endpoint``, ``.environment()`` (the
  ``AWS_*`` variables a client needs), ``.bucket(name)`` (a new, empty bucket), ``.store(bucket)``
  (an obstore client, for tests that look at or damage objects behind pgparity's back);
* ``s3_bucket`` (function): a fresh bucket's name.

The credentials reach the server in its environment, never in its argv; it is stopped by the
PID this fixture recorded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from obstore.store import S3Store

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "pgparity-test-access"
SECRET_KEY = "pgparity-test-secret-0f3c9a1e7b"  # static, for a loopback-only test server
REGION = "us-east-1"


def versitygw_binary() -> Path:
    """``$PGPARITY_VERSITYGW``, else the cached build (built now if missing: minutes)."""
    given = os.environ.get("PGPARITY_VERSITYGW")
    if given:
        return Path(given)
    built = subprocess.run(
        [str(ROOT / "scripts" / "s3-assets.sh")], capture_output=True, text=True, check=False
    )
    if built.returncode != 0:
        pytest.fail(f"cannot build versitygw (make s3-assets): {built.stderr[-2000:]}")
    return Path(built.stdout.strip().splitlines()[-1])


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    root: Path
    port: int
    log: Path
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self, **overrides: str) -> dict[str, str]:
        """The process environment with this server's credentials and endpoint (and no
        other store's)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGPARITY_"))}
        env |= {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
        }
        return env | overrides

    def store(self, bucket: str) -> S3Store:
        return S3Store(
            bucket,
            config={
                "endpoint": self.endpoint,
                "access_key_id": ACCESS_KEY,
                "secret_access_key": SECRET_KEY,
                "region": REGION,
            },
            client_options={"allow_http": True},
        )

    def bucket(self, name: str) -> str:
        # The posix backend's buckets are the root's directories.
        (self.root / name).mkdir()
        return name

    def start(self) -> None:
        binary = versitygw_binary()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ROOT_ACCESS_KEY": ACCESS_KEY,
            "ROOT_SECRET_KEY": SECRET_KEY,
        }
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(binary), "--port", f"{self.host}:{self.port}", "--quiet", "posix",
                 str(self.root)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        self._wait_until_listening()

    def _wait_until_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"versitygw exited: {self.log.read_text()[-2000:]}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"versitygw did not listen on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextmanager
def running_s3_server(host: str = "127.0.0.1") -> Iterator[S3Server]:
    """versitygw listening on ``host`` (an address of this machine, or of the network namespace
    the tests run in) until the block ends."""
    workdir = Path(tempfile.mkdtemp(prefix="pgparity-s3-"))
    (workdir / "buckets").mkdir()
    server = S3Server(workdir / "buckets", _free_port(host), workdir / "versitygw.log", host)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.bucket(f"test-{uuid.uuid4().hex[:12]}")
