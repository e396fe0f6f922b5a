"""The handlers hold no thread while they wait, and make no blocking call on the event loop.

Issue 11: a synchronous kopf daemon per clone held an executor thread for the clone's life, and
twenty clones starved every other handler. These tests read the handlers' source and kopf's
registry, so a synchronous handler or a direct blocking call cannot come back unnoticed.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import kopf
import pytest

import pgparity.handlers
from pgparity import config
from pgparity.errors import CallTimeoutError
from pgparity.handlers.common import (
    StatusWriter,
    _off_loop,
    database,
    start_process,
    stop_process,
)

HANDLERS = Path(pgparity.handlers.__file__).parent
# Called directly, each of these blocks the event loop: they belong inside api() / off_loop().
BLOCKING_NAMES = {"read_report", "write_report", "inspect_clone", "sample_clone", "connect"}
BLOCKING_MODULES = {"kube", "psycopg", "time", "subprocess", "requests", "urllib"}


def _handler_modules() -> list[Path]:
    return sorted(HANDLERS.glob("*.py"))


def _is_kopf_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    while isinstance(target, ast.Attribute):
        target = target.value
    return isinstance(target, ast.Name) and target.id == "kopf"


def _blocking_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in BLOCKING_NAMES:
            found.append(f"{func.id}() at line {node.lineno}")
        if (
            isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Name)
            and func.value.id in BLOCKING_MODULES
        ):
            found.append(f"{func.value.id}.{func.attr}() at line {node.lineno}")
    return found


@pytest.mark.parametrize("path", _handler_modules(), ids=lambda p: p.name)
def test_every_kopf_handler_is_a_coroutine(path: Path) -> None:
    tree = ast.parse(path.read_text())
    synchronous = [
        f"{node.name} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and any(map(_is_kopf_decorator, node.decorator_list))
    ]
    assert synchronous == [], f"synchronous kopf handlers hold an executor thread: {synchronous}"


@pytest.mark.parametrize("path", _handler_modules(), ids=lambda p: p.name)
def test_no_blocking_call_on_the_event_loop(path: Path) -> None:
    assert _blocking_calls(ast.parse(path.read_text())) == []


def test_kopf_registry_holds_only_coroutines() -> None:
    registry = kopf.get_default_registry()
    handlers = [
        handler
        for group in (
            registry._activities,
            registry._indexing,
            registry._watching,
            registry._spawning,
            registry._changing,
        )
        for handler in group.get_all_handlers()
        if handler.fn.__module__.startswith("pgparity.")  # not kopf's own login handlers
    ]
    assert len(handlers) >= 10
    sync = [h.id for h in handlers if not inspect.iscoroutinefunction(h.fn)]
    assert sync == []
    daemons = [h.id for h in registry._spawning.get_all_handlers()]
    assert not any("monitor" in d for d in daemons)  # the per-clone sampler is a single loop


def test_the_detector_finds_what_it_forbids() -> None:
    source = """
@kopf.daemon("x")
def sync_daemon(**_): pass

@kopf.timer("x", interval=1)
async def fine(**_):
    kube.get("v1", "Secret", "s", "ns")
    inspect_clone("dsn", None)
    await api(kube.get, "v1", "Secret", "s", "ns")
    time.sleep(1)
"""
    tree = ast.parse(source)
    decorated = [
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and any(map(_is_kopf_decorator, n.decorator_list))
    ]
    assert decorated == ["sync_daemon"]
    assert _blocking_calls(tree) == [
        "kube.get() at line 7",
        "inspect_clone() at line 8",
        "time.sleep() at line 10",
    ]


class TestStatusWriter:
    """Our own patch counts as current until the watch brings the object back."""

    def body(self, version: str, status: dict[str, object]) -> kopf.Body:
        raw = {"metadata": {"name": "v", "namespace": "ns", "resourceVersion": version}}
        return kopf.Body(cast(kopf.RawBody, {**raw, "status": status}))

    def test_the_live_status_without_a_write(self) -> None:
        writer = StatusWriter("MigrationValidation")
        assert writer.current(self.body("1", {"phase": "Pending", "kopf": {}})) == {
            "phase": "Pending"
        }

    def test_written_fields_count_until_the_body_moves_on(self) -> None:
        writer = StatusWriter("MigrationValidation")
        writer._written = ("1", {"phase": "Running", "queuePosition": None})
        stale = self.body("1", {"phase": "Pending", "queuePosition": 2})
        assert writer.current(stale) == {"phase": "Running"}
        fresh = self.body("2", {"phase": "Running"})
        assert writer.current(fresh) == {"phase": "Running"}
        assert writer._written is None
        assert writer.current(self.body("1", {"phase": "Pending"})) == {"phase": "Pending"}


def test_a_stuck_call_frees_the_handler_at_its_deadline() -> None:
    release = threading.Event()
    pool = ThreadPoolExecutor(1)

    async def handler() -> float:
        start = time.monotonic()
        with pytest.raises(CallTimeoutError, match=r"the stuck call did not finish within 0\.2 s"):
            await _off_loop(pool, "the stuck call", 0.2, release.wait, 30)
        return time.monotonic() - start

    try:
        assert asyncio.run(handler()) < 2
    finally:
        release.set()  # the thread itself ends when the call's own timeout fires
        pool.shutdown(wait=True)


def test_a_hung_database_holds_one_thread_not_one_per_attempt() -> None:
    release = threading.Event()
    calls: list[str] = []

    def check(dsn: str, *, timeout: float) -> str:
        calls.append(dsn)
        release.wait(30)  # a server that stopped answering in the middle of a statement
        return "checked"

    async def attempts() -> str:
        with pytest.raises(CallTimeoutError, match="did not finish"):
            await database("the check", ("check", "ns", "c"), check, "first")
        with pytest.raises(CallTimeoutError, match="the previous one has not finished"):
            await database("the check", ("check", "ns", "c"), check, "second")
        other = asyncio.create_task(database("the check", ("check", "ns", "d"), check, "other"))
        await asyncio.sleep(0.05)
        release.set()
        assert await other == "checked"
        for _ in range(100):  # the first call's thread comes free once its call returns
            try:
                return await database("the check", ("check", "ns", "c"), check, "third")
            except CallTimeoutError:
                await asyncio.sleep(0.02)
        raise AssertionError("the clone was never checked again")

    start_process(config.Settings(check_timeout_seconds=0.05, max_workers=2))
    try:
        assert asyncio.run(attempts()) == "checked"
    finally:
        release.set()
        stop_process()
    assert calls == ["first", "other", "third"]
