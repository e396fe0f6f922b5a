"""`make bench-operator`: the operator with hundreds of objects on the real control plane.

For each size (MigrationValidations : StagingClones, default 10:5, 100:20, 500:100) the bench
starts the operator as its own process (`pgparity operator`, with the RBAC of the Helm chart,
watching one fresh namespace), creates the clones — external ones, half on a real primary +
streaming replica (one marked database serves them all), half on a closed port — and the
validations, spread over all clones, and measures:

- **time to status**: from the first create until every object has a `status.phase`;
- **change → status p50 / p99**: every object's spec is changed (a clone's parameters, a
  validation's deadline) at a steady rate; the delay is from sending the patch until a watch
  shows `status.observedGeneration` at the new generation;
- **RSS** (peak, VmHWM) and **CPU** of the operator process from /proc, while the objects
  arrive and while nothing changes (idle, over a fixed window);
- **API requests per second** from the kube-apiserver's `apiserver_request_total` (all verbs
  but WATCH), with the same window measured before the operator started subtracted (the
  controller-manager's own traffic) and the bench's own requests subtracted.

There is no kubelet: validation Jobs are created (up to `PGPARITY_MAX_CONCURRENT_JOBS`) but never
run, so this measures reconciliation — statuses, queueing, clone checks, sampling — not Job
execution. The operator's settings come from the environment (`PGPARITY_*`), so the same bench
compares configurations. Nothing here passes or fails; the table is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from psycopg import conninfo, sql
from urllib3.exceptions import HTTPError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fix_operator import (  # noqa: E402 - tests/ is on the path now
    apply,
    operator_process,
    token_kubeconfig,
)
from kubeplane import ControlPlane  # noqa: E402
from pgparity.manifests.rbac import operator_rbac  # noqa: E402
from pgparity.pg.clone import mark_clone  # noqa: E402
from pgparity.pg.localcluster import LocalCluster, free_port  # noqa: E402

GROUP, VERSION = "pgparity.io", "v1alpha1"
OPERATOR_NAMESPACE = "pgparity-system"
PLURALS = {"StagingClone": "stagingclones", "MigrationValidation": "migrationvalidations"}
IDLE_SECONDS = float(os.environ.get("PGPARITY_BENCH_IDLE_SECONDS", "30"))
CHANGE_RATE = float(os.environ.get("PGPARITY_BENCH_CHANGE_RATE", "20"))  # patches per second
DEADLINE = float(os.environ.get("PGPARITY_BENCH_DEADLINE", "300"))
CREATORS = int(os.environ.get("PGPARITY_BENCH_CREATORS", "4"))  # concurrent create requests
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- what we watch
@dataclass
class Seen:
    """When each object first had a status, and when each observedGeneration first showed."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    first_status: dict[tuple[str, str], float] = field(default_factory=dict)
    generations: dict[tuple[str, str], list[tuple[int, float]]] = field(default_factory=dict)

    def record(self, kind: str, item: dict[str, Any], at: float) -> None:
        key = (kind, item["metadata"]["name"])
        status = item.get("status") or {}
        with self.lock:
            if status.get("phase") and key not in self.first_status:
                self.first_status[key] = at
            observed = status.get("observedGeneration")
            history = self.generations.setdefault(key, [])
            if isinstance(observed, int) and (not history or observed > history[-1][0]):
                history.append((observed, at))

    def reflected(self, key: tuple[str, str], generation: int) -> float | None:
        with self.lock:
            return next((t for g, t in self.generations.get(key, []) if g >= generation), None)


def watch_kind(
    api: client.CustomObjectsApi, namespace: str, kind: str, seen: Seen, stop: threading.Event
) -> None:
    """Follow one kind in the namespace until ``stop``, recording into ``seen``."""
    while not stop.is_set():
        try:
            follow(api, namespace, kind, seen, stop)
        except (ApiException, HTTPError, OSError):
            continue  # the stream broke (the plane stops at the end): list and watch again


def follow(
    api: client.CustomObjectsApi, namespace: str, kind: str, seen: Seen, stop: threading.Event
) -> None:
    listing = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind])
    now = time.monotonic()
    for item in listing["items"]:
        seen.record(kind, item, now)
    stream = watch.Watch().stream(
        api.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURALS[kind],
        resource_version=listing["metadata"]["resourceVersion"],
        timeout_seconds=240,
    )
    for event in stream:
        seen.record(kind, event["object"], time.monotonic())
        if stop.is_set():
            return


# ----------------------------------------------------------------------- the operator process
def operator(kubeconfig: Path, namespace: str, workdir: Path) -> Any:
    """The operator as the Deployment runs it, watching ``namespace``; PGPARITY_* pass through."""
    settings = {k: v for k, v in os.environ.items() if k.startswith("PGPARITY_")}
    environment = {
        **settings,
        "KUBECONFIG": str(kubeconfig),
        "PGPARITY_NAMESPACES": namespace,
        "PGPARITY_IMAGE": "pgparity:bench",
        "PGPARITY_OPERATOR_NAMESPACE": OPERATOR_NAMESPACE,
    }
    return operator_process(environment, workdir / f"operator-{namespace}.log")


def wait_until(what: str, probe: Any, timeout: float = DEADLINE) -> float:
    """Poll until ``probe()`` is true; the monotonic time it became true."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)
    return time.monotonic()


# ------------------------------------------------------------------------- the API server
def api_counts(plane: ControlPlane) -> dict[str, float]:
    """Requests the API server has answered so far, by verb and resource (no WATCH)."""
    text = plane.kubectl("get", "--raw", "/metrics").stdout
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("apiserver_request_total{") and 'verb="WATCH"' not in line:
            inside = line[line.index("{") + 1 : line.index("}")].replace('"', "")
            labels = dict(part.split("=", 1) for part in inside.split(","))
            what = f"{labels['verb']} {labels.get('resource', '')}"
            counts[what] = counts.get(what, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def api_requests(plane: ControlPlane) -> float:
    return sum(api_counts(plane).values())


def rate_over(plane: ControlPlane, seconds: float) -> float:
    """API requests per second over a window in which the bench itself sends nothing."""
    before = api_counts(plane)
    time.sleep(seconds)
    after = api_counts(plane)
    busiest = sorted(((after[k] - before.get(k, 0.0), k) for k in after), reverse=True)[:6]
    log("    " + ", ".join(f"{k}: {n / seconds:.1f}/s" for n, k in busiest if n))
    return (sum(after.values()) - sum(before.values()) - 1) / seconds  # the scrape counts once


# ----------------------------------------------------------------------------- the objects
def clone_body(name: str, secret: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "StagingClone",
        "metadata": {"name": name},
        "spec": {
            "provider": "external",
            "external": {"secretRef": {"name": secret}},
            "postgres": {"parameters": {"lock_timeout": "5s"}},
        },
    }


def validation_body(name: str, clone: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "MigrationValidation",
        "metadata": {"name": name},
        "spec": {
            "cloneRef": {"name": clone},
            "migration": {"sql": f"ALTER TABLE items ADD COLUMN c_{name.replace('-', '_')} int;"},
        },
    }


def make_secrets(core: client.CoreV1Api, namespace: str, db_dsn: str, replica_dsn: str) -> None:
    closed = f"host=127.0.0.1 port={free_port()} dbname=gone user=gone"
    for name, dsn, replica in (("ready", db_dsn, replica_dsn), ("down", closed, closed)):
        core.create_namespaced_secret(
            namespace,
            {"metadata": {"name": name}, "stringData": {"dsn": dsn, "replicaDsn": replica}},
        )


def objects(validations: int, clones: int) -> list[dict[str, Any]]:
    """Clones first (even ones Ready, odd ones on a closed port), then validations over all."""
    clone_names = [f"clone-{i:03d}" for i in range(clones)]
    bodies = [clone_body(n, "ready" if i % 2 == 0 else "down") for i, n in enumerate(clone_names)]
    bodies += [validation_body(f"mv-{i:04d}", clone_names[i % clones]) for i in range(validations)]
    return bodies


# ---------------------------------------------------------------------------- one size
@dataclass
class Result:
    validations: int
    clones: int
    time_to_status: float
    p50: float
    p99: float
    unreflected: int
    rss_peak_mb: float
    rss_idle_mb: float
    cpu_burst: float
    cpu_idle: float
    api_idle: float
    api_changes: float
    jobs: int
    queued: float | None


def measure(
    plane: ControlPlane,
    kubeconfig: Path,
    api: client.CustomObjectsApi,
    core: client.CoreV1Api,
    dsns: tuple[str, str],
    size: tuple[int, int],
    baseline: float,
    workdir: Path,
) -> Result:
    validations, clones = size
    namespace = f"bench-{validations}-{clones}"
    plane.kubectl("create", "namespace", namespace)
    make_secrets(core, namespace, *dsns)
    bodies = objects(validations, clones)
    seen, stop = Seen(), threading.Event()
    watchers = [
        threading.Thread(target=watch_kind, args=(api, namespace, kind, seen, stop), daemon=True)
        for kind in PLURALS
    ]
    for thread in watchers:
        thread.start()
    with operator(kubeconfig, namespace, workdir) as process:
        ticks0, start = process.ticks(), time.monotonic()
        create(api, namespace, bodies)
        log(f"  created {len(bodies)} objects in {time.monotonic() - start:.1f} s")
        done = wait_until(
            f"a status on all {len(bodies)} objects",
            lambda: len(seen.first_status) == len(bodies),
        )
        time_to_status = done - start
        cpu_burst = (process.ticks() - ticks0) / TICKS / (time.monotonic() - start)
        log(f"  every object has a status after {time_to_status:.1f} s; settling")
        time.sleep(min(IDLE_SECONDS, 15))
        ticks0, t0 = process.ticks(), time.monotonic()
        api_idle = rate_over(plane, IDLE_SECONDS) - baseline
        cpu_idle = (process.ticks() - ticks0) / TICKS / (time.monotonic() - t0)
        rss_idle = process.memory_mb("VmRSS")
        log(f"  idle: {cpu_idle:.1%} of a core, {api_idle:.1f} API requests/s; changing specs")
        delays, unreflected, api_changes = change_every_spec(plane, api, namespace, bodies, seen)
        jobs = len(
            client.BatchV1Api(api.api_client).list_namespaced_job(namespace).items  # type: ignore[no-untyped-call]
        )
        queued = process.metric("pgparity_validation_queue_length")
        rss_peak = process.memory_mb("VmHWM")
    stop.set()
    ordered = sorted(delays) or [float("nan")]
    return Result(
        validations,
        clones,
        time_to_status,
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        unreflected,
        rss_peak,
        rss_idle,
        cpu_burst,
        cpu_idle,
        api_idle,
        api_changes - baseline,
        jobs,
        queued,
    )


def create(api: client.CustomObjectsApi, namespace: str, bodies: list[dict[str, Any]]) -> None:
    """Create the objects in their order, CREATORS requests at a time (like parallel applies)."""

    def one(body: dict[str, Any]) -> None:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[body["kind"]], body)

    with ThreadPoolExecutor(CREATORS) as pool:
        list(pool.map(one, bodies))


def change_every_spec(
    plane: ControlPlane,
    api: client.CustomObjectsApi,
    namespace: str,
    bodies: list[dict[str, Any]],
    seen: Seen,
) -> tuple[list[float], int, float]:
    """Patch every object at CHANGE_RATE; (delays until the status shows it, misses, API/s)."""
    sent: list[tuple[tuple[str, str], int, float]] = []
    before, start = api_requests(plane), time.monotonic()
    for i, body in enumerate(bodies):
        kind, name = body["kind"], body["metadata"]["name"]
        change = (
            {"spec": {"postgres": {"parameters": {"lock_timeout": "6s"}}}}
            if kind == "StagingClone"
            else {"spec": {"deadlineSeconds": 1200}}
        )
        time.sleep(max(0.0, start + i / CHANGE_RATE - time.monotonic()))
        at = time.monotonic()
        patched = api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, change
        )
        sent.append(((kind, name), int(patched["metadata"]["generation"]), at))
    try:
        wait_until(
            "every change reflected",
            lambda: all(seen.reflected(key, g) is not None for key, g, _ in sent),
            timeout=120,
        )
    except TimeoutError as exc:
        log(f"  {exc}")
    elapsed = time.monotonic() - start
    api_rate = (api_requests(plane) - before - 1 - len(sent)) / elapsed
    delays = [t - at for key, g, at in sent if (t := seen.reflected(key, g)) is not None]
    for kind in PLURALS:
        own = sorted(
            t - at for key, g, at in sent if key[0] == kind and (t := seen.reflected(key, g))
        )
        if own:
            log(f"    {kind}: p50 {statistics.median(own):.2f} s, max {own[-1]:.2f} s")
    return delays, len(sent) - len(delays), api_rate


# --------------------------------------------------------------------------------- main
def clone_database(cluster: LocalCluster) -> tuple[str, str]:
    with psycopg.connect(cluster.primary_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("bench")))
    dsn = conninfo.make_conninfo(cluster.primary_dsn, dbname="bench")
    with psycopg.connect(dsn, autocommit=True) as conn:
        mark_clone(conn, "bench")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
    cluster.wait_replay()
    return dsn, conninfo.make_conninfo(cluster.replica_dsn or "", dbname="bench")


def table(results: list[Result]) -> str:
    reconcile = os.environ.get("PGPARITY_RECONCILE_SECONDS", "default")
    lines = [
        f"PGPARITY_RECONCILE_SECONDS={reconcile}; idle window {IDLE_SECONDS:g} s; "
        f"changes at {CHANGE_RATE:g}/s",
        "| MVs + clones | all have a status | change→status p50 / p99 | RSS idle / peak "
        "| CPU arriving / idle | API req/s idle / changing | Jobs | queued |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        missed = f" ({r.unreflected} missed)" if r.unreflected else ""
        lines.append(
            f"| {r.validations} + {r.clones} | {r.time_to_status:.1f} s "
            f"| {r.p50:.2f} s / {r.p99:.2f} s{missed} "
            f"| {r.rss_idle_mb:.0f} / {r.rss_peak_mb:.0f} MB "
            f"| {r.cpu_burst:.0%} / {r.cpu_idle:.1%} "
            f"| {r.api_idle:.1f} / {r.api_changes:.1f} "
            f"| {r.jobs} | {'-' if r.queued is None else f'{r.queued:.0f}'} |"
        )
    return "\n".join(lines)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in (part.split(":") for part in text.split(","))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10:5,100:20,500:100", help="MVs:clones,…")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="pgparity-bench-operator-"))
    log(f"operator logs in {workdir}")
    with LocalCluster(durable=False, replicas=1) as cluster, ControlPlane() as plane:
        dsns = clone_database(cluster)
        plane.kubectl("apply", "-f", str(ROOT / "crds"))
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
        plane.kubectl("create", "namespace", OPERATOR_NAMESPACE)
        apply(plane, OPERATOR_NAMESPACE, operator_rbac(OPERATOR_NAMESPACE))
        kubeconfig = token_kubeconfig(
            plane, OPERATOR_NAMESPACE, "pgparity-operator", workdir / "kubeconfig"
        )
        admin = config.new_client_from_config(config_file=str(plane.kubeconfig))
        api, core = client.CustomObjectsApi(admin), client.CoreV1Api(admin)
        baseline = rate_over(plane, 10)
        log(f"API requests/s without the operator: {baseline:.1f}")
        results = []
        for size in parse_sizes(args.sizes):
            log(f"{size[0]} MigrationValidations + {size[1]} StagingClones")
            results.append(measure(plane, kubeconfig, api, core, dsns, size, baseline, workdir))
    print(table(results))
    print(json.dumps([r.__dict__ for r in results]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
