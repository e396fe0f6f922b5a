"""Every Prometheus metric pgparity exports, in one place.

Names carry the ``pgparity_`` prefix and base units (``_seconds``, ``_bytes``); ``_total`` only
on counters. Labels are bounded: a verdict or phase, an object's namespace and name, and a
validation's clone — and the series of an object are removed when the object is deleted
(``forget_clone``, ``forget_validation``).
"""

from __future__ import annotations

from collections.abc import Mapping

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
CLONE_PARITY = Gauge(
    "pgparity_clone_parity",
    "1 when the dimension of the parity floor (server, configuration, extensions, topology, "
    "schema) holds between the StagingClone and production at the last check, else 0.",
    ["namespace", "name", "dimension"],
    registry=REGISTRY,
)
_SAMPLED_GAUGES = (REPLICATION_LAG, LOCK_WAITING, LOCK_WAIT_MAX)
_CLONE_GAUGES = (CLONE_READY, *_SAMPLED_GAUGES)
VALIDATION_PHASE = Gauge(
    "pgparity_validation_phase",
    "1 for the phase a MigrationValidation is in (Pending, WaitingForClone, Running, Completed, "
    "Failed), 0 for the others.",
    ["namespace", "name", "clone", "phase"],
    registry=REGISTRY,
)
VALIDATION_VERDICT = Gauge(
    "pgparity_validation_verdict",
    "1 for the verdict a MigrationValidation stands on (VALIDATED or REJECTED), 0 for the "
    "other; both 0 while it has none.",
    ["namespace", "name", "clone", "verdict"],
    registry=REGISTRY,
)
VALIDATION_DEADLINE = Gauge(
    "pgparity_validation_deadline_exceeded",
    "1 when a MigrationValidation ran past spec.deadlineSeconds (its Job was stopped at the "
    "deadline, or still runs past it), else 0.",
    ["namespace", "name", "clone"],
    registry=REGISTRY,
)
# The label values each validation's series were set with, so that they can be removed.
_VALIDATION_SERIES: dict[tuple[str, str], list[tuple[Gauge, tuple[str, ...]]]] = {}
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


def set_clone_parity(namespace: str, name: str, dimensions: Mapping[str, bool]) -> None:
    for dimension, holds in dimensions.items():
        CLONE_PARITY.labels(namespace=namespace, name=name, dimension=dimension).set(int(holds))


def forget_clone(namespace: str, name: str) -> None:
    """Remove every series of a deleted clone."""
    _forget(_CLONE_GAUGES, namespace, name)
    for labels in _series_of(CLONE_PARITY, namespace, name):
        CLONE_PARITY.remove(*labels)


def _series_of(gauge: Gauge, namespace: str, name: str) -> list[tuple[str, ...]]:
    return [
        tuple(s.labels[k] for k in ("namespace", "name", "dimension"))
        for metric in gauge.collect()
        for s in metric.samples
        if s.labels.get("namespace") == namespace and s.labels.get("name") == name
    ]


def forget_samples(namespace: str, name: str) -> None:
    """Remove the sampled series of a clone that is no longer sampled (not Ready, or gone)."""
    _forget(_SAMPLED_GAUGES, namespace, name)


def _forget(gauges: tuple[Gauge, ...], namespace: str, name: str) -> None:
    for gauge in gauges:
        try:
            gauge.remove(namespace, name)
        except KeyError:
            continue


def set_validation(
    ref: tuple[str, str, str],
    *,
    phases: Mapping[str, bool],
    verdicts: Mapping[str, bool],
    deadline_exceeded: bool,
) -> None:
    """One validation's gauges; ``ref`` is (namespace, name, clone), ``phases`` and ``verdicts``
    say which one holds (every known value gets a series: 1 or 0)."""
    namespace, name, _ = ref
    series = [
        *((VALIDATION_PHASE, (*ref, phase), held) for phase, held in phases.items()),
        *((VALIDATION_VERDICT, (*ref, verdict), held) for verdict, held in verdicts.items()),
        (VALIDATION_DEADLINE, ref, deadline_exceeded),
    ]
    if [(g, v) for g, v, _ in series] != _VALIDATION_SERIES.get((namespace, name)):
        forget_validation(namespace, name)  # its labels changed: no stale series
    for gauge, values, held in series:
        gauge.labels(*values).set(1 if held else 0)
    _VALIDATION_SERIES[(namespace, name)] = [(g, v) for g, v, _ in series]


def forget_validation(namespace: str, name: str) -> None:
    """Remove every series of a deleted validation."""
    for gauge, values in _VALIDATION_SERIES.pop((namespace, name), []):
        try:
            gauge.remove(*values)
        except KeyError:
            continue


def set_validation_queue(queued: int, running: int) -> None:
    VALIDATION_QUEUE.set(queued)
    VALIDATION_JOBS.set(running)


def serve(port: int) -> None:
    """Serve ``/metrics`` on ``port`` from a background thread."""
    start_http_server(port, registry=REGISTRY)
