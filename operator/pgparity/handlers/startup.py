"""Operator start-up: kopf settings under pgparity.io, watch timeouts, the metrics endpoint."""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf

from pgparity import metrics
from pgparity.handlers.common import SETTINGS
from pgparity.redaction import install_log_redaction

_metrics_started = threading.Event()


@kopf.on.startup()
def configure(
    settings: kopf.OperatorSettings, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    install_log_redaction()  # also under `kopf run -m pgparity.handlers`, not only the CLI
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
    settings.execution.max_workers = 20
    if SETTINGS.metrics_port and not _metrics_started.is_set():
        metrics.serve(SETTINGS.metrics_port)
        _metrics_started.set()
        logger.info("serving /metrics on port %d", SETTINGS.metrics_port)
