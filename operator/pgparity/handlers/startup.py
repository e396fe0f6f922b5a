"""Operator start-up: the PGPARITY_* options and the pools for blocking calls, kopf settings
under pgparity.io, watch timeouts, the metrics endpoint, the shared runtime, the queue keeper and
the clone sampler; and their clean-up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from typing import Any

import kopf

from pgparity import config, metrics
from pgparity.handlers.common import Runtime, runtime, start_process, stop_process
from pgparity.handlers.indexes import Views
from pgparity.handlers.queue import keep_queue
from pgparity.handlers.sampler import sample_clones
from pgparity.kube.client import configure as configure_api_client
from pgparity.kube.client import follow_kubeconfig_variable
from pgparity.redaction import install_log_redaction

_metrics_started = threading.Event()


@kopf.on.startup()
async def configure(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **kwargs: Any,
) -> None:
    install_log_redaction()  # also under `kopf run -m pgparity.handlers`, not only the CLI
    options = config.load()  # PGPARITY_* as they are now (the CLI checked them already)
    start_process(options)
    settings.persistence.finalizer = "pgparity.io/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="pgparity.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="pgparity.io", key="last-handled-configuration"
    )
    # Watches that go silent are a known kopf failure mode: make the server end them early
    # and the client give up on a stream that says nothing (nolar/kopf#810).
    settings.watching.server_timeout = 60
    settings.watching.client_timeout = 90
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.INFO
    # Every handler is a coroutine: kopf's executor runs nothing of ours. Blocking calls go
    # to handlers.common's own pools of this size, each call with a timeout.
    settings.execution.max_workers = options.max_workers
    configure_api_client(timeout=options.api_timeout_seconds, connections=options.max_workers)
    shared = memo.runtime = Runtime(Views.of(kwargs))
    shared.tasks = [
        asyncio.create_task(keep_queue(shared), name="pgparity validation queue"),
        asyncio.create_task(sample_clones(shared), name="pgparity clone sampler"),
    ]
    if options.metrics_port and not _metrics_started.is_set():
        metrics.serve(options.metrics_port)
        _metrics_started.set()
        logger.info("serving /metrics on port %d", options.metrics_port)


@kopf.on.login()
async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """kopf's own login through the Kubernetes client library, with KUBECONFIG as it is now."""
    follow_kubeconfig_variable()
    return await asyncio.to_thread(kopf.login_via_client, **kwargs)


@kopf.on.cleanup()
async def stop_background_tasks(memo: kopf.Memo, **_: Any) -> None:
    for task in runtime(memo).tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    stop_process()
