"""One bucket of an object store, through obstore: list, stream up (multipart), stream down,
delete — every failure one ``StorageError`` line naming the bucket, never a secret.

Credentials come from the environment's standard chain, which obstore's stores read themselves:
``AWS_*`` variables, web identity (IRSA), ECS and EC2 metadata for S3; a service-account key,
``GOOGLE_APPLICATION_CREDENTIALS`` or workload identity for GCS; ``AZURE_*`` variables, workload
or managed identity for Azure. pgparity adds only ``--endpoint-url`` (or ``AWS_ENDPOINT_URL``)
for S3-compatible stores, addressed path-style, and remembers the secret variables' values so
that no message can show them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import obstore
from obstore import exceptions as store_errors
from obstore.store import AzureStore, GCSStore, LocalStore, S3Store

from pgparity.errors import ObjectMissingError, StorageError, UsageError, shown
from pgparity.redaction import remember_secret, sanitize
from pgparity.storage.location import SECRET_VARIABLES, Location, Scheme

if TYPE_CHECKING:
    from obstore.store import ClientConfig, ObjectStore, RetryConfig, S3Config

MIB = 1 << 20
MIN_PART_SIZE = 5 * MIB  # S3's smallest part (but the last)
MAX_PARTS = 10_000  # S3's most parts in one upload
DEFAULT_PART_SIZE = 16 * MIB
DEFAULT_PARTS_IN_FLIGHT = 4
# A store that does not answer fails in about a minute, not after object_store's default of
# ten retries over three minutes; requests the store refuses (403, 404) are never retried.
RETRY: RetryConfig = {"max_retries": 4, "retry_timeout": timedelta(seconds=60)}
# Codes S3, GCS and Azure answer with when they refuse the credentials.
_REFUSED = (
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationFailure",
    "AuthenticationFailed",
    "AuthorizationPermissionMismatch",
)
_MISSING_BUCKET = ("NoSuchBucket", "ContainerNotFound", "The specified bucket does not exist")
_UNREACHABLE = ("error sending request", "Connection refused", "dns error", "timed out")
_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")


# What obstore raises for a failed request (its own errors; FileNotFoundError and other OSErrors
# for missing objects and local files).
_STORE_FAILURES = (store_errors.BaseError, OSError)


@dataclass(frozen=True)
class StoreOptions:
    endpoint_url: str | None = None
    part_size: int = DEFAULT_PART_SIZE
    parts_in_flight: int = DEFAULT_PARTS_IN_FLIGHT


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime
    etag: str


class Bucket:
    """The bucket (or container, or local file system) of ``location``; keys are full keys."""

    def __init__(
        self,
        location: Location,
        options: StoreOptions,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.location = location
        self.options = options
        env = os.environ if environ is None else environ
        remember_secrets(env)
        self.store = open_store(location, options, env)

    def objects(self, prefix: Location) -> list[ObjectInfo]:
        """Every object under ``prefix`` (a directory-like prefix: ``a/b`` lists ``a/b/…``)."""
        key = f"{prefix.key}/" if prefix.key else ""
        found: list[ObjectInfo] = []
        try:
            for batch in obstore.list(self.store, key, chunk_size=1000):
                found += [_info(meta) for meta in batch]
        except FileNotFoundError:  # a local directory that does not exist: nothing under it
            return []
        except _STORE_FAILURES as exc:
            self.fail(exc, f"list {prefix}")
        return found

    def put_stream(self, location: Location, chunks: Iterable[bytes], part_size: int) -> str:
        """Upload ``chunks`` as one object, in parts of ``part_size`` bytes (multipart: memory
        stays near ``part_size`` × parts in flight, whatever the object's size); its ETag."""
        try:
            result = obstore.put(
                self.store,
                location.key,
                iter(chunks),
                use_multipart=True,
                chunk_size=part_size,
                max_concurrency=self.options.parts_in_flight,
            )
        except _STORE_FAILURES as exc:
            # Only the store's own failures: whatever ``chunks`` raised (a database error, an
            # interruption) comes through obstore unchanged, and is the caller's to report.
            self.fail(exc, f"upload {location}")
        return str(result.get("e_tag") or "")

    def put_bytes(self, location: Location, data: bytes) -> None:
        try:
            obstore.put(self.store, location.key, data, use_multipart=False)
        except _STORE_FAILURES as exc:
            self.fail(exc, f"upload {location}")

    def get_bytes(self, location: Location, limit: int) -> bytes:
        """A small object (a manifest), refused past ``limit`` bytes."""
        data = bytearray()
        for chunk in self.stream(location):
            data += chunk
            if len(data) > limit:
                raise UsageError(f"{location} is larger than {limit} bytes: not a manifest")
        return bytes(data)

    def stream(self, location: Location) -> Iterator[bytes]:
        """The object's bytes, chunk by chunk (one request, read as it arrives)."""
        try:
            result = obstore.get(self.store, location.key)
            for chunk in result.stream(min_chunk_size=MIB):
                yield bytes(chunk)
        except FileNotFoundError as exc:
            if _bucket_missing(exc):
                self.fail(exc, f"read {location}")
            raise ObjectMissingError(f"{location} does not exist") from exc
        except _STORE_FAILURES as exc:
            self.fail(exc, f"read {location}")

    def delete(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        for start in range(0, len(batch), 1000):  # S3's DeleteObjects takes 1000 at a time
            try:
                obstore.delete(self.store, batch[start : start + 1000])
            except FileNotFoundError:
                continue  # already gone
            except _STORE_FAILURES as exc:
                self.fail(exc, f"delete in {self.location.where}")

    def fail(self, exc: BaseException, action: str) -> NoReturn:
        raise storage_error(exc, action, self.location) from exc


def open_store(location: Location, options: StoreOptions, env: Mapping[str, str]) -> ObjectStore:
    """The obstore store for ``location``'s bucket (credentials from ``env``'s chain)."""
    try:
        if location.scheme is Scheme.S3:
            config, client = s3_settings(options, env)
            return S3Store(
                location.bucket, config=config, client_options=client, retry_config=RETRY
            )
        if location.scheme is Scheme.GCS:
            return GCSStore(location.bucket, retry_config=RETRY)
        if location.scheme is Scheme.AZURE:
            return AzureStore(location.bucket, retry_config=RETRY)
        return LocalStore("/")
    except _STORE_FAILURES as exc:
        raise storage_error(exc, "open", location) from exc


def s3_settings(
    options: StoreOptions, env: Mapping[str, str]
) -> tuple[S3Config, ClientConfig | None]:
    """The endpoint of an S3-compatible store (``--endpoint-url``, else ``AWS_ENDPOINT_URL``),
    addressed path-style (``http://host/bucket/key``, what S3-compatible servers expect)."""
    endpoint = options.endpoint_url or env.get("AWS_ENDPOINT_URL") or ""
    if not endpoint:
        return {}, None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--endpoint-url {shown(endpoint)} is not an http:// or https:// URL")
    if parts.username or parts.password:
        raise UsageError("--endpoint-url: credentials do not belong in the endpoint URL")
    config: S3Config = {"endpoint": endpoint.rstrip("/"), "virtual_hosted_style_request": False}
    return config, ({"allow_http": True} if parts.scheme == "http" else None)


def remember_secrets(env: Mapping[str, str]) -> None:
    for name in SECRET_VARIABLES:
        value = env.get(name)
        if value:
            remember_secret(value)


def storage_error(exc: BaseException, action: str, location: Location) -> StorageError:
    """One line: what failed, in which bucket, and why — the store's error code, never its
    whole answer (which echoes request details) and never a secret."""
    text = str(exc)
    code = _code(text)
    where = location.where
    if _bucket_missing(exc):
        return StorageError(f"{where} does not exist (cannot {action})")
    if code in _REFUSED or isinstance(
        exc, store_errors.PermissionDeniedError | store_errors.UnauthenticatedError
    ):
        why = f" ({code})" if code else ""
        return StorageError(f"{where} refused the credentials{why}: cannot {action}")
    if any(marker in text for marker in _UNREACHABLE):
        return StorageError(f"cannot reach the store of {where}: cannot {action}")
    return StorageError(f"cannot {action} ({where}): {_first_line(text)}")


def _bucket_missing(exc: BaseException) -> bool:
    return any(marker in str(exc) for marker in _MISSING_BUCKET)


def _code(text: str) -> str:
    match = _CODE.search(text)
    return match.group(1) if match else ""


def _first_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "unknown error")
    line = line.split(" - Server returned", 1)[0]
    return shown(sanitize(line), 200).strip("'\"")


def _info(meta: Mapping[str, object]) -> ObjectInfo:
    modified = meta["last_modified"]
    assert isinstance(modified, datetime)
    return ObjectInfo(
        key=str(meta["path"]),
        size=int(str(meta["size"])),
        modified=modified,
        etag=str(meta.get("e_tag") or ""),
    )
