"""What only the S3 store does: Object Lock, versions, in-flight corruption, bucket set-up, flat memory."""

from __future__ import annotations

import hashlib
import io
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from storage.objects import StoreUnavailable, VerificationFailed, open_store
from storage.s3_proof import RECORD_KEY
from storage.s3_store import S3Store
from storage.s3_support import composite_checksum, parse_s3_url
from tests.fixtures.s3 import free_port

PART = 5 * 1024 * 1024
SMALL = 1000
LARGE = 12 * 1024 * 1024 + 3


def _data(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"s3-{seed}".encode()).digest(size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _store(url: str, **kwargs: Any) -> S3Store:
    store = S3Store(url, part_size=PART, **kwargs)
    store.ensure_ready()
    return store


def _leftovers(client: Any, bucket: str) -> list[str]:
    """Every key and open upload but the bucket's proof record (storage.s3_proof), which belongs there."""
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []) if o["Key"] != RECORD_KEY]
    uploads = [f"upload:{u['Key']}" for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    return keys + uploads


def test_opening_an_s3_store_imports_no_boto3_until_a_request_is_due() -> None:
    """boto3 and its client cost ~0.5 s of CPU: ``bwc ingest`` has them made beside its hash pass, and a command
    that never reaches the store (a file already seen) never pays for them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from storage.objects import open_store\n"
        "store = open_store('s3://evidence?endpoint_url=http://127.0.0.1:9&region=us-east-1')\n"
        "print('boto3' in sys.modules, 'botocore.client' in sys.modules)\n"
        "print(store.client.meta.region_name, 'boto3' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["False False", "us-east-1 True"]


def test_url_parsing_and_no_secret_in_repr() -> None:
    loc = parse_s3_url(
        "s3://evidence/bwc/prod?endpoint_url=http://minio:9000&region=cn-north-1"
        "&aws_access_key_id=AK&aws_secret_access_key=TOPSECRET&object_lock_mode=governance&addressing_style=path"
    )
    assert (loc.bucket, loc.prefix, loc.endpoint_url, loc.region) == (
        "evidence",
        "bwc/prod",
        "http://minio:9000",
        "cn-north-1",
    )
    assert (loc.lock_mode, loc.addressing_style, loc.lock_requested) == ("GOVERNANCE", "path", True)
    assert "TOPSECRET" not in repr(loc)
    with pytest.raises(ValueError):
        parse_s3_url("s3://b?object_lock_mode=NONE")
    with pytest.raises(ValueError):
        parse_s3_url("s3://b?endpoint=http://x")  # misspelt parameter is refused, not ignored


def test_open_store_dispatches_s3(s3_bucket_url: str) -> None:
    assert isinstance(open_store(s3_bucket_url), S3Store)


def test_unavailable_message_names_no_secret(s3_endpoint: str) -> None:
    store = S3Store(
        f"s3://bwc-x?endpoint_url=http://127.0.0.1:{free_port()}&aws_access_key_id=AK"
        "&aws_secret_access_key=TOPSECRET&max_attempts=1"
    )
    with pytest.raises(StoreUnavailable) as err:
        store.put(io.BytesIO(b"x"))
    assert "TOPSECRET" not in str(err.value) and "127.0.0.1" in str(err.value)


def test_ensure_ready_creates_bucket_once_and_detects_lock(s3_bucket_url: str, s3_client: Any) -> None:
    store = S3Store(s3_bucket_url)
    store.ensure_ready()
    store.ensure_ready()
    s3_client.head_bucket(Bucket=store.bucket)
    assert not store.object_lock_enabled()
    locked = S3Store(s3_bucket_url.replace("bwc-test-", "bwc-lock-") + "&object_lock_mode=COMPLIANCE")
    locked.ensure_ready()
    assert locked.object_lock_enabled()


def test_prefix_puts_keys_under_it(s3_bucket_url: str, s3_client: Any) -> None:
    bucket_url, query = s3_bucket_url.split("?", 1)
    store = _store(f"{bucket_url}/site-a/objects?{query}")
    data = _data(SMALL)
    sha = _sha(data)
    got = store.put(io.BytesIO(data))
    assert got.key == f"site-a/objects/sha256/{sha[:2]}/{sha[2:4]}/{sha}"
    keys = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=store.bucket)["Contents"])
    assert keys == ["site-a/objects/bwc-meta/integrity-proof.json", got.key]  # the proof record too
    assert store.verify(sha)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_known_digest_already_stored_uploads_nothing(s3_bucket_url: str, size: int) -> None:
    store = _store(s3_bucket_url)
    data = _data(size, seed=1)
    store.put(io.BytesIO(data))
    sent: list[str] = []
    store.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    again = store.put(io.BytesIO(data), expected_sha256=_sha(data))
    assert not again.created
    assert sent and set(sent) == {"HEAD"}  # only looked; no PUT or POST


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_object_lock_retention_and_version(s3_locked_bucket_url: str, s3_client: Any, size: int) -> None:
    store = _store(s3_locked_bucket_url)
    assert store.object_lock_enabled()
    until = (datetime.now(UTC) + timedelta(days=180)).replace(microsecond=0)
    got = store.put(io.BytesIO(_data(size, seed=2)), retain_until=until)
    assert got.retention_until == until
    assert got.version_id is not None
    head = s3_client.head_object(Bucket=store.bucket, Key=got.key)
    assert head["VersionId"] == got.version_id
    # moto 5 answers GetObjectRetention with a 500 (not implemented); HEAD carries the same two fields.
    assert (head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]) == ("GOVERNANCE", until)
    info = store.head(got.sha256)
    assert info is not None and info.version_id == got.version_id and info.retention_until == until
    assert [k for k in _leftovers(s3_client, store.bucket) if k != got.key] == []


def test_later_retention_extends_an_existing_object(s3_locked_bucket_url: str, s3_client: Any) -> None:
    store = _store(s3_locked_bucket_url)
    data = _data(SMALL, seed=3)
    soon = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    later = soon + timedelta(days=179)
    first = store.put(io.BytesIO(data), retain_until=soon)
    again = store.put(io.BytesIO(data), retain_until=later)
    assert not again.created and again.retention_until == later
    assert s3_client.head_object(Bucket=store.bucket, Key=first.key)["ObjectLockRetainUntilDate"] == later
    earlier = store.put(io.BytesIO(data), retain_until=soon)
    assert earlier.retention_until == later  # never shortened


def test_legal_hold_on_and_off(s3_locked_bucket_url: str, s3_client: Any) -> None:
    store = _store(s3_locked_bucket_url)
    got = store.put(io.BytesIO(_data(SMALL, seed=4)))
    store.set_legal_hold(got.sha256, True)
    assert s3_client.get_object_legal_hold(Bucket=store.bucket, Key=got.key)["LegalHold"]["Status"] == "ON"
    info = store.head(got.sha256)
    assert info is not None and info.legal_hold
    store.set_legal_hold(got.sha256, False)
    assert s3_client.get_object_legal_hold(Bucket=store.bucket, Key=got.key)["LegalHold"]["Status"] == "OFF"
    info = store.head(got.sha256)
    assert info is not None and not info.legal_hold


def test_no_retention_without_object_lock(s3_bucket_url: str) -> None:
    store = _store(s3_bucket_url)
    got = store.put(io.BytesIO(_data(SMALL, seed=5)), retain_until=datetime.now(UTC) + timedelta(days=1))
    assert got.retention_until is None


def _corrupt_in_flight(request: Any, **_: Any) -> None:
    """Flip one byte of the request body after it was hashed and signed: what a bad link or proxy does."""
    body = request.body
    raw = body.read() if hasattr(body, "read") else bytes(body)
    altered = bytearray(raw)
    altered[len(altered) // 2] ^= 0xFF
    request.body = bytes(altered)


@pytest.mark.parametrize(
    ("size", "known", "operation"),
    [
        (SMALL, False, "PutObject"),
        (SMALL, True, "PutObject"),
        (LARGE, True, "UploadPart"),
        (LARGE, False, "UploadPart"),
    ],
)
def test_bytes_corrupted_in_flight_fail_verification(
    s3_bucket_url: str, s3_client: Any, size: int, known: bool, operation: str
) -> None:
    store = _store(s3_bucket_url)
    data = _data(size, seed=6)
    store.client.meta.events.register(f"before-send.s3.{operation}", _corrupt_in_flight)
    with pytest.raises(VerificationFailed):
        store.put(io.BytesIO(data), expected_sha256=_sha(data) if known else None)
    assert store.head(_sha(data)) is None
    assert _leftovers(s3_client, store.bucket) == []


def test_large_copy_goes_part_by_part_with_the_same_boundaries(s3_bucket_url: str, s3_client: Any) -> None:
    store = _store(s3_bucket_url)
    store.copy_limit = PART  # as if the object were over CopyObject's 5 GiB
    data = _data(LARGE, seed=7)
    copies: list[str] = []
    store.client.meta.events.register("before-call.s3.UploadPartCopy", lambda **_: copies.append("part"))
    got = store.put(io.BytesIO(data))
    assert got.created and len(copies) == 3
    head = s3_client.head_object(Bucket=store.bucket, Key=got.key, ChecksumMode="ENABLED")
    parts = [hashlib.sha256(data[i : i + PART]).digest() for i in range(0, LARGE, PART)]
    assert head["ChecksumSHA256"].split("-")[0] == composite_checksum(parts)
    assert store.verify(got.sha256)
    assert _leftovers(s3_client, store.bucket) == [got.key]


def test_memory_stays_flat_for_a_large_file(s3_bucket_url: str, tmp_path: Path) -> None:
    store = _store(s3_bucket_url)
    size = 64 * 1024 * 1024
    path = tmp_path / "big.mp4"
    with open(path, "wb") as f:
        for i in range(size // (1024 * 1024)):
            f.write(_data(1024 * 1024, seed=i))
    tracemalloc.start()
    try:
        with open(path, "rb") as f:
            got = store.put(f)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.size == size and store.verify(got.sha256)
    # At most parts_in_flight + 1 part buffers (4 x 5 MiB) plus small change, whatever the file size.
    assert peak < size // 2, f"peak {peak / 2**20:.1f} MiB while storing {size / 2**20:.0f} MiB"


def test_part_size_grows_for_files_beyond_ten_thousand_parts(s3_bucket_url: str, tmp_path: Path) -> None:
    store = S3Store(s3_bucket_url, part_size=PART)
    sparse = tmp_path / "huge.mp4"
    with open(sparse, "wb") as f:
        f.truncate(100 * 1024**3)  # 100 GiB, sparse: 20,480 parts of 5 MiB would exceed S3's 10,000
    with open(sparse, "rb") as f:
        size = store._part_size_for(f)
    assert size * 10_000 >= 100 * 1024**3 and size % (1024 * 1024) == 0
    assert store._part_size_for(io.BytesIO(b"x")) == PART
