"""Archive URLs, store settings and credentials, store errors, manifests, the seeding Job's
archive source — pure code and obstore's store constructors (which contact nothing).

GCS and Azure are exercised here only: URL parsing, which credential variables are read and
passed on, and the errors their constructors give. No live GCS or Azure service is reachable
from these machines (the S3 path is tested against a real server in tests/pg/test_archives.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from obstore import exceptions as store_errors
from obstore.store import AzureStore, GCSStore, LocalStore, S3Store

from pgparity.errors import StorageError, UsageError
from pgparity.manifests.clone import CloneRef, build_seed_job
from pgparity.models.staging_clone import StagingCloneSpec
from pgparity.redaction import sanitize
from pgparity.seed.archives import archive_name
from pgparity.seed.manifest import MANIFEST_VERSION, parse_manifest
from pgparity.storage.location import (
    CREDENTIAL_VARIABLES,
    Location,
    Scheme,
    names_collection,
    parse_location,
    scheme_of,
)
from pgparity.storage.store import StoreOptions, open_store, s3_settings, storage_error


class TestLocations:
    @pytest.mark.parametrize(
        ("text", "scheme", "bucket", "key"),
        [
            ("s3://acme-pgparity/orders/latest.pgparity", Scheme.S3, "acme-pgparity",
             "orders/latest.pgparity"),
            ("s3://acme.archives/orders/", Scheme.S3, "acme.archives", "orders"),
            ("S3://bucket-1//a///b/", Scheme.S3, "bucket-1", "a/b"),
            ("gs://my_bucket/x/y", Scheme.GCS, "my_bucket", "x/y"),
            ("az://container-1/nightly/a.pgparity", Scheme.AZURE, "container-1",
             "nightly/a.pgparity"),
            ("file:///archives/shop", Scheme.FILE, "", "archives/shop"),
            ("/archives/shop/", Scheme.FILE, "", "archives/shop"),
            ("s3://bucket/with%20space", Scheme.S3, "bucket", "with space"),
        ],
    )  # fmt: skip
    def test_parsed(self, text: str, scheme: Scheme, bucket: str, key: str) -> None:
        assert parse_location(text, "--archive") == Location(scheme, bucket, key)

    def test_relative_paths_are_absolute(self, tmp_path: Any, monkeypatch: Any) -> None:
        monkeypatch.chdir(tmp_path)
        assert str(parse_location("a/b", "--output")) == f"{tmp_path}/a/b"

    @pytest.mark.parametrize(
        ("text", "needle"),
        [
            ("", "empty location"),
            ("http://example.com/a", "unknown scheme"),
            ("https://bucket.s3.amazonaws.com/a", "unknown scheme"),
            ("ftp://x/y", "unknown scheme"),
            ("s3:///orders", "without a bucket"),
            ("gs://", "without a bucket"),
            ("s3://UPPER/x", "not a valid s3:// bucket name"),
            ("s3://a/x", "not a valid s3:// bucket name"),
            ("az://under_score/x", "not a valid az:// bucket name"),
            ("s3://KEY:SECRET@bucket/x", "credentials or ports"),
            ("s3://bucket:9000/x", "credentials or ports"),
            ("s3://bucket/a/../b", "'.' and '..'"),
            ("s3://bucket/a?x=1", "no ?query"),
            ("s3://bucket/a#frag", "no ?query"),
            ("s3://bucket/a%0Ab", "control characters"),
            ("file://otherhost/x", "not a host"),
        ],
    )
    def test_refused(self, text: str, needle: str) -> None:
        with pytest.raises(UsageError, match=None) as caught:
            parse_location(text, "--archive")
        assert needle in str(caught.value)
        assert str(caught.value).startswith("--archive")
        assert "SECRET" not in str(caught.value)

    def test_latest_and_collections(self) -> None:
        latest = parse_location("s3://b-1/orders/latest", "--archive")
        assert latest.is_latest
        assert latest.parent == Location(Scheme.S3, "b-1", "orders")
        assert parse_location("s3://b-1/orders/latest.pgparity", "x").is_latest
        assert not parse_location("s3://b-1/orders/latest-one", "x").is_latest
        assert names_collection("s3://b-1/orders/")
        assert not names_collection("s3://b-1/orders")
        assert archive_name(datetime(2026, 11, 29, 3, 0, 5, tzinfo=UTC)) == (
            "20261129T030005Z.pgparity"
        )

    @pytest.mark.parametrize(
        ("url", "scheme"),
        [("s3://b/x", Scheme.S3), ("gs://b/x", Scheme.GCS), ("az://c/x", Scheme.AZURE),
         ("file:///x", Scheme.FILE), ("/x", Scheme.FILE)],
    )  # fmt: skip
    def test_scheme_of(self, url: str, scheme: Scheme) -> None:
        assert scheme_of(url) is scheme


class TestStoreSettings:
    def test_s3_compatible_endpoint_is_path_style(self) -> None:
        config, client = s3_settings(StoreOptions(endpoint_url="http://127.0.0.1:7070/"), {})
        assert config == {
            "endpoint": "http://127.0.0.1:7070",
            "virtual_hosted_style_request": False,
        }
        assert client == {"allow_http": True}
        config, client = s3_settings(StoreOptions(), {"AWS_ENDPOINT_URL": "https://s3.example"})
        assert config["endpoint"] == "https://s3.example"
        assert client is None
        assert s3_settings(StoreOptions(), {}) == ({}, None)

    @pytest.mark.parametrize(
        ("endpoint", "needle"),
        [
            ("ftp://host", "not an http:// or https:// URL"),
            ("localhost:9000", "not an http:// or https:// URL"),
            ("http://user:pass@host", "credentials do not belong"),
        ],
    )
    def test_bad_endpoints(self, endpoint: str, needle: str) -> None:
        with pytest.raises(UsageError) as caught:
            s3_settings(StoreOptions(endpoint_url=endpoint), {})
        assert needle in str(caught.value)
        assert "pass" not in str(caught.value)

    def test_stores_by_scheme(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
        stores = {
            Scheme.S3: S3Store,
            Scheme.GCS: GCSStore,
            Scheme.AZURE: AzureStore,
            Scheme.FILE: LocalStore,
        }
        for scheme, kind in stores.items():
            bucket = "" if scheme is Scheme.FILE else "bucket-1"
            store = open_store(Location(scheme, bucket, "x"), StoreOptions(), {})
            assert isinstance(store, kind)

    def test_azure_without_an_account_names_the_container(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name in CREDENTIAL_VARIABLES[Scheme.AZURE]:
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(StorageError) as caught:
            open_store(Location(Scheme.AZURE, "nightly", "x"), StoreOptions(), {})
        assert "container 'nightly'" in str(caught.value)
        assert "Account must be specified" in str(caught.value)

    def test_a_malformed_gcs_key_is_refused_without_showing_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        key = json.dumps(
            {
                "type": "service_account",
                "private_key": "-----BEGIN PRIVATE KEY-----\nNOTAKEYxyzzy\n-----END "
                "PRIVATE KEY-----\n",
                "client_email": "pgparity@example.iam.gserviceaccount.com",
                "private_key_id": "k1",
            }
        )
        monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT_KEY", key)
        with pytest.raises(StorageError) as caught:
            open_store(Location(Scheme.GCS, "bucket-1", "x"), StoreOptions(), {})
        assert "bucket 'bucket-1'" in str(caught.value)
        assert "NOTAKEYxyzzy" not in str(caught.value)

    def test_credential_variables_are_the_chains_own(self) -> None:
        assert "AWS_SECRET_ACCESS_KEY" in CREDENTIAL_VARIABLES[Scheme.S3]
        assert "AWS_ENDPOINT_URL" in CREDENTIAL_VARIABLES[Scheme.S3]
        assert CREDENTIAL_VARIABLES[Scheme.GCS] == ("GOOGLE_SERVICE_ACCOUNT_KEY",)
        assert "AZURE_STORAGE_ACCOUNT_KEY" in CREDENTIAL_VARIABLES[Scheme.AZURE]
        assert CREDENTIAL_VARIABLES[Scheme.FILE] == ()


class TestStoreErrors:
    """What the stores answer, as one line naming the bucket: never the answer's body, never a
    secret the environment holds."""

    LOCATION = Location(Scheme.S3, "acme-pgparity", "orders/a")

    @pytest.mark.parametrize(
        ("exc", "needle"),
        [
            (store_errors.PermissionDeniedError(
                "403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code><StringToSign>AWS4"),
             "bucket 'acme-pgparity' refused the credentials (SignatureDoesNotMatch)"),
            (store_errors.GenericError("Generic S3 error: <Code>InvalidAccessKeyId</Code>"),
             "refused the credentials (InvalidAccessKeyId)"),
            (store_errors.UnauthenticatedError("401"), "refused the credentials"),
            (store_errors.GenericError("<Code>AuthenticationFailed</Code> azure"),
             "refused the credentials (AuthenticationFailed)"),
            (FileNotFoundError("404: <Code>NoSuchBucket</Code>"),
             "bucket 'acme-pgparity' does not exist"),
            (store_errors.GenericError("error sending request for url (http://h/): Connection "
                                       "refused"), "cannot reach the store of bucket"),
            (store_errors.GenericError("something odd\nDebug source: {...}"), "something odd"),
        ],
    )  # fmt: skip
    def test_classified(self, exc: BaseException, needle: str) -> None:
        message = str(storage_error(exc, "list s3://acme-pgparity/orders", self.LOCATION))
        assert needle in message
        assert "\n" not in message
        assert "StringToSign" not in message
        assert "Debug source" not in message

    def test_secrets_of_the_environment_are_masked(self) -> None:
        from pgparity.storage.store import remember_secrets

        remember_secrets({"AWS_SECRET_ACCESS_KEY": "s3cr3t-Value-123", "AWS_REGION": "eu"})
        exc = store_errors.GenericError("weird failure quoting s3cr3t-Value-123")
        message = sanitize(str(storage_error(exc, "list", self.LOCATION)))
        assert "s3cr3t-Value-123" not in message
        assert "***" in message


def manifest_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "created_at": "2026-11-29T03:00:00.000000+00:00",
        "schema_digest": "sha256:" + "a" * 64,
        "source_digest": "sha256:" + "b" * 64,
        "policy_sha256": "c" * 64,
        "server_version": "15.18",
        "server_major": 15,
        "pgparity_version": "0.1.0",
        "tables": [
            {"schema": "public", "name": "t", "columns": ["id"], "rows": 3,
             "file": "data/000001.copy.gz"}
        ],
        "sequences": [{"name": "public.t_id_seq", "value": 3, "called": True}],
        "files": [
            {"path": "schema.dump", "sha256": "d" * 64, "bytes": 10},
            {"path": "data/000001.copy.gz", "sha256": "e" * 64, "bytes": 20},
        ],
    }  # fmt: skip
    return doc | changes


class TestManifests:
    def test_round_trip(self) -> None:
        manifest = parse_manifest(json.dumps(manifest_doc()).encode(), "m")
        assert manifest.rows == {"public.t": 3}
        assert manifest.size == 30
        assert parse_manifest(manifest.to_json(), "m") == manifest

    @pytest.mark.parametrize(
        ("change", "needle"),
        [
            ({"version": 1}, "unsupported manifest"),
            ({"server_major": "15"}, "malformed field"),
            ({"server_major": True}, "malformed field"),
            ({"tables": [{"schema": "public"}]}, "malformed field"),
            ({"files": [{"path": "../x", "sha256": "d" * 64, "bytes": 1}]}, "malformed file"),
            ({"files": [{"path": "/etc/passwd", "sha256": "d" * 64, "bytes": 1}]}, "malformed"),
            ({"files": [{"path": "schema.dump", "sha256": "XYZ", "bytes": 1}]}, "malformed"),
            ({"files": [{"path": "schema.dump", "sha256": "d" * 64, "bytes": -1}]}, "malformed"),
            ({"files": [{"path": "data/000001.copy.gz", "sha256": "e" * 64, "bytes": 1}]},
             "no schema.dump"),
            ({"files": [{"path": "schema.dump", "sha256": "d" * 64, "bytes": 1}]},
             "no data file listed for public.t"),
        ],
    )  # fmt: skip
    def test_refused(self, change: dict[str, Any], needle: str) -> None:
        with pytest.raises(UsageError) as caught:
            parse_manifest(json.dumps(manifest_doc(**change)).encode(), "s3://b/a/manifest.json")
        assert needle in str(caught.value)

    @pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe", b"[]", b"null"])
    def test_unreadable(self, data: bytes) -> None:
        with pytest.raises(UsageError):
            parse_manifest(data, "m")


class TestSeedJobArchiveSource:
    CLONE = CloneRef("shop", "team-a", "uid-1")

    def job(self, archive: dict[str, Any]) -> dict[str, Any]:
        spec = StagingCloneSpec.parse({"provider": "builtin", "source": {"archive": archive}})
        return build_seed_job(self.CLONE, spec, "pgparity:test")

    def container(self, job: dict[str, Any]) -> dict[str, Any]:
        return dict(job["spec"]["template"]["spec"]["containers"][0])

    @pytest.mark.parametrize(
        ("url", "scheme"),
        [("s3://acme-pgparity/orders/latest.pgparity", Scheme.S3),
         ("gs://acme/orders/latest", Scheme.GCS), ("az://archives/orders/latest", Scheme.AZURE)],
    )  # fmt: skip
    def test_credentials_come_from_the_secret_as_environment(
        self, url: str, scheme: Scheme
    ) -> None:
        container = self.container(self.job({"url": url, "secretRef": {"name": "store-creds"}}))
        assert container["command"] == ["pgparity", "restore", "--archive", url, "--replace"]
        refs = {
            e["name"]: e["valueFrom"]["secretKeyRef"]
            for e in container["env"]
            if e["name"] != "PGPARITY_TARGET_DSN"
        }
        assert list(refs) == list(CREDENTIAL_VARIABLES[scheme])
        for name, ref in refs.items():
            assert ref == {"name": "store-creds", "key": name, "optional": True}
        assert "envFrom" not in container  # no other key of the Secret reaches the Job

    def test_without_a_secret_the_jobs_own_identity_is_used(self) -> None:
        container = self.container(self.job({"url": "s3://acme-pgparity/orders/latest"}))
        assert [e["name"] for e in container["env"]] == ["PGPARITY_TARGET_DSN"]

    def test_claims_keep_their_path(self) -> None:
        job = self.job(
            {"url": "file:///archives/shop", "claimName": "archives", "secretRef": {"name": "x"}}
        )
        container = self.container(job)
        assert container["command"][3] == "/archives/shop"
        assert [e["name"] for e in container["env"]] == ["PGPARITY_TARGET_DSN"]
