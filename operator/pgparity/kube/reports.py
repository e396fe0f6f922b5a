"""Validation reports in ConfigMaps: the Job writes one, the operator reads it back.

Reports over 900 kB (ConfigMaps hold at most 1 MiB) are stored gzip-compressed in
``binaryData``; the reader accepts both.
"""

from __future__ import annotations

import base64
import gzip

from pgparity.errors import KubeError
from pgparity.kube.client import get, patch_merge

REPORT_KEY = "report.json"
COMPRESSED_KEY = "report.json.gz"
PLAIN_LIMIT = 900_000


def write_report(namespace: str, name: str, report_json: str) -> None:
    """Put the report into the (existing) ConfigMap ``name``."""
    if len(report_json.encode()) <= PLAIN_LIMIT:
        body = {"data": {REPORT_KEY: report_json}, "binaryData": None}
    else:
        packed = base64.b64encode(gzip.compress(report_json.encode())).decode()
        body = {"binaryData": {COMPRESSED_KEY: packed}, "data": None}
    patch_merge("v1", "ConfigMap", name, namespace, body)


def read_report(namespace: str, name: str) -> str | None:
    """The report text, or None if the ConfigMap holds none (yet)."""
    configmap = get("v1", "ConfigMap", name, namespace)
    if configmap is None:
        raise KubeError(f"report ConfigMap {namespace}/{name} does not exist", 404)
    data = configmap.get("data") or {}
    if data.get(REPORT_KEY):
        return str(data[REPORT_KEY])
    packed = (configmap.get("binary_data") or configmap.get("binaryData") or {}).get(COMPRESSED_KEY)
    if packed:
        return gzip.decompress(base64.b64decode(packed)).decode()
    return None
