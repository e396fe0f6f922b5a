"""The only code that calls the Kubernetes API (through the official client's dynamic API).

Configuration: inside a pod, the pod's ServiceAccount; elsewhere the kubeconfig (``KUBECONFIG``
or ``~/.kube/config``). Failures become ``KubeError`` with one line: the status, the reason,
the API server's message. Every request — discovery included — carries a timeout
(``configure``), so a hung API server cannot hold the calling thread for ever.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from urllib3.exceptions import HTTPError

from pgparity.errors import KubeError

__all__ = ["KubeError"]  # re-exported: callers of the client catch it from here too

_lock = threading.Lock()
# (request timeout in seconds, connections kept per host): see configure().
_options = {"timeout": 10.0, "connections": 10}


class _TimedClient(DynamicClient):
    """The dynamic client with a default timeout on every request it makes.

    Discovery requests are made inside the client, where no caller can pass a timeout; the
    client's generic ``request`` is the one place they all pass through.
    """

    def request(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        params.setdefault("_request_timeout", _options["timeout"])
        return super().request(method, path, body, **params)


def configure(*, timeout: float, connections: int) -> None:
    """The timeout of every request, and the connection pool for that many threads."""
    _options.update(timeout=timeout, connections=connections)
    reset()


@functools.cache
def _dynamic() -> DynamicClient:
    with _lock:
        configuration = client.Configuration()
        try:
            if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
                config.load_incluster_config(client_configuration=configuration)
            else:
                # KUBECONFIG as it is now: the client's own default is read at its import.
                config.load_kube_config(
                    config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
                )
        except (config.ConfigException, OSError) as exc:
            raise KubeError(f"no Kubernetes configuration: {exc}") from exc
        # One pooled connection per calling thread, not urllib3's default of 10 per host; no
        # retries inside a request (urllib3 would try 4 times, each up to the timeout): the
        # handlers try again later, with the object's state read afresh.
        configuration.connection_pool_maxsize = int(_options["connections"])
        configuration.retries = False
        return _TimedClient(client.ApiClient(configuration))


def follow_kubeconfig_variable() -> None:
    """Make the client library's default kubeconfig the one KUBECONFIG names now.

    The library reads the variable once, when it is imported, and kopf's login through the
    library uses that default: a process that imported it before setting KUBECONFIG (a test
    session) would log in with another configuration, or none.
    """
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = os.environ.get("KUBECONFIG", "~/.kube/config")


def reset() -> None:
    """Forget the loaded configuration (tests switch kubeconfigs between runs)."""
    _dynamic.cache_clear()


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        # Not chained: the exception's text carries the response's headers and body, which
        # may echo an object's data (a Secret's).
        raise KubeError(f"{what}: {exc.status} {exc.reason}: {_message(exc)}", exc.status) from None
    except (HTTPError, OSError) as exc:
        raise KubeError(f"{what}: cannot reach the API server: {exc}") from exc


def _message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", "")) or str(exc.reason)
    except ValueError:
        return str(exc.body or exc.reason)


def _resource(api_version: str, kind: str) -> Any:
    try:
        return _call(f"discovering {kind}", _discover, api_version, kind)
    except ResourceNotFoundError as exc:
        raise KubeError(f"the API server does not serve {api_version} {kind}") from exc


def _discover(api_version: str, kind: str) -> Any:
    # Making the client talks to the API server too (its version): inside _call's net.
    return _dynamic().resources.get(api_version=api_version, kind=kind)


def get(api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
    """The object as a plain dict, or None if it does not exist."""
    try:
        found = _call(
            f"reading {kind} {name}",
            _resource(api_version, kind).get,
            name=name,
            namespace=namespace,
        )
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise
    return dict(found.to_dict())


def list_objects(
    api_version: str, kind: str, namespace: str, selector: Mapping[str, str]
) -> list[dict[str, Any]]:
    label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
    found = _call(
        f"listing {kind}",
        _resource(api_version, kind).get,
        namespace=namespace,
        label_selector=label_selector,
    )
    return [dict(item.to_dict()) for item in found.items]


def create_missing(body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Create ``body`` unless an object of that name exists; (the object, whether created)."""
    meta = body["metadata"]
    existing = get(body["apiVersion"], body["kind"], meta["name"], meta.get("namespace"))
    if existing is not None:
        return existing, False
    try:
        made = _call(
            f"creating {body['kind']} {meta['name']}",
            _resource(body["apiVersion"], body["kind"]).create,
            body=dict(body),
            namespace=meta.get("namespace"),
        )
    except KubeError as exc:
        if exc.status != 409:  # created meanwhile: fine, it is there
            raise
        again = get(body["apiVersion"], body["kind"], meta["name"], meta.get("namespace"))
        assert again is not None
        return again, False
    return dict(made.to_dict()), True


def patch_merge(
    api_version: str,
    kind: str,
    name: str,
    namespace: str,
    body: Mapping[str, Any],
    *,
    status: bool = False,
) -> dict[str, Any]:
    resource = _resource(api_version, kind)
    target = resource.status if status else resource
    made = _call(
        f"patching {kind} {name}",
        target.patch,
        body=dict(body),
        name=name,
        namespace=namespace,
        content_type="application/merge-patch+json",
    )
    return dict(made.to_dict())


def secret_value(namespace: str, name: str, key: str) -> str | None:
    """One decoded value of a Secret, or None when the Secret or the key is missing."""
    return (secret_data(namespace, name) or {}).get(key)


def secret_data(namespace: str, name: str) -> dict[str, str] | None:
    """Every decoded value of a Secret (one request), or None when it does not exist."""
    secret = get("v1", "Secret", name, namespace)
    if secret is None:
        return None
    return {
        key: base64.b64decode(value).decode("utf-8")
        for key, value in (secret.get("data") or {}).items()
    }


def configmap_value(namespace: str, name: str, key: str) -> str | None:
    configmap = get("v1", "ConfigMap", name, namespace)
    if configmap is None:
        return None
    return (configmap.get("data") or {}).get(key)
