"""Start-up clean-up of what crashes leave: old partial objects, spool files and S3 multipart uploads go (with
one audit event), fresh ones — maybe a live ingest in another process — stay."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from config.settings import Settings
from storage.basics import utcnow
from storage.events import event_details
from storage.init import initialize
from storage.leftovers import EVENT_KIND, SPOOL_PREFIX, clean_leftovers, last_cleanup, spool_dir
from storage.local_store import LocalStore
from storage.models import AuditEvent
from storage.runtime import Runtime, build_runtime
from storage.s3_store import S3Store

HOURS_AGO = 2 * 3600


def _plant(path: Path, data: bytes, age_seconds: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_seconds
    os.utime(path, (then, then))
    return path


def _events(rt: Runtime) -> list[AuditEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == EVENT_KIND).order_by(AuditEvent.seq)))


def test_old_partial_objects_and_spool_files_go_fresh_ones_stay(runtime: Runtime) -> None:
    store = runtime.store
    assert isinstance(store, LocalStore)
    incoming = store.root / ".incoming"
    old = _plant(incoming / "dead.part", b"x" * 1000, HOURS_AGO)
    fresh = _plant(incoming / "live.part", b"y" * 10, 0)  # another process is writing it right now
    spool = spool_dir(runtime.settings)
    old_spool = _plant(spool / f"{SPOOL_PREFIX}abc.mp4", b"z" * 500, HOURS_AGO)
    fresh_spool = _plant(spool / f"{SPOOL_PREFIX}def.mp4", b"w", 0)
    not_ours = _plant(spool / "notes.txt", b"keep me", HOURS_AGO)

    cleanup = clean_leftovers(runtime)

    assert not old.exists() and not old_spool.exists()
    assert fresh.exists() and fresh_spool.exists() and not_ours.exists()
    assert (cleanup.counts(), cleanup.bytes) == ({"part": 1, "spool": 1}, 1500)
    [event] = _events(runtime)
    details = event_details(event)
    assert details["counts"] == {"part": 1, "spool": 1} and details["bytes"] == 1500
    assert {k["key"] for k in details["keys"]} == {".incoming/dead.part", f"spool/{SPOOL_PREFIX}abc.mp4"}
    with runtime.sessions() as s:
        found = last_cleanup(s)
    assert found is not None and found[1]["bytes"] == 1500
    # nothing left to remove: no second event
    assert clean_leftovers(runtime).removed == [] and len(_events(runtime)) == 1


def test_the_cutoff_follows_leftover_minutes(runtime: Runtime) -> None:
    store = runtime.store
    assert isinstance(store, LocalStore)
    part = _plant(store.root / ".incoming" / "a.part", b"abc", 10 * 60)  # ten minutes idle
    assert clean_leftovers(runtime).removed == []  # default: an hour
    runtime.settings.leftover_minutes = 5
    assert [i.key for i in clean_leftovers(runtime).removed] == [".incoming/a.part"] and not part.exists()


def test_bwc_init_cleans_up_and_says_so(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    leftover = _plant(spool_dir(settings) / f"{SPOOL_PREFIX}1.mp4", b"q" * 7, HOURS_AGO)

    lines = list(initialize(settings))

    assert not leftover.exists()
    assert "leftovers removed: 1 spool (7 bytes)" in lines
    assert any(line.startswith("leftovers: none") for line in initialize(settings))


@pytest.fixture
def s3_runtime(settings: Settings, s3_bucket_url: str) -> Iterator[Runtime]:
    rt = build_runtime(Settings(home=settings.home, database_url=settings.database_url, storage_url=s3_bucket_url))
    rt.store.ensure_ready()
    yield rt
    rt.close()


def _open_uploads(client: Any, bucket: str) -> set[str]:
    return {u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])}


def test_s3_open_multipart_uploads_of_ours_are_aborted_once_idle(s3_runtime: Runtime, s3_client: Any) -> None:
    store = s3_runtime.store
    assert isinstance(store, S3Store)
    bucket = store.bucket
    key = store.key("ab" * 32)
    # What a killed put leaves: an upload created, one part sent, never completed nor aborted.
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    s3_client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 4096)
    s3_client.create_multipart_upload(Bucket=bucket, Key="someone-else/big.bin")  # not our key space
    s3_client.put_object(Bucket=bucket, Key="incoming/0123abcd", Body=b"t" * 100)  # a temporary never promoted

    assert clean_leftovers(s3_runtime).removed == []  # just now: could be a live upload
    assert _open_uploads(s3_client, bucket) == {key, "someone-else/big.bin"}

    later = utcnow() + timedelta(minutes=s3_runtime.settings.leftover_minutes + 1)
    cleanup = clean_leftovers(s3_runtime, now=later)

    assert _open_uploads(s3_client, bucket) == {"someone-else/big.bin"}
    assert s3_client.list_objects_v2(Bucket=bucket, Prefix="incoming/").get("KeyCount") == 0
    assert cleanup.counts() == {"multipart_upload": 1, "temp_object": 1} and cleanup.bytes == 4196
    [event] = _events(s3_runtime)
    keys = event_details(event)["keys"]
    assert {(k["kind"], k["key"], k.get("upload_id")) for k in keys} == {
        ("multipart_upload", key, upload["UploadId"]),
        ("temp_object", "incoming/0123abcd", None),
    }
