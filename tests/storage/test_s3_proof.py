"""The proof of stored bytes each server gives, learnt once per bucket: no second transfer where the server
itself refuses bad bytes (Ceph RGW: Content-MD5), a re-read where it refuses nothing (moto)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from typing import Any

import pytest

from storage.objects import VerificationFailed
from storage.s3_proof import RECORD_KEY, multipart_etag
from storage.s3_store import S3Store
from tests.fixtures.rgw import RgwServer, rgw_bucket

PART = 5 * 1024 * 1024
SIZES = [1000, 2 * PART + 11]


def _data(size: int, seed: int) -> bytes:
    return hashlib.shake_256(f"proof-{seed}".encode()).digest(size)


@pytest.fixture(params=["moto", "rgw"])
def server(request: pytest.FixtureRequest) -> tuple[str, str, Any]:
    """(name, a fresh bucket's storage URL, a raw client) on moto or on RGW."""
    if request.param == "rgw":
        rgw: RgwServer = request.getfixturevalue("rgw")
        return "rgw", rgw.bucket_url(rgw_bucket()), rgw.client()
    return "moto", request.getfixturevalue("s3_bucket_url"), request.getfixturevalue("s3_client")


def _calls(store: S3Store, *operations: str) -> list[str]:
    seen: list[str] = []
    for op in operations:
        store.client.meta.events.register(f"before-call.s3.{op}", lambda model, **_: seen.append(model.name))
    return seen


def test_the_proof_is_learnt_once_and_recorded_in_the_bucket(server: tuple[str, str, Any]) -> None:
    name, url, client = server
    store = S3Store(url, part_size=PART)
    store.ensure_ready()
    expected = {"rgw": "md5", "moto": "reread"}[name]
    assert store.integrity_proof() == expected
    record = json.loads(client.get_object(Bucket=store.bucket, Key=RECORD_KEY)["Body"].read())
    assert record["proof"] == expected
    probes = [o["Key"] for o in client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    assert probes == [RECORD_KEY]  # the probe objects are gone

    again = S3Store(url, part_size=PART)
    puts = _calls(again, "PutObject")
    again.ensure_ready()
    assert again.integrity_proof() == expected and puts == []  # read back, not probed again


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("known", [False, True])
def test_rgw_verifies_by_md5_without_reading_the_object_back(rgw: RgwServer, size: int, known: bool) -> None:
    store = S3Store(rgw.bucket_url(rgw_bucket()), part_size=PART)
    store.ensure_ready()
    data = _data(size, seed=size)
    sha = hashlib.sha256(data).hexdigest()
    reads = _calls(store, "GetObject")

    got = store.put(io.BytesIO(data), expected_sha256=sha if known else None)

    assert got.created and got.sha256 == sha
    assert reads == []  # the proof cost no second transfer
    head = rgw.client().head_object(Bucket=store.bucket, Key=got.key)
    parts = [hashlib.md5(data[i : i + PART]).digest() for i in range(0, size, PART)]
    expected_etag = hashlib.md5(data).hexdigest() if size <= PART else multipart_etag(parts)
    assert head["ETag"].strip('"') == expected_etag
    assert store.verify(sha)  # and the bytes are really there


def _corrupt_in_flight(request: Any, **_: Any) -> None:
    body = request.body
    raw = body.read() if hasattr(body, "read") else bytes(body)
    altered = bytearray(raw)
    altered[len(altered) // 2] ^= 0xFF
    request.body = bytes(altered)


@pytest.mark.parametrize(("size", "operation"), [(1000, "PutObject"), (2 * PART + 11, "UploadPart")])
def test_rgw_refuses_bytes_corrupted_in_flight(rgw: RgwServer, size: int, operation: str) -> None:
    store = S3Store(rgw.bucket_url(rgw_bucket()), part_size=PART)
    store.ensure_ready()
    data = _data(size, seed=7)
    store.client.meta.events.register(f"before-send.s3.{operation}", _corrupt_in_flight)
    with pytest.raises(VerificationFailed, match="refused the bytes"):
        store.put(io.BytesIO(data), expected_sha256=hashlib.sha256(data).hexdigest())
    assert store.head(hashlib.sha256(data).hexdigest()) is None
    uploads = rgw.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert uploads == []


def test_moto_single_objects_are_still_read_back(s3_bucket_url: str) -> None:
    store = S3Store(s3_bucket_url, part_size=PART)
    store.ensure_ready()
    reads = _calls(store, "GetObject")
    store.put(io.BytesIO(_data(1000, seed=9)))
    assert reads == ["GetObject"]  # moto accepts any checksum: only a re-read proves the bytes


def test_rgw_puts_in_one_pass_with_md5_parts_only(rgw: RgwServer) -> None:
    """RGW ignores ChecksumSHA256 and copies by manifest: no hashing first, no part SHA-256, Content-MD5 each."""
    store = S3Store(rgw.bucket_url(rgw_bucket()), part_size=PART)
    store.ensure_ready()
    assert store.prefers_known_digest is False
    headers: list[dict[str, str]] = []

    def seen(request: Any, **_: Any) -> None:
        headers.append({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    store.client.meta.events.register("before-send.s3.UploadPart", seen)
    data = _data(3 * PART + 5, seed=11)
    sha = hashlib.sha256(data).hexdigest()

    got = store.put(io.BytesIO(data))

    assert got.created and got.sha256 == sha and store.verify(sha)
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    # parts go out concurrently, so compare as sets
    assert {h["content-md5"] for h in headers} == {base64.b64encode(hashlib.md5(p).digest()).decode() for p in parts}
    assert len(headers) == 4
    assert not [k for h in headers for k in h if k.startswith("x-amz-checksum") or k == "x-amz-sdk-checksum-algorithm"]
    keys = [o["Key"] for o in rgw.client().list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    assert keys == [RECORD_KEY, got.key]  # the temporary object is gone


def test_moto_still_hashes_first_and_sends_part_checksums(s3_bucket_url: str) -> None:
    store = S3Store(s3_bucket_url, part_size=PART)
    store.ensure_ready()
    assert store.prefers_known_digest is True
    sent: list[str] = []

    def seen(request: Any, **_: Any) -> None:
        value = request.headers.get("x-amz-checksum-sha256")
        sent.append(value.decode() if isinstance(value, bytes) else str(value))

    store.client.meta.events.register("before-send.s3.UploadPart", seen)
    data = _data(2 * PART + 1, seed=12)
    store.put(io.BytesIO(data), expected_sha256=hashlib.sha256(data).hexdigest())
    parts = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert sorted(sent) == sorted(base64.b64encode(hashlib.sha256(p).digest()).decode() for p in parts)
