"""Every Prometheus metric pgparity exports, in one place.

Names carry the ``pgparity_`` prefix and base units (``_seconds``, ``_bytes``); ``_total`` only
on counters. Labels are bounded: a verdict, or an object's namespace and name — and the series
of an object are removed when the object is deleted (``forget_clone``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

VALIDATIONS = Counter(
    "pgparity_validations",
    "Migration validations finished, by verdict (VALIDATED or REJECTED).",
    ["verdict"],
    registry=REGISTRY,
)
VALIDATION_DURATION = Histogram(
    "pgparity_validation_duration_seconds",
    "Wall time of a migration validation, from the Job's start to its report.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
CLONE_READY = Gauge(
    "pgparity_clone_ready",
    "1 when the StagingClone is Ready (streaming replica, seeded), else 0.",
    ["namespace", "name"],
    registry=REGISTRY,
)
REPLICATION_LAG = Gauge(
    "pgparity_replication_lag_bytes",
    "Bytes of WAL the clone's slowest replica has not replayed, sampled.",
    ["namespace", "name"],
    registry=REGISTRY,
)
LOCK_WAITING = Gauge(
    "pgparity_lock_waiting_sessions",
    "Sessions waiting for a lock on the clone's primary, sampled.",
    ["namespace", "name"],
    registry=REGISTRY,
)
LOCK_WAIT_MAX = Gauge(
    "pgparity_lock_wait_seconds_max",
    "Longest current lock wait on the clone's primary, sampled.",
    ["namespace", "name"],
    registry=REGISTRY,
)
_SAMPLED_GAUGES = (REPLICATION_LAG, LOCK_WAITING, LOCK_WAIT_MAX)
_CLONE_GAUGES = (CLONE_READY, *_SAMPLED_GAUGES)
VALIDATION_QUEUE = Gauge(
    "pgparity_validation_queue_length",
    "Validations ready to run that wait for a Job slot (PGPARITY_MAX_CONCURRENT_JOBS).",
    registry=REGISTRY,
)
VALIDATION_JOBS = Gauge(
    "pgparity_validation_jobs_running",
    "Validation Jobs running now, across every watched namespace.",
    registry=REGISTRY,
)


def record_validation(verdict: str, seconds: float | None) -> None:
    VALIDATIONS.labels(verdict=verdict).inc()
    if seconds is not None:
        VALIDATION_DURATION.observe(seconds)


def set_clone_ready(namespace: str, name: str, ready: bool) -> None:
    CLONE_READY.labels(namespace=namespace, name=name).set(1 if ready else 0)


def set_clone_sample(
    namespace: str, name: str, *, lag_bytes: int, waiting: int, longest_wait: float
) -> None:
    REPLICATION_LAG.labels(namespace=namespace, name=name).set(lag_bytes)
    LOCK_WAITING.labels(namespace=namespace, name=name).set(waiting)
    LOCK_WAIT_MAX.labels(namespace=namespace, name=name).set(longest_wait)


def forget_clone(namespace: str, name: str) -> None:
    """Remove every series of a deleted clone."""
    _forget(_CLONE_GAUGES, namespace, name)


def forget_samples(namespace: str, name: str) -> None:
    """Remove the sampled series of a clone that is no longer sampled (not Ready, or gone)."""
    _forget(_SAMPLED_GAUGES, namespace, name)


def _forget(gauges: tuple[Gauge, ...], namespace: str, name: str) -> None:
    for gauge in gauges:
        try:
            gauge.remove(namespace, name)
        except KeyError:
            continue


def set_validation_queue(queued: int, running: int) -> None:
    VALIDATION_QUEUE.set(queued)
    VALIDATION_JOBS.set(running)


def serve(port: int) -> None:
    """Serve ``/metrics`` on ``port`` from a background thread."""
    start_http_server(port, registry=REGISTRY)
