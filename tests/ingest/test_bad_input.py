"""Untrusted input: empty, random and truncated files, odd names, escaping paths, moving files, a dead store."""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

from ingest.pipeline import ingest_file
from ingest.service import local_scan
from storage.events import event_details
from storage.objects import open_store
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory
from tests.ingest.conftest import Db, Invoke

NAME = "DSJ-A001_001_20240501083000_0001.mp4"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_a_zero_byte_file_is_kept_as_unplayable_evidence(runtime: Runtime, inbox: Path, db: Db) -> None:
    path = inbox / NAME
    path.touch()

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored"
    [rec] = db.recordings()
    assert (rec.sha256, rec.size, rec.status) == (EMPTY_SHA256, 0, "unplayable")
    assert rec.probe_error is not None and "empty" in rec.probe_error
    assert (rec.has_video, rec.has_audio, rec.duration_seconds) == (False, False, None)
    assert rec.time_source == "filename"  # the name still says when
    assert runtime.store.verify(EMPTY_SHA256)


def test_random_bytes_named_mp4_are_stored_as_unplayable(runtime: Runtime, inbox: Path, db: Db) -> None:
    path = inbox / "DSJ-A001" / "noise.mp4"
    path.parent.mkdir()
    data = random.Random(7).randbytes(64 * 1024)  # the same bytes on every run
    path.write_bytes(data)

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored"
    [rec] = db.recordings()
    assert rec.status == "unplayable" and rec.probe_error
    assert rec.sha256 == hashlib.sha256(data).hexdigest() and rec.size == len(data)
    assert b"".join(runtime.store.read(rec.sha256)) == data
    assert rec.time_source == "mtime"  # nothing else to go by


def test_a_truncated_video_is_stored_byte_for_byte(runtime: Runtime, inbox: Path, media: MediaFactory, db: Db) -> None:
    path = media.make(inbox / NAME, seconds=4)
    data = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(data)  # a copy that died half way (the MP4 index sits at the end)

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored"
    [rec] = db.recordings()
    assert rec.size == len(data) and rec.sha256 == hashlib.sha256(data).hexdigest()
    assert rec.status == "unplayable" and rec.probe_error
    assert runtime.store.verify(rec.sha256)


def test_unicode_and_spaces_in_names(runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, cli: Invoke) -> None:
    relpath = "执法 记录/DSJ-A001_警号001_20240501083000_0001.mp4"
    runtime.settings.after_ingest = "move"
    path = media.make(inbox / relpath)

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored" and outcome.path == relpath
    [rec] = db.recordings()
    assert (rec.source_path, rec.original_name) == (relpath, "DSJ-A001_警号001_20240501083000_0001.mp4")
    assert runtime.settings.done_dir is not None and (runtime.settings.done_dir / relpath).exists()
    listed = json.loads(cli("recordings", "list", "--format", "json").stdout)
    assert [r["original_name"] for r in listed] == ["DSJ-A001_警号001_20240501083000_0001.mp4"]


def test_a_dotdot_path_is_refused_and_reported_without_reading(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    outside = media.make(inbox.parent / "outside.mp4", tone=330)
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()

    outcome = ingest_file(runtime, inbox, inbox / ".." / "outside.mp4", "ST-1")

    assert (outcome.status, outcome.reason) == ("failed", "unsafe_path")
    assert runtime.store.head(digest) is None and db.count_recordings() == 0
    [failure] = db.failures()
    assert failure.reason == "unsafe_path" and ".." in failure.path
    [event] = db.events("ingest.failed")
    assert event_details(event)["reason"] == "unsafe_path"
    assert outside.exists()


def test_a_symlink_escaping_the_inbox_is_refused(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, tmp_path: Path
) -> None:
    secret = media.make(tmp_path / "elsewhere" / "secret.mp4", tone=550)
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    (inbox / "DSJ-A001").mkdir()
    (inbox / "DSJ-A001" / NAME).symlink_to(secret)
    (inbox / "linked-folder").symlink_to(secret.parent, target_is_directory=True)

    outcomes = local_scan(runtime, inbox, "ST-1")

    assert [(o.path, o.status, o.reason) for o in outcomes] == [(f"DSJ-A001/{NAME}", "failed", "unsafe_path")]
    direct = ingest_file(runtime, inbox, inbox / "linked-folder" / "secret.mp4", "ST-1")
    assert (direct.status, direct.reason) == ("failed", "unsafe_path")
    assert runtime.store.head(digest) is None and db.count_recordings() == 0
    assert sorted(f.reason for f in db.failures()) == ["unsafe_path", "unsafe_path"]


def test_a_file_still_being_written_is_not_taken(runtime: Runtime, inbox: Path, media: MediaFactory, db: Db) -> None:
    runtime.settings.stable_seconds = 3600
    path = media.make(inbox / NAME)
    (inbox / "DSJ-A001_001_20240501090000_0002.mp4.part").write_bytes(b"half a file")

    first = local_scan(runtime, inbox, "ST-1")

    assert [(o.path, o.status) for o in first] == [(NAME, "not_stable")]
    assert db.count_recordings() == 0
    old = time.time() - 7200
    os.utime(path, (old, old))  # it has not changed for two hours now
    second = local_scan(runtime, inbox, "ST-1")
    assert [(o.path, o.status) for o in second] == [(NAME, "stored")]
    assert db.count_recordings() == 1  # the .part file is never taken


def test_a_file_that_changes_while_read_is_not_committed_and_retried(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, cli: Invoke
) -> None:
    path = media.make(inbox / NAME)
    appended: list[int] = []

    def keep_writing(_bytes_so_far: int) -> None:
        if not appended:  # the camera station is still appending while we read
            with open(path, "ab") as f:
                appended.append(f.write(b"more bytes from a slow copy"))

    changed = ingest_file(runtime, inbox, path, "ST-1", on_chunk=keep_writing)

    assert (changed.status, changed.reason) == ("failed", "changed_while_reading")
    assert db.count_recordings() == 0 and db.sightings() == []
    [failure] = db.failures()
    assert (failure.reason, failure.attempts, failure.resolved_at) == ("changed_while_reading", 1, None)
    status = json.loads(cli("ingest", "status", "--format", "json").stdout)
    assert [(f["path"], f["reason"]) for f in status] == [(NAME, "changed_while_reading")]

    retried = ingest_file(runtime, inbox, path, "ST-1")

    assert retried.status == "stored"
    [rec] = db.recordings()
    assert rec.size == path.stat().st_size and rec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert db.failures()[0].resolved_at is not None
    assert json.loads(cli("ingest", "status", "--format", "json").stdout) == []


def test_an_unreachable_store_leaves_the_file_and_retries_until_it_is_back(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, cli: Invoke, tmp_path: Path
) -> None:
    blocker = tmp_path / "store-mount"
    blocker.write_text("the store's volume is not mounted")  # a file where the store's folder should be
    broken = Runtime(runtime.settings, runtime.engine, runtime.sessions, open_store(f"file://{blocker}/objects"))
    runtime.settings.after_ingest = "move"
    path = media.make(inbox / NAME)
    original = path.read_bytes()

    first = ingest_file(broken, inbox, path, "ST-1")
    second = ingest_file(broken, inbox, path, "ST-1")

    assert (first.status, first.reason, second.reason) == ("failed", "store_unavailable", "store_unavailable")
    assert path.read_bytes() == original, "the source is never touched on failure"
    assert db.count_recordings() == 0
    [failure] = db.failures()
    assert failure.attempts == 2
    assert (failure.next_attempt_at - failure.last_failed_at).total_seconds() == 2 * runtime.settings.retry_base_seconds
    status = json.loads(cli("ingest", "status", "--format", "json").stdout)
    assert len(status) == 1
    assert (status[0]["path"], status[0]["reason"], status[0]["attempts"]) == (NAME, "store_unavailable", 2)
    assert status[0]["last_error"] and status[0]["next_attempt_at"].endswith("+00:00")
    assert len(db.events("ingest.failed")) == 2

    blocker.unlink()  # the store is back
    back = ingest_file(broken, inbox, path, "ST-1")

    assert back.status == "stored" and back.after_ingest == "moved"
    assert broken.store.verify(back.sha256 or "")
    assert json.loads(cli("ingest", "status", "--format", "json").stdout) == []
