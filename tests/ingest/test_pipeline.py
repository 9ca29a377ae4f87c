"""The pipeline: one file in, one verified and committed recording (with its sighting and events) out."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from ingest.failures import retry_delay
from ingest.pipeline import ingest_file
from storage.events import event_details
from storage.objects import open_store
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory
from tests.fixtures.s3 import free_port
from tests.ingest.conftest import Db

NAME = "DSJ-A001_001_20240501083000_0001.mp4"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_recording_is_stored_with_every_field(runtime: Runtime, inbox: Path, media: MediaFactory, db: Db) -> None:
    runtime.settings.extra_digests = ["sm3"]
    path = media.make(inbox / "DSJ-A001" / NAME, seconds=2, creation_time="2024-05-01T07:00:00Z")
    digest = sha256_of(path)
    st = path.stat()

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored" and outcome.sha256 == digest
    [rec] = db.recordings()
    assert outcome.recording_id == rec.id
    assert (rec.sha256, rec.size) == (digest, st.st_size)
    assert rec.object_key == f"sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    sm3 = hashes.Hash(hashes.SM3())
    sm3.update(path.read_bytes())
    assert rec.sm3 == sm3.finalize().hex()
    assert rec.device is not None and rec.device.serial == "DSJ-A001"
    assert rec.station is not None and rec.station.code == "ST-1"
    assert (rec.officer_code, rec.sequence) == ("001", 1)
    assert (rec.original_name, rec.source_path) == (NAME, f"DSJ-A001/{NAME}")
    # the file name wins over the container's creation_time, read in BWC_TIMEZONE (UTC here)
    assert rec.time_source == "filename"
    assert rec.started_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert rec.duration_seconds is not None and abs(rec.duration_seconds - 2.0) < 0.2
    assert rec.ended_at == rec.started_at + timedelta(seconds=rec.duration_seconds)
    assert (rec.has_video, rec.has_audio, rec.status, rec.probe_error) == (True, True, "ok", None)
    assert rec.media_kind == "video" and rec.creation_time == datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    assert rec.verified_at == rec.received_at
    assert rec.retention_until == rec.received_at + timedelta(days=runtime.settings.retention_days)
    assert runtime.store.verify(digest)

    [sighting] = db.sightings()
    assert (sighting.recording_id, sighting.path, sighting.duplicate) == (rec.id, f"DSJ-A001/{NAME}", False)
    assert (sighting.size, sighting.mtime_ns, sighting.after_ingest) == (st.st_size, st.st_mtime_ns, "kept")

    [event] = db.events("recording.ingested")
    assert event.subject == f"recording:{digest}" and event.actor == "station:ST-1"
    details = event_details(event)
    assert details["path"] == f"DSJ-A001/{NAME}" and details["device"] == "DSJ-A001"
    assert (details["station"], details["size"], details["status"]) == ("ST-1", st.st_size, "ok")
    assert path.exists(), "keep is the default"


def test_a_device_and_station_first_seen_by_ingest_are_created_with_their_events(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    ingest_file(runtime, inbox, media.make(inbox / "DSJ-A001" / NAME, seconds=1), "ST-1")
    ingest_file(runtime, inbox, media.make(inbox / "DSJ-A001" / NAME.replace("0001", "0002"), seconds=1), "ST-1")

    [device] = db.events("device.created")
    [station] = db.events("station.created")
    assert (device.subject, station.subject) == ("device:DSJ-A001", "station:ST-1")
    assert event_details(device) == {"origin": "ingest"} and device.actor == "station:ST-1"


def test_a_folder_name_too_long_for_a_serial_is_no_device_and_the_file_is_still_stored(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    folder = "D" * 200
    path = media.make(inbox / folder / "clip.mp4", seconds=1)

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored"
    [rec] = db.recordings()
    assert rec.device is None and rec.source_path == f"{folder}/clip.mp4"
    assert db.events("device.created") == []


def test_same_bytes_twice_is_one_recording_and_two_sightings(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    first = media.make(inbox / "A" / NAME)
    second = media.make(inbox / "B" / "copy.mp4")

    a = ingest_file(runtime, inbox, first, "ST-1")
    b = ingest_file(runtime, inbox, second, "ST-2")

    assert (a.status, b.status) == ("stored", "duplicate")
    assert a.recording_id == b.recording_id
    assert db.count_recordings() == 1
    sightings = db.sightings()
    assert [(s.path, s.duplicate) for s in sightings] == [(f"A/{NAME}", False), ("B/copy.mp4", True)]
    [dup] = db.events("recording.duplicate")
    assert dup.subject == f"recording:{a.sha256}"
    assert event_details(dup)["path"] == "B/copy.mp4" and event_details(dup)["station"] == "ST-2"


def test_the_same_file_again_is_skipped_without_reading(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    path = media.make(inbox / NAME)
    ingest_file(runtime, inbox, path, "ST-1")
    reads: list[int] = []

    again = ingest_file(runtime, inbox, path, "ST-1", on_chunk=reads.append)

    assert again.status == "skipped_seen" and reads == []
    assert len(db.sightings()) == 1 and len(db.events("recording.duplicate")) == 0


def test_concurrent_ingests_of_the_same_bytes_make_one_recording(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    paths = [media.make(inbox / f"cam{i}" / NAME) for i in range(2)]
    both_read = threading.Barrier(2, timeout=60)
    outcomes = []

    def wait_for_the_other(_n: int) -> None:
        both_read.wait()

    def run(path: Path) -> None:
        # Both have read all their bytes before either commits: the commits race.
        outcomes.append(ingest_file(runtime, inbox, path, "ST-1", on_chunk=wait_for_the_other))

    threads = [threading.Thread(target=run, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert sorted(o.status for o in outcomes) == ["duplicate", "stored"]
    assert db.count_recordings() == 1 and len(db.sightings()) == 2


def test_a_sidecar_is_stored_and_linked_to_its_recording(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    path = media.make(inbox / "DSJ-A001" / NAME)
    gps = inbox / "DSJ-A001" / NAME.replace(".mp4", ".gps")
    gps.write_text("$GPGGA,083000,3114.0,N,12128.0,E\n")

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    [side] = outcome.sidecars
    assert side.status == "stored" and side.kind == "sidecar"
    [row] = db.sidecars()
    assert (row.recording_id, row.sha256, row.source_path) == (outcome.recording_id, sha256_of(gps), side.path)
    assert runtime.store.verify(row.sha256)
    [event] = db.events("sidecar.stored")
    assert event_details(event)["recording"] == outcome.recording_id
    # handed over again by the watcher, it is recognised
    assert ingest_file(runtime, inbox, gps, "ST-1").status == "skipped_seen"
    assert len(db.sidecars()) == 1


def test_a_sidecar_waits_for_its_media_then_goes_with_it(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    path = media.make(inbox / NAME)
    xml = inbox / NAME.replace(".mp4", ".xml")
    xml.write_text("<meta/>")

    waiting = ingest_file(runtime, inbox, xml, "ST-1")
    assert waiting.status == "waiting" and db.sidecars() == []

    stored = ingest_file(runtime, inbox, path, "ST-1")
    assert [s.status for s in stored.sidecars] == ["stored"]
    assert [s.recording_id for s in db.sidecars()] == [stored.recording_id]


def test_an_orphan_sidecar_is_stored_unlinked_and_linked_when_its_media_comes(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    srt = inbox / "DSJ-A001" / NAME.replace(".mp4", ".srt")
    srt.parent.mkdir(parents=True)
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")

    orphan = ingest_file(runtime, inbox, srt, "ST-1")
    assert orphan.status == "stored" and orphan.recording_id is None
    [row] = db.sidecars()
    assert row.recording_id is None and runtime.store.verify(row.sha256)

    # the media arrives later (say, another docking): the orphan is linked to it
    late = media.make(inbox / "DSJ-A001" / NAME)
    outcome = ingest_file(runtime, inbox, late, "ST-1")
    [row] = db.sidecars()
    assert row.recording_id == outcome.recording_id
    assert [event_details(e)["recording"] for e in db.events("sidecar.linked")] == [outcome.recording_id]


def test_move_after_ingest_puts_the_file_in_done_and_records_it(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.after_ingest = "move"
    done = runtime.settings.done_dir
    assert done is not None
    path = media.make(inbox / "DSJ-A001" / NAME)
    gps = path.with_suffix(".gps")
    gps.write_text("track")
    original = path.read_bytes()

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.after_ingest == "moved" and not path.exists() and not gps.exists()
    assert (done / "DSJ-A001" / NAME).read_bytes() == original
    assert (done / "DSJ-A001" / gps.name).read_text() == "track"
    [sighting] = db.sightings()
    assert sighting.after_ingest == "moved"
    moved = [event_details(e) for e in db.events("ingest.after")]
    assert {"path": f"DSJ-A001/{NAME}", "action": "moved", "to": f"DSJ-A001/{NAME}"} in moved


def test_move_never_overwrites_what_is_in_done(runtime: Runtime, inbox: Path, media: MediaFactory) -> None:
    runtime.settings.after_ingest = "move"
    done = runtime.settings.done_dir
    assert done is not None
    (done / "DSJ-A001").mkdir(parents=True)
    (done / "DSJ-A001" / NAME).write_bytes(b"an older file with the same name")
    path = media.make(inbox / "DSJ-A001" / NAME)
    original = path.read_bytes()

    ingest_file(runtime, inbox, path, "ST-1")

    assert (done / "DSJ-A001" / NAME).read_bytes() == b"an older file with the same name"
    assert (done / "DSJ-A001" / NAME.replace(".mp4", "-1.mp4")).read_bytes() == original


def test_a_move_interrupted_after_commit_is_finished_on_the_next_pass(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.after_ingest = "move"
    done = runtime.settings.done_dir
    assert done is not None
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text("not a folder: the move fails")  # as if the process died right after the commit
    path = media.make(inbox / NAME)

    first = ingest_file(runtime, inbox, path, "ST-1")
    assert first.status == "stored" and first.after_ingest is None and path.exists()
    assert db.sightings()[0].after_ingest is None
    assert runtime.store.verify(first.sha256 or "")

    done.unlink()
    again = ingest_file(runtime, inbox, path, "ST-1")
    assert (again.status, again.after_ingest) == ("skipped_seen", "moved")
    assert not path.exists() and (done / NAME).exists()
    assert db.sightings()[0].after_ingest == "moved" and db.count_recordings() == 1


def test_delete_after_ingest_removes_the_source_once_stored(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.after_ingest = "delete"
    path = media.make(inbox / NAME)
    digest = sha256_of(path)

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.after_ingest == "deleted" and not path.exists()
    assert runtime.store.verify(digest)
    assert db.sightings()[0].after_ingest == "deleted"
    assert [json.loads(e.details)["action"] for e in db.events("ingest.after")] == ["deleted"]


def test_retry_delay_doubles_up_to_the_cap() -> None:
    assert [retry_delay(n, 10, 3600) for n in range(1, 6)] == [10, 20, 40, 80, 160]
    assert retry_delay(9, 10, 3600) == 2560 and retry_delay(10, 10, 3600) == 3600
    assert retry_delay(10_000, 10, 3600) == 3600


def test_into_an_s3_bucket_with_object_lock(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, s3_locked_bucket_url: str
) -> None:
    s3 = Runtime(runtime.settings, runtime.engine, runtime.sessions, open_store(s3_locked_bucket_url))
    s3.store.ensure_ready()
    path = media.make(inbox / NAME)

    outcome = ingest_file(s3, inbox, path, "ST-1")

    assert outcome.status == "stored"
    [rec] = db.recordings()
    assert rec.object_version and rec.retention_until is not None
    assert rec.retention_until >= rec.received_at + timedelta(days=runtime.settings.retention_days - 1)
    assert s3.store.verify(rec.sha256) and rec.sha256 == sha256_of(path)


def test_an_s3_endpoint_nobody_answers_is_store_unavailable(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    closed = f"s3://bucket?endpoint_url=http://127.0.0.1:{free_port()}&addressing_style=path"
    s3 = Runtime(runtime.settings, runtime.engine, runtime.sessions, open_store(closed))
    path = media.make(inbox / NAME)

    outcome = ingest_file(s3, inbox, path, "ST-1")

    assert (outcome.status, outcome.reason) == ("failed", "store_unavailable")
    assert path.exists() and db.count_recordings() == 0 and db.failures()[0].attempts == 1


def test_a_sidecar_still_being_written_is_left_for_later(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.stable_seconds = 3600
    path = media.make(inbox / NAME)
    old = path.stat().st_mtime - 7200
    os.utime(path, (old, old))
    gps = path.with_suffix(".gps")
    gps.write_text("first half of a track")

    outcome = ingest_file(runtime, inbox, path, "ST-1")

    assert outcome.status == "stored" and outcome.sidecars == () and db.sidecars() == []
    os.utime(gps, (old, old))
    assert ingest_file(runtime, inbox, gps, "ST-1").status == "stored"
    assert [s.recording_id for s in db.sidecars()] == [outcome.recording_id]
