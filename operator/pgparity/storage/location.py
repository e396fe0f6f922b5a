"""Archive URLs: ``s3://BUCKET/KEY``, ``gs://BUCKET/KEY``, ``az://CONTAINER/KEY``, ``file:///PATH``
or a plain local path — parsed into a typed location, checked, and never holding credentials.

Credentials never travel in URLs (they would show in argv, logs and Job specs): they come from
the environment's standard chain, whose variables each scheme lists here (the operator passes
exactly these keys from the Secret named by ``source.archive.secretRef`` to the seeding Job).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from pgparity.errors import UsageError, shown

# What `latest` (or `latest.pgparity`) in an archive URL stands for: the newest complete
# archive beside it.
LATEST = ("latest", "latest.pgparity")


class Scheme(StrEnum):
    S3 = "s3"
    GCS = "gs"
    AZURE = "az"
    FILE = "file"


# Bucket and container names as the providers allow them (S3: 3-63 characters of lower-case
# letters, digits, dots and hyphens; GCS adds underscores; Azure containers: letters, digits,
# hyphens). Anything else is a typo or an attempt to smuggle a path or a host.
_BUCKET = {
    Scheme.S3: re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
    Scheme.GCS: re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$"),
    Scheme.AZURE: re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]$"),
}

# The environment variables each scheme's credential chain reads from a Secret. Other links of
# the chain need no Secret: IRSA / web identity (AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE,
# injected by EKS), GKE workload identity and Azure workload identity (the metadata services).
CREDENTIAL_VARIABLES = {
    Scheme.S3: (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
    ),
    Scheme.GCS: ("GOOGLE_SERVICE_ACCOUNT_KEY",),
    Scheme.AZURE: (
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_TOKEN",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_TENANT_ID",
    ),
    Scheme.FILE: (),
}
# Which of them are secrets: remembered, so no message can show them (pgparity.redaction).
SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
)


@dataclass(frozen=True)
class Location:
    """A place in an object store: ``bucket`` (empty for local paths) and ``key``, a
    ``/``-separated path inside it without leading or trailing slashes (an absolute path for
    local files, without its leading ``/``)."""

    scheme: Scheme
    bucket: str
    key: str

    def __str__(self) -> str:
        if self.scheme is Scheme.FILE:
            return f"/{self.key}"
        return f"{self.scheme.value}://{self.bucket}/{self.key}".rstrip("/")

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def parent(self) -> Location:
        return Location(self.scheme, self.bucket, posixpath.dirname(self.key))

    def child(self, name: str) -> Location:
        return Location(self.scheme, self.bucket, f"{self.key}/{name}" if self.key else name)

    @property
    def is_latest(self) -> bool:
        return self.name in LATEST

    @property
    def where(self) -> str:
        """The bucket as messages name it (the thing whose credentials or existence failed)."""
        if self.scheme is Scheme.FILE:
            return "the local file system"
        noun = "container" if self.scheme is Scheme.AZURE else "bucket"
        return f"{noun} {self.bucket!r}"


def parse_location(text: str, flag: str) -> Location:
    """``text`` as a location; anything unusable is a one-line UsageError naming ``flag``."""
    value = text.strip()
    if not value:
        raise UsageError(f"{flag}: empty location")
    if "://" not in value:
        return _local(Path(value), flag)
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"{flag}: file URLs name a local path (file:///PATH), not a host")
        return _local(Path(unquote(parts.path)), flag)
    known = {s.value: s for s in Scheme if s is not Scheme.FILE}
    if scheme not in known:
        raise UsageError(
            f"{flag}: unknown scheme {shown(scheme + '://')}: use s3://, gs://, az://, "
            "file:// or a local path"
        )
    return _remote(known[scheme], parts.netloc, parts, flag)


def scheme_of(url: str) -> Scheme:
    """The scheme a URL or path names, without checking the rest (builders use it)."""
    head = url.strip().split("://", 1)[0].lower() if "://" in url else Scheme.FILE.value
    return next((s for s in Scheme if s.value == head), Scheme.FILE)


def names_collection(text: str) -> bool:
    """A URL or path ending in ``/`` names a collection: ``snapshot`` names the archive."""
    return text.strip().endswith("/")


def _remote(scheme: Scheme, netloc: str, parts: SplitResult, flag: str) -> Location:
    if "@" in netloc or ":" in netloc:
        # s3://KEY:SECRET@bucket would put a secret in argv and in every log line.
        raise UsageError(
            f"{flag}: credentials or ports do not belong in an archive URL; give them in the "
            "environment (AWS_*, GOOGLE_*, AZURE_* variables), the endpoint with --endpoint-url"
        )
    if not netloc:
        raise UsageError(
            f"{flag}: {scheme.value}:// URL without a bucket: {scheme.value}://BUCKET/PATH"
        )
    if not _BUCKET[scheme].match(netloc):
        raise UsageError(f"{flag}: {shown(netloc)} is not a valid {scheme.value}:// bucket name")
    if parts.query or parts.fragment:
        raise UsageError(f"{flag}: an archive URL takes no ?query or #fragment")
    return Location(scheme, netloc, _clean_key(unquote(parts.path), flag))


def _clean_key(path: str, flag: str) -> str:
    segments = [s for s in path.split("/") if s]
    if any(s in (".", "..") for s in segments):
        raise UsageError(f"{flag}: '.' and '..' are not allowed in an archive URL's path")
    if any(ord(c) < 32 for c in path):
        raise UsageError(f"{flag}: control characters in an archive URL's path")
    return "/".join(segments)


def _local(path: Path, flag: str) -> Location:
    absolute = Path(posixpath.normpath(str(path.expanduser().absolute())))
    return Location(Scheme.FILE, "", _clean_key(str(absolute), flag))
