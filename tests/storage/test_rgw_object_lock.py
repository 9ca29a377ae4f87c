"""Object Lock on a real S3 server (Ceph's RADOS Gateway): what the store sets is what protects the evidence.

moto only records retention and holds; RGW enforces them, so these tests try the deletions an insider would.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from storage.s3_store import S3Store
from tests.fixtures.rgw import RgwServer, rgw_bucket

PART = 5 * 1024 * 1024


def _data(size: int, seed: int) -> bytes:
    return hashlib.shake_256(f"rgw-{seed}".encode()).digest(size)


def _locked_store(rgw: RgwServer, mode: str) -> tuple[S3Store, Any]:
    client = rgw.client()
    bucket = rgw_bucket()
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    store = S3Store(rgw.bucket_url(bucket, object_lock_mode=mode), part_size=PART)
    store.ensure_ready()
    return store, client


def _delete_version(client: Any, bucket: str, key: str, version: str) -> str:
    """Try to destroy one stored version; the error code S3 answered, or "deleted"."""
    try:
        client.delete_object(Bucket=bucket, Key=key, VersionId=version)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "deleted"


@pytest.mark.parametrize("size", [1000, 2 * PART + 7])
def test_a_retained_object_cannot_be_deleted_or_shortened(rgw: RgwServer, size: int) -> None:
    store, client = _locked_store(rgw, "COMPLIANCE")
    assert store.object_lock_enabled()
    until = (datetime.now(UTC) + timedelta(days=180)).replace(microsecond=0)
    got = store.put(io.BytesIO(_data(size, seed=size)), retain_until=until)
    assert got.version_id is not None and got.retention_until == until

    retention = client.get_object_retention(Bucket=store.bucket, Key=got.key, VersionId=got.version_id)
    assert retention["Retention"]["Mode"] == "COMPLIANCE"
    assert retention["Retention"]["RetainUntilDate"] == until
    assert _delete_version(client, store.bucket, got.key, got.version_id) == "AccessDenied"
    with pytest.raises(ClientError):  # COMPLIANCE: not even the account may shorten it
        client.put_object_retention(
            Bucket=store.bucket,
            Key=got.key,
            VersionId=got.version_id,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=1)},
        )
    assert store.verify(got.sha256)


def test_a_held_object_survives_the_release_of_another_hold(rgw: RgwServer) -> None:
    store, client = _locked_store(rgw, "GOVERNANCE")
    held = store.put(io.BytesIO(_data(1000, seed=1)))
    released = store.put(io.BytesIO(_data(1000, seed=2)))
    assert held.version_id is not None and released.version_id is not None
    store.set_legal_hold(held.sha256, True)
    store.set_legal_hold(released.sha256, True)
    store.set_legal_hold(released.sha256, False)

    status = client.get_object_legal_hold(Bucket=store.bucket, Key=held.key, VersionId=held.version_id)
    assert status["LegalHold"]["Status"] == "ON"
    assert _delete_version(client, store.bucket, held.key, held.version_id) == "AccessDenied"
    assert _delete_version(client, store.bucket, released.key, released.version_id) == "deleted"
    assert store.verify(held.sha256)
    assert store.head(released.sha256) is None


def test_a_bucket_retaining_every_new_object_gets_no_temporary_objects(rgw: RgwServer) -> None:
    """A default retention rule would keep each temporary ``incoming/`` object: hash first, upload to the final key."""
    client = rgw.client()
    bucket = rgw_bucket()
    client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    client.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    store = S3Store(rgw.bucket_url(bucket, object_lock_mode="GOVERNANCE"), part_size=PART)
    store.ensure_ready()
    assert store.integrity_proof() == "signed" and store.prefers_known_digest is True

    plain, _ = _locked_store(rgw, "GOVERNANCE")  # without a default rule a stream's temporary key is deleted
    assert plain.prefers_known_digest is False  # it hashes as it sends, to a temporary key it then deletes
    data = _data(2 * PART + 3, seed=21)
    got = plain.put(io.BytesIO(data), retain_until=datetime.now(UTC) + timedelta(days=1))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=plain.bucket).get("Contents", [])]
    assert [k for k in keys if "incoming/" in k] == [] and got.key in keys
