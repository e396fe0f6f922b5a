"""What the handlers share: settings, time, blocking calls off the event loop, status patches.

Every handler is a coroutine. Blocking work — PostgreSQL checks through psycopg, Kubernetes
requests through the synchronous client — runs in bounded pools of its own (one for each, of
``PGPARITY_MAX_WORKERS`` threads) under two limits: the call's own timeout (libpq's
``connect_timeout`` and ``statement_timeout``, the client's ``_request_timeout``), which frees
the thread, and a deadline here, which frees the handler even if the thread is still stuck.
No handler or daemon holds a thread while it waits for anything.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar, cast

import kopf

from pgparity import config
from pgparity.errors import CallTimeoutError
from pgparity.handlers.indexes import Views
from pgparity.kube import client as kube
from pgparity.manifests.failures import Recovery, plan_failure
from pgparity.manifests.queue import StartedJob
from pgparity.models.common import API_VERSION
from pgparity.redaction import Context, sanitize, sanitize_strings

_P = ParamSpec("_P")
_T = TypeVar("_T")

# A call may make several round trips (discovery, then the request; a check runs several
# statements), each bounded by its own timeout: the handler waits this many of them.
ROUND_TRIPS = 4


@dataclass
class _Process:
    """The operator's options (PGPARITY_*) and thread pools, set when it starts.

    Read at start-up, not at import: the same process may import the handlers long before it
    runs the operator (tests, the CLI's own validation), or run it twice. Two pools, so that
    hung databases can never delay the API calls of every other object.
    """

    options: config.Settings = field(default_factory=config.Settings)
    api_pool: ThreadPoolExecutor | None = None
    database_pool: ThreadPoolExecutor | None = None
    # The database calls still running in a thread, by what they are about (a clone's check):
    # one that outlived its deadline is not started again until its thread is free.
    in_flight: dict[Hashable, Future[Any]] = field(default_factory=dict)


_process = _Process()


def start_process(options: config.Settings) -> None:
    """Adopt ``options`` and make the thread pools for blocking calls."""
    stop_process()
    _process.options = options
    _process.api_pool = ThreadPoolExecutor(options.max_workers, thread_name_prefix="pgparity-api")
    _process.database_pool = ThreadPoolExecutor(
        options.max_workers, thread_name_prefix="pgparity-db"
    )


def stop_process() -> None:
    """Let the pools' threads end (a stuck one ends when its call's own timeout fires)."""
    for pool in (_process.api_pool, _process.database_pool):
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    _process.api_pool = _process.database_pool = None


def options() -> config.Settings:
    """The operator's PGPARITY_* options, as read when it started."""
    return _process.options


def _pool(pool: ThreadPoolExecutor | None) -> ThreadPoolExecutor:
    if pool is None:
        raise RuntimeError("the operator has not started: no pools for blocking calls")
    return pool


class Wakes:
    """One flag per object: set by watch events that concern it, awaited by its daemon.

    Setting a flag that is already set is free, so a burst of events costs one reconciliation.
    """

    def __init__(self) -> None:
        self._flags: dict[tuple[str, str, str], asyncio.Event] = {}

    def register(self, kind: str, namespace: str, name: str) -> asyncio.Event:
        return self._flags.setdefault((kind, namespace, name), asyncio.Event())

    def forget(self, kind: str, namespace: str, name: str) -> None:
        self._flags.pop((kind, namespace, name), None)

    def wake(self, kind: str, namespace: str, name: str) -> None:
        flag = self._flags.get((kind, namespace, name))
        if flag is not None:
            flag.set()


async def sleep_until_woken(flag: asyncio.Event, seconds: float) -> None:
    """Return when ``flag`` is set or after ``seconds`` (the resync), and lower the flag.

    A deleted object's daemon is cancelled by kopf (``cancellation_timeout``) while it sleeps.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(flag.wait(), seconds)
    flag.clear()


@dataclass
class Runtime:
    """What one run of the operator shares between handlers, made at start-up.

    asyncio's locks belong to the event loop that first waits on them, and a process may run
    the operator more than once (the tests do): kopf's operator-wide memo carries them, and
    the indexes, which kopf hands to operator-level handlers only by name.
    """

    views: Views
    sampling: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(options().sampler_concurrency)
    )
    admission: asyncio.Lock = field(default_factory=asyncio.Lock)
    wakes: Wakes = field(default_factory=Wakes)
    # Validations whose Job this process created and the Job index may not show yet, by
    # (namespace, validation).
    started: dict[tuple[str, str], StartedJob] = field(default_factory=dict)
    queue_changed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)  # the queue keeper, the sampler


def runtime(memo: Any) -> Runtime:
    """The Runtime in kopf's memo (``configure`` puts it there before any handler runs)."""
    return cast(Runtime, memo.runtime)


async def _off_loop(
    pool: ThreadPoolExecutor,
    what: str,
    seconds: float,
    fn: Callable[_P, _T],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _T:
    """``fn(*args, **kwargs)`` in ``pool``; CallTimeoutError after ``seconds``."""
    return await _wait(pool.submit(fn, *args, **kwargs), what, seconds)


async def _wait(running: Future[_T], what: str, seconds: float) -> _T:
    try:
        return await asyncio.wait_for(asyncio.wrap_future(running), seconds)
    except TimeoutError as exc:
        raise CallTimeoutError(f"{what} did not finish within {seconds:g} s") from exc


async def api(fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """A ``pgparity.kube`` call off the event loop, within its deadline."""
    seconds = options().api_timeout_seconds * ROUND_TRIPS
    what = f"the Kubernetes API call {fn.__name__}"
    return await _off_loop(_pool(_process.api_pool), what, seconds, fn, *args, **kwargs)


async def database(what: str, about: Hashable, fn: Callable[..., _T], *args: Any) -> _T:
    """A PostgreSQL check off the event loop: ``fn(*args, timeout=…)``, within its deadline.

    ``fn`` bounds each connection attempt and statement by the timeout it is given
    (``PGPARITY_CHECK_TIMEOUT_SECONDS``); the deadline here is a few of those. A server that
    stops answering in the middle of a statement (its process stopped, its kernel still
    acknowledging) can hold the thread beyond both: while a call ``about`` the same thing is
    still running, none is started, so such a server holds one thread, not one per attempt.
    """
    seconds = options().check_timeout_seconds
    earlier = _process.in_flight.get(about)
    if earlier is not None and not earlier.done():
        raise CallTimeoutError(f"{what}: the previous one has not finished yet")
    pool = _pool(_process.database_pool)
    running = pool.submit(fn, *args, timeout=seconds)
    _process.in_flight[about] = running
    running.add_done_callback(lambda done: _forget_call(about, done))
    return await _wait(running, what, seconds * ROUND_TRIPS)


def _forget_call(about: Hashable, done: Future[Any]) -> None:
    # Runs in the pool's thread: dict operations are atomic under the GIL.
    if _process.in_flight.get(about) is done:
        del _process.in_flight[about]


def handler_error(error: Exception) -> kopf.TemporaryError | kopf.PermanentError:
    """The error boundary of every handler: kopf's temporary error (with its delay) or
    permanent one, as ``manifests.failures`` decides; the message is sanitized."""
    plan = plan_failure(error, options().reconcile_seconds)
    message = sanitize(str(error))
    if plan.recovery is Recovery.GIVE_UP:
        return kopf.PermanentError(message)
    return kopf.TemporaryError(message, delay=plan.delay_seconds)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def status_changes(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns status ``current`` into ``new`` (None deletes a field).

    Status quotes messages of Jobs and databases and the migration's SQL: sanitized first."""
    new = sanitize_strings(new, Context.DOCUMENT)
    return {
        k: new.get(k)
        for k in set(current) | set(new)
        if k != "kopf" and current.get(k) != new.get(k)
    }


class StatusWriter:
    """Writes one object's status through the status subresource, and remembers what it wrote.

    A daemon's body is kopf's live view, which shows our own patch only when its watch event
    arrives. A reconciliation in between — another event woke the daemon — would compute the
    same change from the old status, write it again and announce it twice. So until the body
    moves past the resourceVersion it had when we wrote, the written fields count as current.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._written: tuple[str, dict[str, Any]] | None = None

    def current(self, body: kopf.Body) -> dict[str, Any]:
        status = {k: v for k, v in (body.get("status") or {}).items() if k != "kopf"}
        version = body.get("metadata", {}).get("resourceVersion")
        if self._written is None or self._written[0] != version:
            self._written = None
            return status
        merged = {**status, **self._written[1]}
        return {k: v for k, v in merged.items() if v is not None}

    async def write(
        self, body: kopf.Body, current: Mapping[str, Any], new: Mapping[str, Any]
    ) -> bool:
        """Patch the status from ``current`` to ``new``; whether anything changed."""
        changes = status_changes(current, new)
        if not changes:
            return False
        meta = body.get("metadata", {})
        await api(
            kube.patch_merge,
            API_VERSION,
            self.kind,
            meta["name"],
            meta["namespace"],
            {"status": changes},
            status=True,
        )
        self._written = (meta.get("resourceVersion"), changes)
        return True


def announce(
    body: Any,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    warning: bool = False,
) -> None:
    """An Event for a transition: the phase, the verdict or the reason changed."""
    if (old.get("phase"), old.get("verdict"), old.get("message")) == (
        new.get("phase"),
        new.get("verdict"),
        new.get("message"),
    ):
        return
    kopf.event(
        body, type="Warning" if warning else "Normal", reason=reason, message=sanitize(message)
    )
