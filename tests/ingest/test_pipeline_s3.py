"""The ingest pipeline against S3 — moto's standalone server and a real Ceph RADOS Gateway, both over HTTP:
stored, deduplicated, and refused when bytes are corrupted on the way."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from config.settings import Settings
from ingest.pipeline import ingest_file
from storage.models import IngestFailure, Recording, Sighting
from storage.runtime import Runtime, build_runtime
from storage.s3_store import S3Store
from tests.fixtures.media import MediaFactory
from tests.fixtures.rgw import RgwServer, rgw_bucket


@pytest.fixture(params=["moto", "rgw"])
def s3_runtime(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Runtime]:
    if request.param == "rgw":
        server: RgwServer = request.getfixturevalue("rgw")
        url = server.bucket_url(rgw_bucket())
    else:
        url = request.getfixturevalue("s3_bucket_url")
    rt = build_runtime(
        Settings(home=settings.home, database_url=settings.database_url, storage_url=url, stable_seconds=0)
    )
    rt.store.ensure_ready()
    rt.settings.inbox_path.mkdir(parents=True, exist_ok=True)
    yield rt
    rt.close()


def _count(rt: Runtime, model: type) -> int:
    with rt.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_ingest_into_s3_stores_once_and_verifies(s3_runtime: Runtime, media: MediaFactory) -> None:
    inbox = s3_runtime.settings.inbox_path
    first = media.make(inbox / "DSJ-A001" / "DSJ-A001_P1001_20240501083000_0001.mp4", seconds=2)
    again = media.make(inbox / "DSJ-A002" / "copy.mp4", seconds=2)  # the same bytes elsewhere
    digest = hashlib.sha256(first.read_bytes()).hexdigest()

    out1 = ingest_file(s3_runtime, inbox, first, "st1")
    out2 = ingest_file(s3_runtime, inbox, again, "st1")

    assert (out1.status, out2.status) == ("stored", "duplicate")
    assert out1.sha256 == digest
    store = s3_runtime.store
    assert isinstance(store, S3Store)
    assert store.verify(digest)
    assert b"".join(store.read(digest)) == first.read_bytes()
    with s3_runtime.sessions() as s:
        rec = s.scalars(select(Recording)).one()
        assert rec.object_key.endswith(f"sha256/{digest[:2]}/{digest[2:4]}/{digest}")
        assert rec.status == "ok" and rec.has_audio and rec.has_video
    assert _count(s3_runtime, Sighting) == 2


def _corrupt(request: Any, **_: Any) -> None:
    body = request.body
    data = body.read() if hasattr(body, "read") else bytes(body)
    if hasattr(body, "seek"):
        body.seek(0)
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    request.body = bytes(flipped)


def test_bytes_corrupted_in_flight_are_refused(s3_runtime: Runtime, media: MediaFactory) -> None:
    inbox = s3_runtime.settings.inbox_path
    src = media.make(inbox / "DSJ-A001" / "DSJ-A001_P1001_20240501083000_0001.mp4", seconds=2)
    original = src.read_bytes()
    store = s3_runtime.store
    assert isinstance(store, S3Store)
    store.client.meta.events.register("before-send.s3.PutObject", _corrupt)

    out = ingest_file(s3_runtime, inbox, src, "st1")

    assert out.status == "failed" and out.reason == "verification_failed"
    assert _count(s3_runtime, Recording) == 0
    assert src.read_bytes() == original  # the source is untouched and will be retried
    assert store.head(hashlib.sha256(original).hexdigest()) is None
    with s3_runtime.sessions() as s:
        failure = s.scalars(select(IngestFailure)).one()
        assert failure.reason == "verification_failed" and failure.resolved_at is None

    store.client.meta.events.unregister("before-send.s3.PutObject", _corrupt)
    retry = ingest_file(s3_runtime, inbox, src, "st1")
    assert retry.status == "stored"
    with s3_runtime.sessions() as s:
        assert s.scalars(select(IngestFailure)).one().resolved_at is not None


def _growing(path: Path) -> Callable[[int], None]:
    """An ``on_chunk`` callback that appends to ``path`` after every chunk read: a file still being written."""

    def grow(_read: int) -> None:
        with open(path, "ab") as f:
            f.write(b"appended while the upload ran")

    return grow


def test_file_changing_between_hash_and_upload_is_not_stored(s3_runtime: Runtime, media: MediaFactory) -> None:
    inbox = s3_runtime.settings.inbox_path
    src = media.make(inbox / "DSJ-A001" / "clip.mp4", seconds=2)

    out = ingest_file(s3_runtime, inbox, src, "st1", on_chunk=_growing(src))
    assert out.status == "failed" and out.reason == "changed_while_reading"
    assert _count(s3_runtime, Recording) == 0


def test_a_file_above_one_part_is_stored_whole_and_a_growing_one_is_refused(
    s3_runtime: Runtime, media: MediaFactory
) -> None:
    """Above one part, RGW (``signed``) takes the file in one signed PutObject read twice; moto in parts."""
    inbox = s3_runtime.settings.inbox_path
    store = s3_runtime.store
    assert isinstance(store, S3Store)
    big = inbox / "DSJ-A001" / "DSJ-A001_P1001_20240501083000_0001.mp4"
    big.parent.mkdir(parents=True)
    data = hashlib.shake_256(b"big").digest(store.part_size + 12345)
    big.write_bytes(data)

    out = ingest_file(s3_runtime, inbox, big, "st1")
    assert out.status == "stored" and out.sha256 == hashlib.sha256(data).hexdigest()
    assert store.verify(out.sha256)

    growing = inbox / "DSJ-A002" / "DSJ-A002_P1001_20240501090000_0001.mp4"
    growing.parent.mkdir(parents=True)
    growing.write_bytes(data[::-1])

    out = ingest_file(s3_runtime, inbox, growing, "st1", on_chunk=_growing(growing))
    assert out.status == "failed" and out.reason == "changed_while_reading"
    assert _count(s3_runtime, Recording) == 1
    assert store.head(hashlib.sha256(data[::-1]).hexdigest()) is None
