"""One conformance suite for every object store (SPEC §5): local on tmp_path, S3 against moto's HTTP server and
against a real Ceph RADOS Gateway."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes

from storage.local_store import LocalStore
from storage.objects import DigestMismatch, ObjectMissing, ObjectStore, StoreError, StoreUnavailable, object_key
from storage.s3_store import S3Store
from tests.fixtures.rgw import RgwServer, rgw_bucket
from tests.fixtures.s3 import free_port

PART = 5 * 1024 * 1024  # S3's minimum part size keeps multipart tests quick
SMALL = 1000
LARGE = 12 * 1024 * 1024 + 3  # three parts, the last one short


@dataclass
class Backend:
    """A store plus ways to look behind its back."""

    name: str
    store: ObjectStore
    corrupt: Callable[[str, bytes], None]  # replace an object's stored bytes
    leftovers: Callable[[], list[str]]  # temporary files, keys or unfinished uploads
    fingerprint: Callable[[str], Any]  # changes whenever the stored object is rewritten
    writes: list[str] = field(default_factory=list)


def _local(tmp_path: Path) -> Backend:
    root = tmp_path / "objects"
    store = LocalStore(f"file://{root}")
    store.ensure_ready()

    def corrupt(sha: str, other: bytes) -> None:
        path = root / object_key(sha)
        path.chmod(0o644)
        path.write_bytes(other)

    def fingerprint(sha: str) -> Any:
        st = (root / object_key(sha)).stat()
        return (st.st_ino, st.st_mtime_ns)

    return Backend(
        "local", store, corrupt, lambda: [p.name for p in (root / ".incoming").iterdir()], fingerprint=fingerprint
    )


def _s3(url: str, client: Any, name: str = "s3") -> Backend:
    store = S3Store(url, part_size=PART)
    store.ensure_ready()
    bucket = store.bucket
    writes: list[str] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        writes.append(f"{model.name} {params['url_path']}")

    for op in ("PutObject", "UploadPart", "CompleteMultipartUpload", "CopyObject", "UploadPartCopy"):
        store.client.meta.events.register(f"before-call.s3.{op}", record)

    def corrupt(sha: str, other: bytes) -> None:
        client.put_object(Bucket=bucket, Key=store.key(sha), Body=other)

    def leftovers() -> list[str]:
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="incoming/").get("Contents", [])]
        uploads = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
        return keys + [f"upload:{k}" for k in uploads]

    def fingerprint(sha: str) -> Any:
        key = store.key(sha)
        head = client.head_object(Bucket=bucket, Key=key)
        return (head["ETag"], head["LastModified"], sum(1 for w in writes if w.endswith(key)))

    return Backend(name, store, corrupt, leftovers, fingerprint, writes)


@pytest.fixture(params=["local", "s3", "rgw"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "local":
        return _local(tmp_path)
    if request.param == "rgw":
        server: RgwServer = request.getfixturevalue("rgw")
        return _s3(server.bucket_url(rgw_bucket()), server.client(), name="rgw")
    return _s3(request.getfixturevalue("s3_bucket_url"), request.getfixturevalue("s3_client"))


def _data(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"bwc-{seed}".encode()).digest(size) if size else b""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sm3(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def _read_all(chunks: Iterator[bytes]) -> bytes:
    return b"".join(chunks)


@pytest.mark.parametrize("size", [0, SMALL, PART, 2 * PART, LARGE])
def test_put_stores_verified_content_under_its_address(backend: Backend, size: int) -> None:
    data = _data(size)
    seen: list[int] = []
    got = backend.store.put(io.BytesIO(data), progress=seen.append)
    sha = _sha(data)
    assert (got.sha256, got.size, got.created) == (sha, size, True)
    assert got.key.endswith(f"sha256/{sha[:2]}/{sha[2:4]}/{sha}")
    assert sum(seen) == size
    info = backend.store.head(sha)
    assert info is not None and info.size == size and info.key == got.key
    assert _read_all(backend.store.read(sha)) == data
    assert backend.store.verify(sha)
    assert backend.leftovers() == []


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("known", [False, True])
def test_second_put_of_same_bytes_is_not_a_new_object(backend: Backend, size: int, known: bool) -> None:
    data = _data(size, seed=1)
    sha = _sha(data)
    first = backend.store.put(io.BytesIO(data))
    before = backend.fingerprint(sha)
    again = backend.store.put(io.BytesIO(data), expected_sha256=sha if known else None)
    assert first.created and not again.created
    assert (again.sha256, again.size, again.key) == (sha, size, first.key)
    assert backend.fingerprint(sha) == before  # not rewritten
    assert _read_all(backend.store.read(sha)) == data
    assert backend.leftovers() == []


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_digest_mismatch_stores_nothing(backend: Backend, size: int) -> None:
    data = _data(size, seed=2)
    claimed = _sha(b"other bytes")
    with pytest.raises(DigestMismatch):
        backend.store.put(io.BytesIO(data), expected_sha256=claimed)
    assert backend.store.head(claimed) is None
    assert backend.store.head(_sha(data)) is None
    assert backend.leftovers() == []


def test_expected_digest_in_upper_case_is_accepted(backend: Backend) -> None:
    data = _data(SMALL, seed=3)
    got = backend.store.put(io.BytesIO(data), expected_sha256=_sha(data).upper())
    assert got.created and got.sha256 == _sha(data)


def test_ranged_reads_are_inclusive_and_cross_chunk_boundaries(backend: Backend) -> None:
    data = _data(LARGE, seed=4)
    sha = backend.store.put(io.BytesIO(data)).sha256
    for start, end in [(0, 0), (5, 9), (PART - 3, PART + 3), (LARGE - 10, LARGE - 1), (0, LARGE - 1)]:
        assert _read_all(backend.store.read(sha, start, end)) == data[start : end + 1], (start, end)
    assert _read_all(backend.store.read(sha, LARGE - 7)) == data[-7:]
    assert max(len(c) for c in backend.store.read(sha)) <= 8 * 1024 * 1024  # streamed, not whole


def test_verify_fails_once_stored_bytes_change_behind_the_store(backend: Backend) -> None:
    data = _data(SMALL, seed=5)
    sha = backend.store.put(io.BytesIO(data)).sha256
    assert backend.store.verify(sha)
    backend.corrupt(sha, data[:-1] + bytes([data[-1] ^ 1]))
    assert not backend.store.verify(sha)


def test_missing_object(backend: Backend) -> None:
    sha = _sha(b"never stored")
    assert backend.store.head(sha) is None
    assert not backend.store.verify(sha)
    with pytest.raises(ObjectMissing):
        _read_all(backend.store.read(sha))
    with pytest.raises(ObjectMissing):
        backend.store.set_legal_hold(sha, True)


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_sm3_extra_digest_matches_cryptography(backend: Backend, size: int) -> None:
    data = _data(size, seed=6)
    sm3 = hashes.Hash(hashes.SM3())
    sm3.update(data)
    expected = sm3.finalize().hex()
    got = backend.store.put(io.BytesIO(data), extra_digests=["sm3"])
    assert got.extra_digests == {"sm3": expected}
    again = backend.store.put(io.BytesIO(data), expected_sha256=got.sha256, extra_digests=["sm3"])
    assert not again.created and again.extra_digests == {"sm3": expected}


def test_a_store_without_object_lock_says_holds_live_in_the_database(backend: Backend) -> None:
    sha = backend.store.put(io.BytesIO(_data(SMALL, seed=7))).sha256
    backend.store.set_legal_hold(sha, True)  # accepted, but nothing in the store enforces it
    info = backend.store.head(sha)
    assert info is not None and not info.legal_hold
    assert backend.store.holds_in_store() is False
    backend.store.set_legal_hold(sha, False)
    assert backend.store.verify(sha)


def test_a_held_object_cannot_be_deleted_until_released(s3_locked_bucket_url: str, s3_client: Any) -> None:
    store = S3Store(s3_locked_bucket_url, part_size=PART)
    store.ensure_ready()
    got = store.put(io.BytesIO(_data(SMALL, seed=8)))
    assert store.holds_in_store() is True
    store.set_legal_hold(got.sha256, True)
    info = store.head(got.sha256)
    assert info is not None and info.legal_hold

    # neither S3 (Object Lock) nor the store's own delete path lets a held version go
    with pytest.raises(ClientError) as refused:
        s3_client.delete_object(Bucket=store.bucket, Key=got.key, VersionId=got.version_id)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(StoreError, match="legal hold or retention"):
        store._delete(got.key, got.version_id)
    assert store.verify(got.sha256)

    store.set_legal_hold(got.sha256, False)
    s3_client.delete_object(Bucket=store.bucket, Key=got.key, VersionId=got.version_id)
    assert store.head(got.sha256) is None


@pytest.fixture(params=["local", "s3"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        blocker = tmp_path / "not-a-directory"
        blocker.write_bytes(b"")  # nothing can be created beneath a regular file, whoever we run as
        return LocalStore(f"file://{blocker / 'objects'}")
    request.getfixturevalue("s3_endpoint")  # dummy credentials in the environment
    return S3Store(f"s3://bwc-nowhere?endpoint_url=http://127.0.0.1:{free_port()}&max_attempts=1")


def test_unreachable_store_is_unavailable(unreachable: ObjectStore) -> None:
    with pytest.raises(StoreUnavailable):
        unreachable.put(io.BytesIO(_data(SMALL)))
    if isinstance(unreachable, S3Store):
        with pytest.raises(StoreUnavailable):
            unreachable.ensure_ready()
        with pytest.raises(StoreUnavailable):
            unreachable.head(_sha(b"x"))


def test_put_streams_from_a_file(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    data = _data(LARGE, seed=8)
    path.write_bytes(data)
    with open(path, "rb") as f:
        got = backend.store.put(f)
    assert got.sha256 == _sha(data) and got.size == os.path.getsize(path)
    assert backend.store.verify(got.sha256)


@pytest.mark.parametrize("size", [0, SMALL, LARGE])
def test_put_file_stores_a_handed_over_file_verified(backend: Backend, tmp_path: Path, size: int) -> None:
    """A finished upload's part file: stored whole under its digest (the local store takes that very file)."""
    path = tmp_path / "upload.part"
    data = _data(size, seed=9)
    path.write_bytes(data)
    got = backend.store.put_file(path, expected_sha256=_sha(data), extra_digests=("sm3",))
    assert (got.sha256, got.size, got.created) == (_sha(data), size, True)
    assert got.extra_digests["sm3"] == _sm3(data)
    assert _read_all(backend.store.read(got.sha256)) == data and backend.store.verify(got.sha256)
    again = backend.store.put_file(path, expected_sha256=_sha(data))
    assert not again.created and again.key == got.key
    assert backend.leftovers() == []
    if backend.name == "local":
        stored = tmp_path / "objects" / got.key
        assert os.path.samefile(stored, path)  # linked, not copied
        assert stat.S_IMODE(os.stat(stored).st_mode) == 0o444


def test_put_file_with_a_wrong_digest_stores_nothing(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "upload.part"
    data = _data(SMALL, seed=10)
    path.write_bytes(data)
    with pytest.raises(DigestMismatch):
        backend.store.put_file(path, expected_sha256=_sha(b"other bytes"))
    assert backend.store.head(_sha(data)) is None and backend.store.head(_sha(b"other bytes")) is None
    assert path.read_bytes() == data  # the caller's file is left for the caller to remove
    assert backend.leftovers() == []


def test_put_file_with_a_received_digest_that_is_not_the_claim_stores_nothing(backend: Backend, tmp_path: Path) -> None:
    # The upload route hashed what arrived (received_sha256); a claim that differs is refused all the same.
    path = tmp_path / "upload.part"
    data = _data(SMALL, seed=12)
    path.write_bytes(data)
    with pytest.raises(DigestMismatch):
        backend.store.put_file(path, expected_sha256=_sha(b"other bytes"), received_sha256=_sha(data))
    assert backend.store.head(_sha(data)) is None and backend.store.head(_sha(b"other bytes")) is None
    assert backend.leftovers() == []
    got = backend.store.put_file(path, expected_sha256=_sha(data), received_sha256=_sha(data))
    assert got.sha256 == _sha(data) and got.size == len(data)
    assert _read_all(backend.store.read(got.sha256)) == data and backend.store.verify(got.sha256)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a second file system (/dev/shm)")
def test_local_put_file_from_another_file_system_copies(tmp_path: Path) -> None:
    store = LocalStore(f"file://{tmp_path / 'objects'}")
    store.ensure_ready()
    data = _data(SMALL, seed=11)
    with tempfile.NamedTemporaryFile(dir="/dev/shm", suffix=".part") as f:
        f.write(data)
        f.flush()
        got = store.put_file(Path(f.name), expected_sha256=_sha(data))
        assert got.created and not os.path.samefile(tmp_path / "objects" / got.key, f.name)
    assert _read_all(store.read(got.sha256)) == data and store.verify(got.sha256)
    assert list((tmp_path / "objects" / ".incoming").iterdir()) == []
