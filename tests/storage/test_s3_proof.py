"""The proof of stored bytes each server gives, learnt once per bucket: no second transfer where the server
itself refuses bad bytes (Ceph RGW: signed payloads, or Content-MD5 in a bucket recorded so), a re-read where it
refuses nothing (moto)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes

from ingest.reader import CountingReader
from storage import s3_signed
from storage.objects import DigestMismatch, StoreError, VerificationFailed
from storage.s3_proof import PROOFS, RECORD_KEY, Turncoat, multipart_etag
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
    expected = {"rgw": "signed", "moto": "reread"}[name]
    assert store.integrity_proof() == expected
    record = json.loads(client.get_object(Bucket=store.bucket, Key=RECORD_KEY)["Body"].read())
    assert record["proof"] == expected and record["tried"] == list(PROOFS)
    probes = [o["Key"] for o in client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]
    assert probes == [RECORD_KEY]  # the probe objects are gone

    again = S3Store(url, part_size=PART)
    puts = _calls(again, "PutObject")
    again.ensure_ready()
    assert again.integrity_proof() == expected and puts == []  # read back, not probed again


def _md5_store(rgw: RgwServer) -> S3Store:
    """A store on an RGW bucket whose record says ``md5`` (as learnt before ``signed`` existed, probed since)."""
    bucket = rgw_bucket()
    client = rgw.client()
    client.create_bucket(Bucket=bucket)
    record = {"proof": "md5", "tried": list(PROOFS)}
    client.put_object(Bucket=bucket, Key=RECORD_KEY, Body=json.dumps(record).encode())
    store = S3Store(rgw.bucket_url(bucket), part_size=PART)
    store.ensure_ready()
    assert store.integrity_proof() == "md5"
    return store


@pytest.mark.parametrize(("name", "old", "learnt"), [("rgw", "md5", "signed"), ("moto", "reread", "reread")])
def test_a_record_older_than_the_signed_proof_is_probed_once_more(
    name: str, old: str, learnt: str, request: pytest.FixtureRequest
) -> None:
    if name == "rgw":
        rgw: RgwServer = request.getfixturevalue("rgw")
        bucket, client = rgw_bucket(), rgw.client()
        url = rgw.bucket_url(bucket)
    else:
        url, client = request.getfixturevalue("s3_bucket_url"), request.getfixturevalue("s3_client")
        bucket = url.split("?")[0].removeprefix("s3://")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key=RECORD_KEY, Body=json.dumps({"proof": old}).encode())
    store = S3Store(url, part_size=PART)
    store.ensure_ready()
    assert store.integrity_proof() == learnt
    record = json.loads(client.get_object(Bucket=bucket, Key=RECORD_KEY)["Body"].read())
    assert record["proof"] == learnt and record["tried"] == list(PROOFS)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("known", [False, True])
def test_rgw_verifies_by_md5_without_reading_the_object_back(rgw: RgwServer, size: int, known: bool) -> None:
    store = _md5_store(rgw)
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


@pytest.mark.parametrize("proof", ["signed", "md5"])
@pytest.mark.parametrize(
    ("size", "operation", "from_file"),
    [(1000, "PutObject", False), (2 * PART + 11, "UploadPart", False), (2 * PART + 11, "PutObject", True)],
)
def test_rgw_refuses_bytes_corrupted_in_flight(
    rgw: RgwServer, proof: str, size: int, operation: str, from_file: bool, tmp_path: Path
) -> None:
    if from_file and proof == "md5":
        operation = "UploadPart"  # under md5 a file goes up in parts; one PutObject is the signed proof's way
    store = _md5_store(rgw) if proof == "md5" else S3Store(rgw.bucket_url(rgw_bucket()), part_size=PART)
    store.ensure_ready()
    assert store.integrity_proof() == proof
    data = _data(size, seed=7)
    store.client.meta.events.register(f"before-send.s3.{operation}", _corrupt_in_flight)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    with pytest.raises(VerificationFailed, match="refused the bytes"), open(path, "rb") as f:
        store.put(f if from_file else io.BytesIO(data), expected_sha256=hashlib.sha256(data).hexdigest())
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
    store = _md5_store(rgw)
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
    assert _keys(rgw, store) == [RECORD_KEY, got.key]  # the temporary object is gone


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


def _signing_client(url: str) -> Any:
    return S3Store(url)._make_client(sign_payload=True)


@pytest.mark.parametrize("name", ["rgw", "rgw-tls", "moto"])
def test_a_body_that_changes_between_signing_and_sending_is_refused_only_by_a_server_that_checks(
    name: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The signed probe, against real servers: botocore hashes the body, seeks back, sends other bytes."""
    if name.startswith("rgw"):
        rgw: RgwServer = request.getfixturevalue("rgw")
        raw = rgw.client()
        if name == "rgw-tls":  # over HTTPS botocore would send UNSIGNED-PAYLOAD unless asked to sign
            monkeypatch.setenv("AWS_CA_BUNDLE", rgw.ca_bundle)
            url = rgw.bucket_url(rgw_bucket()).replace(rgw.endpoint, rgw.tls_endpoint)
        else:
            url = rgw.bucket_url(rgw_bucket())
    else:
        url, raw = request.getfixturevalue("s3_bucket_url"), request.getfixturevalue("s3_client")
    client = _signing_client(url)
    bucket = url.split("?")[0].removeprefix("s3://")
    client.create_bucket(Bucket=bucket)
    signed: list[Any] = []
    client.meta.events.register(
        "before-send.s3.PutObject", lambda request, **_: signed.append(request.headers["X-Amz-Content-SHA256"])
    )
    first, second = b"the bytes that were signed\n", b"THE BYTES THAT WERE SIGNED\n"

    def put() -> None:
        client.put_object(Bucket=bucket, Key="probe", Body=Turncoat(first, second), ContentLength=len(first))

    if name == "moto":
        put()  # moto stores the other bytes under the first ones' signature
        assert raw.get_object(Bucket=bucket, Key="probe")["Body"].read() == second
    else:
        with pytest.raises(Exception, match="XAmzContentSHA256Mismatch"):
            put()
        assert raw.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    assert [s.decode() if isinstance(s, bytes) else s for s in signed] == [hashlib.sha256(first).hexdigest()]
    store = S3Store(url)
    store.ensure_ready()
    assert store.integrity_proof() == ("reread" if name == "moto" else "signed")


def _headers(store: S3Store, operation: str) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []

    def record(request: Any, **_: Any) -> None:
        seen.append({k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})

    store.client.meta.events.register(f"before-send.s3.{operation}", record)
    return seen


def _keys(rgw: RgwServer, store: S3Store) -> list[str]:
    """Every key in the store's bucket, read behind the store's back."""
    return [o["Key"] for o in rgw.client().list_objects_v2(Bucket=store.bucket).get("Contents", [])]


def _signed_store_and_file(
    rgw: RgwServer, tmp_path: Path, size: int, seed: int, *, parted: bool = False
) -> tuple[S3Store, bytes, Path]:
    """A store on a fresh RGW bucket (the ``signed`` proof) and a file of ``size`` bytes to put in it.

    ``parted`` makes the store send files above two parts of 5 MiB in signed parts, so that the parted paths
    are reached with files of a few MiB rather than the production threshold of 128 MiB.
    """
    store = S3Store(rgw.bucket_url(rgw_bucket()), part_size=PART)
    if parted:
        store.signed_part_size, store.signed_parts_from = PART, 2 * PART
    store.ensure_ready()
    data = _data(size, seed=seed)
    path = tmp_path / "clip.mp4"
    path.write_bytes(data)
    return store, data, path


def test_rgw_takes_a_file_in_one_put_to_its_address_signed_with_the_digest_of_a_local_pass(
    rgw: RgwServer, tmp_path: Path
) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 3 * PART + 5, seed=31)
    # No default retention: the store hashes by itself, first (one PutObject) or while it sends (parts)
    assert store.integrity_proof() == "signed" and store.prefers_known_digest is False
    sha = hashlib.sha256(data).hexdigest()
    puts, parts, reads = _headers(store, "PutObject"), _headers(store, "UploadPart"), _calls(store, "GetObject")
    copies = _calls(store, "CopyObject")
    progress: list[int] = []

    with open(path, "rb") as f:
        got = store.put(f, extra_digests=("sm3",), progress=progress.append)

    sm3 = hashes.Hash(hashes.SM3())
    sm3.update(data)
    assert got.created and got.sha256 == sha and got.size == len(data)
    assert got.extra_digests == {"sm3": sm3.finalize().hex()}
    assert sum(progress) == len(data)  # the send, once
    assert parts == [] and reads == [] and copies == []  # one request, no copy, no second transfer to prove it
    assert [(h["x-amz-content-sha256"], h["if-none-match"]) for h in puts] == [(sha, "*")]
    assert not [k for h in puts for k in h if k == "content-md5" or k.startswith("x-amz-checksum")]
    raw = rgw.client()
    assert raw.head_object(Bucket=store.bucket, Key=got.key)["ETag"].strip('"') == hashlib.md5(data).hexdigest()
    keys = _keys(rgw, store)
    assert keys == [RECORD_KEY, got.key]  # straight to its address: no temporary object ever
    assert store.verify(sha)

    with open(path, "rb") as f:  # the same bytes again: found at their address before any upload
        again = store.put(f, extra_digests=("sm3",))
    assert not again.created and again.sha256 == sha and again.extra_digests == got.extra_digests
    assert len(puts) == 1
    assert _keys(rgw, store) == keys


def test_rgw_refuses_bytes_that_do_not_have_the_digest_a_caller_claimed(rgw: RgwServer, tmp_path: Path) -> None:
    """The claim is what the request is signed with: the server itself refuses other bytes, nothing is stored."""
    store, data, path = _signed_store_and_file(rgw, tmp_path, 2 * PART + 3, seed=34)
    claim = hashlib.sha256(b"other bytes").hexdigest()
    puts = _headers(store, "PutObject")

    with open(path, "rb") as f, pytest.raises(DigestMismatch):
        store.put(f, expected_sha256=claim)

    assert [h["x-amz-content-sha256"] for h in puts] == [claim]  # sent, and refused by the server
    assert store.head(claim) is None and store.head(hashlib.sha256(data).hexdigest()) is None
    assert _keys(rgw, store) == [RECORD_KEY]


def test_a_known_digest_body_is_never_sent_under_another_payload_digest(rgw: RgwServer, tmp_path: Path) -> None:
    """Without our signer botocore hashes the body itself: the server would then check ITS digest, not the
    claim, so the request must not go out at all."""
    store, _, path = _signed_store_and_file(rgw, tmp_path, 2 * PART + 5, seed=36)
    store.client.meta.events.unregister("choose-signer.s3.PutObject", s3_signed.choose_signer)
    claim = hashlib.sha256(b"other bytes").hexdigest()
    puts = _headers(store, "PutObject")  # heard after the guard, so only by requests that go out

    with open(path, "rb") as f, pytest.raises(StoreError, match="refusing to send"):
        store.put(f, expected_sha256=claim)

    assert puts == []  # not a byte went out
    assert _keys(rgw, store) == [RECORD_KEY]


def test_rgw_never_stores_a_file_that_grew_after_it_was_hashed(rgw: RgwServer, tmp_path: Path) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 2 * PART + 11, seed=35)

    def writer_appends(_sent: int) -> None:  # once the hash pass is over and the send has begun
        if path.stat().st_size == len(data):
            with open(path, "ab") as w:
                w.write(b"more")

    with open(path, "rb") as f, pytest.raises(OSError, match="grew"):
        store.put(f, progress=writer_appends)
    assert store.head(hashlib.sha256(data).hexdigest()) is None  # its last bytes never went out
    assert _keys(rgw, store) == [RECORD_KEY]


def test_rgw_refuses_a_file_that_changed_between_the_hash_pass_and_the_send_pass(
    rgw: RgwServer, tmp_path: Path
) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 2 * PART + 7, seed=32)
    changed = bytes(b ^ 0x5A for b in data[:100])

    def writer_strikes(done: int) -> None:  # once the first pass (botocore's hash pass) has read it all
        if done == len(data) and path.read_bytes()[:100] != changed:
            with open(path, "r+b") as w:
                w.write(changed)

    with open(path, "rb") as raw_file, pytest.raises(VerificationFailed, match="refused the bytes"):
        store.put(CountingReader(raw_file, writer_strikes, limit=len(data) + 1))  # type: ignore[arg-type]
    assert _keys(rgw, store) == [RECORD_KEY]  # neither version landed, not even on a temporary key
    assert store.head(hashlib.sha256(data).hexdigest()) is None


def test_rgw_signed_parts_carry_no_md5_and_the_assembly_is_checked(rgw: RgwServer) -> None:
    """A stream (no file to read twice) goes up in signed parts; the ETag made of the parts' ETags is checked."""
    store = S3Store(rgw.bucket_url(rgw_bucket()), part_size=PART)
    store.ensure_ready()
    parts = _headers(store, "UploadPart")
    data = _data(2 * PART + 9, seed=33)
    got = store.put(io.BytesIO(data))
    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert sorted(h["x-amz-content-sha256"] for h in parts) == sorted(hashlib.sha256(c).hexdigest() for c in chunks)
    assert not [k for h in parts for k in h if k == "content-md5" or k.startswith("x-amz-checksum")]
    head = rgw.client().head_object(Bucket=store.bucket, Key=got.key)
    assert head["ETag"].strip('"') == multipart_etag([hashlib.md5(c).digest() for c in chunks])
    assert store.verify(got.sha256)


def test_rgw_takes_a_large_file_hashed_first_in_parts_signed_with_the_digests_of_its_one_hash_pass(
    rgw: RgwServer, tmp_path: Path
) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 3 * PART + 5, seed=37, parted=True)
    sha = hashlib.sha256(data).hexdigest()
    puts, parts, reads = _headers(store, "PutObject"), _headers(store, "UploadPart"), _calls(store, "GetObject")
    progress: list[int] = []

    with open(path, "rb") as raw_file:
        f = CountingReader(raw_file, limit=len(data) + 1)
        # as ingest.transfer does where the bucket retains every new object: the pass, then the put with its digest
        assert store.hash_first(f) == sha  # type: ignore[arg-type]
        f.seek(0)
        got = store.put(f, expected_sha256=sha, progress=progress.append)  # type: ignore[arg-type]
        assert f.bytes_read == len(data)

    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert got.created and got.sha256 == sha and got.size == len(data) and got.key == store.key(sha)
    assert puts == [] and reads == [] and sum(progress) == len(data)
    assert sorted(h["x-amz-content-sha256"] for h in parts) == sorted(hashlib.sha256(c).hexdigest() for c in chunks)
    assert not [k for h in parts for k in h if k == "content-md5" or k.startswith("x-amz-checksum")]
    raw = rgw.client()
    head = raw.head_object(Bucket=store.bucket, Key=got.key)
    assert head["ETag"].strip('"') == multipart_etag([hashlib.md5(c).digest() for c in chunks])
    assert raw.get_object(Bucket=store.bucket, Key=got.key)["Body"].read() == data
    assert _keys(rgw, store) == [RECORD_KEY, got.key]  # straight to its address: no temporary object ever
    assert raw.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def _uploaded_to(store: S3Store) -> list[str]:
    """The keys the store starts multipart uploads on."""
    keys: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        keys.append(params["Key"])

    store.client.meta.events.register("provide-client-params.s3.CreateMultipartUpload", record)
    return keys


def test_rgw_sends_the_parts_of_a_large_file_while_hashing_it_then_copies_it_to_its_address(
    rgw: RgwServer, tmp_path: Path
) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 4 * PART + 5, seed=36, parted=True)
    assert store.prefers_known_digest is False  # the store hashes as it sends: a caller's pass would be one read more
    sha = hashlib.sha256(data).hexdigest()
    puts, parts, reads = _headers(store, "PutObject"), _headers(store, "UploadPart"), _calls(store, "GetObject")
    copies, started = _calls(store, "CopyObject"), _uploaded_to(store)
    progress: list[int] = []

    with open(path, "rb") as raw_file:
        f = CountingReader(raw_file, limit=len(data) + 1)
        got = store.put(f, extra_digests=("sm3",), progress=progress.append)  # type: ignore[arg-type]
        assert f.bytes_read == len(data)  # read once by the pass; the parts again by pread, not through it

    sm3 = hashes.Hash(hashes.SM3())
    sm3.update(data)
    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert got.created and got.sha256 == sha and got.size == len(data) and got.key == store.key(sha)
    assert got.extra_digests == {"sm3": sm3.finalize().hex()}
    assert puts == [] and reads == [] and sum(progress) == len(data)  # no second transfer to prove it
    assert sorted(h["x-amz-content-sha256"] for h in parts) == sorted(hashlib.sha256(c).hexdigest() for c in chunks)
    assert not [k for h in parts for k in h if k == "content-md5" or k.startswith("x-amz-checksum")]
    assert [k.split("/")[-2] for k in started] == ["incoming"] and len(copies) == 1
    raw = rgw.client()
    head = raw.head_object(Bucket=store.bucket, Key=got.key)
    assert head["ETag"].strip('"') == multipart_etag([hashlib.md5(c).digest() for c in chunks])
    assert raw.get_object(Bucket=store.bucket, Key=got.key)["Body"].read() == data
    assert _keys(rgw, store) == [RECORD_KEY, got.key]  # the temporary object is gone
    assert raw.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert store.verify(sha)

    with open(path, "rb") as f2:  # the same bytes again: found at their address once hashed, nothing completed
        again = store.put(f2, extra_digests=("sm3",))
    assert not again.created and again.sha256 == sha and again.extra_digests == got.extra_digests
    assert len(copies) == 1 and len(started) == 2
    assert _keys(rgw, store) == [RECORD_KEY, got.key]
    assert raw.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []  # aborted


def test_rgw_refuses_a_part_changed_after_the_pass_that_sends_while_hashing_read_it(
    rgw: RgwServer, tmp_path: Path
) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 3 * PART + 9, seed=40, parted=True)
    parts = _headers(store, "UploadPart")

    def writer_strikes(done: int) -> None:  # the pass has read (and hashed) it all; the last part is not sent yet
        if done == len(data):
            with open(path, "r+b") as w:
                w.seek(3 * PART + 2)
                w.write(bytes([data[3 * PART + 2] ^ 0x01]))

    with open(path, "rb") as raw_file, pytest.raises(OSError, match="changed after it was hashed"):
        store.put(CountingReader(raw_file, writer_strikes, limit=len(data) + 1))  # type: ignore[arg-type]
    assert len(parts) >= 4  # the last part went out signed with the pass's digest, and the server refused it
    assert store.head(hashlib.sha256(data).hexdigest()) is None
    assert _keys(rgw, store) == [RECORD_KEY]  # nothing under any key, temporary or final
    assert rgw.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []  # aborted


def test_a_hash_pass_whose_digest_is_no_longer_wanted_stops_where_it_is(rgw: RgwServer, tmp_path: Path) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 4 * PART + 1, seed=41, parted=True)
    asked: list[int] = []

    def cancel() -> bool:
        asked.append(1)
        return len(asked) > 1  # the answer came while the first buffer was being hashed

    with open(path, "rb") as raw_file:
        f = CountingReader(raw_file, limit=len(data) + 1)
        assert store.hash_first(f, cancel=cancel) is None  # type: ignore[arg-type]
        assert 0 < f.bytes_read < len(data)
    assert store._pass_parts == {}  # nothing kept for a put that will not use it


def test_rgw_refuses_a_part_that_changed_after_the_hash_pass_and_nothing_lands(rgw: RgwServer, tmp_path: Path) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 3 * PART + 9, seed=38, parted=True)
    parts = _headers(store, "UploadPart")

    with open(path, "rb") as f:
        sha = store.hash_first(f)
        assert sha is not None
        f.seek(0)
        with open(path, "r+b") as w:  # same size, one byte of the third part flipped
            w.seek(2 * PART + 1)
            w.write(bytes([data[2 * PART + 1] ^ 0x01]))
        with pytest.raises(DigestMismatch, match="the hash pass"):
            store.put(f, expected_sha256=sha)

    assert parts  # sent, signed with the pass's digests, and refused by the server
    assert store.head(sha) is None
    assert _keys(rgw, store) == [RECORD_KEY]
    assert rgw.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []  # aborted


def test_rgw_never_completes_a_parted_upload_of_a_file_that_grew_after_its_hash_pass(
    rgw: RgwServer, tmp_path: Path
) -> None:
    store, data, path = _signed_store_and_file(rgw, tmp_path, 3 * PART + 3, seed=39, parted=True)

    def writer_appends(_sent: int) -> None:  # once the pass is over and the parts are on their way
        if path.stat().st_size == len(data):
            with open(path, "ab") as w:
                w.write(b"more")

    with open(path, "rb") as f, pytest.raises(OSError, match="grew"):
        store.put(f, progress=writer_appends)
    assert store.head(hashlib.sha256(data).hexdigest()) is None
    assert _keys(rgw, store) == [RECORD_KEY]
    assert rgw.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []  # aborted
