"""Readiness (pure, clock injected), the watcher's loop, its back-off, and watchdog events end to end."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ingest.naming import is_temporary
from ingest.outcome import IngestOutcome
from ingest.readiness import ReadinessTracker, complete_now
from ingest.service import local_scan, local_watcher
from storage.objects import open_store
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory
from tests.ingest.conftest import Db

NAME = "DSJ-A001_001_20240501083000_0001.mp4"
GUARD = 120.0  # seconds: only a failure guard, never a synchronization


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_file_is_ready_once_unchanged_for_stable_seconds() -> None:
    tracker = ReadinessTracker(5.0, is_temporary)
    assert not tracker.observe("a.mp4", 10, 1, now=100.0)
    assert tracker.wait_left("a.mp4", 102.0) == 3.0
    assert not tracker.observe("a.mp4", 10, 1, now=104.9)
    assert tracker.observe("a.mp4", 10, 1, now=105.0)


def test_any_change_restarts_the_wait() -> None:
    tracker = ReadinessTracker(5.0, is_temporary)
    tracker.observe("a.mp4", 10, 1, now=100.0)
    assert not tracker.observe("a.mp4", 20, 2, now=104.0)  # grew
    assert not tracker.observe("a.mp4", 20, 3, now=108.0)  # touched
    assert not tracker.observe("a.mp4", 20, 3, now=112.9)
    assert tracker.observe("a.mp4", 20, 3, now=113.0)
    tracker.forget("a.mp4")
    assert tracker.wait_left("a.mp4", 113.0) is None


def test_temporary_names_are_never_ready() -> None:
    tracker = ReadinessTracker(0.0, is_temporary)
    for name in ("clip.mp4.part", "clip.tmp", "~clip.mp4", ".clip.mp4", "dir/x.crdownload"):
        assert not tracker.observe(name, 1, 1, now=0.0)
        assert not tracker.observe(name, 1, 1, now=1e9)
    assert tracker.observe("dir/clip.mp4", 1, 1, now=0.0)


def test_complete_now_compares_the_mtime_age() -> None:
    assert complete_now(mtime_ns=100 * 10**9, now=105.0, stable_seconds=5)
    assert not complete_now(mtime_ns=100 * 10**9, now=104.0, stable_seconds=5)


def test_the_watcher_waits_for_a_file_to_hold_still(runtime: Runtime, inbox: Path, media: MediaFactory, db: Db) -> None:
    runtime.settings.stable_seconds = 5
    clock = FakeClock()
    heard: list[IngestOutcome] = []
    watcher = local_watcher(runtime, inbox, "ST-1", clock=clock, on_outcome=heard.append)
    path = media.make(inbox / NAME)

    watcher.rescan()
    watcher.tick()
    clock.now += 4
    watcher.tick()
    assert heard == [] and db.count_recordings() == 0

    with open(path, "ab") as f:  # still being copied
        f.write(b"\0")
    clock.now += 4
    watcher.tick()
    clock.now += 4.9
    watcher.tick()
    assert heard == []

    clock.now += 0.1
    watcher.tick()
    assert [o.status for o in heard] == ["stored"] and db.count_recordings() == 1
    watcher.rescan()
    clock.now += 10
    watcher.tick()
    assert len(heard) == 1 and watcher.pending() == []  # handled files are not handed over again


def test_the_watcher_honours_the_failure_back_off(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, tmp_path: Path
) -> None:
    # The failure's next attempt is a wall-clock time (it survives a restart), which the watcher turns into a
    # wait on its own clock when it hears the outcome: the seconds the ingest took come off that wait. With an
    # hour's back-off those seconds cannot reach the half-way point below, however loaded the machine.
    runtime.settings.retry_base_seconds = 3600
    blocker = tmp_path / "store-mount"
    blocker.write_text("not mounted")
    broken = Runtime(runtime.settings, runtime.engine, runtime.sessions, open_store(f"file://{blocker}/objects"))
    clock = FakeClock()
    heard: list[IngestOutcome] = []
    watcher = local_watcher(broken, inbox, "ST-1", clock=clock, on_outcome=heard.append)
    media.make(inbox / NAME)

    watcher.rescan()
    watcher.tick()
    assert [(o.status, o.reason) for o in heard] == [("failed", "store_unavailable")]
    clock.now += runtime.settings.retry_base_seconds / 2
    watcher.rescan()
    watcher.tick()
    assert len(heard) == 1, "retried before its back-off ran out"

    blocker.unlink()
    clock.now += runtime.settings.retry_base_seconds
    watcher.tick()
    assert [o.status for o in heard] == ["failed", "stored"]
    assert db.failures()[0].attempts == 1 and db.failures()[0].resolved_at is not None


def test_back_off_survives_a_restart(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, tmp_path: Path
) -> None:
    blocker = tmp_path / "store-mount"
    blocker.write_text("not mounted")
    broken = Runtime(runtime.settings, runtime.engine, runtime.sessions, open_store(f"file://{blocker}/objects"))
    media.make(inbox / NAME)
    local_scan(broken, inbox, "ST-1")
    assert db.failures()[0].attempts == 1

    heard: list[IngestOutcome] = []
    watcher = local_watcher(broken, inbox, "ST-1", clock=FakeClock(), on_outcome=heard.append)
    stop = threading.Event()
    stop.set()  # run() loads the back-off and returns at once
    watcher.run(stop)
    watcher.rescan()
    watcher.tick()
    assert heard == [] and db.failures()[0].attempts == 1


def test_the_watcher_ingests_what_is_there_and_what_arrives(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, tmp_path: Path
) -> None:
    runtime.settings.rescan_seconds = 3600  # after the start-up scan, only filesystem events can find a file
    runtime.settings.after_ingest = "move"
    media.make(inbox / "DSJ-A001" / NAME)
    stored: list[IngestOutcome] = []
    changed = threading.Condition()

    def on_outcome(outcome: IngestOutcome) -> None:
        with changed:
            stored.append(outcome)
            changed.notify_all()

    stop = threading.Event()
    watcher = local_watcher(runtime, inbox, "ST-1", on_outcome=on_outcome)
    thread = threading.Thread(target=watcher.run, args=(stop,))
    thread.start()
    try:
        with changed:
            assert changed.wait_for(lambda: len(stored) >= 1, timeout=GUARD), "start-up scan missed a file"
        # A station copies the next file under a temporary name, then renames it.
        staging = media.make(tmp_path / "staging.mp4", tone=880)
        part = inbox / "DSJ-A002" / "DSJ-A002_002_20240501084000_0001.mp4.part"
        part.parent.mkdir()
        os.replace(staging, part)
        os.replace(part, part.with_suffix(""))
        with changed:
            assert changed.wait_for(lambda: len(stored) >= 2, timeout=GUARD), "the watcher missed a new file"
    finally:
        stop.set()
        thread.join(timeout=GUARD)
    assert not thread.is_alive()
    assert [(o.path, o.status, o.after_ingest) for o in stored] == [
        (f"DSJ-A001/{NAME}", "stored", "moved"),
        ("DSJ-A002/DSJ-A002_002_20240501084000_0001.mp4", "stored", "moved"),
    ]
    assert db.count_recordings() == 2


def test_a_done_folder_inside_the_inbox_is_not_ingested_again(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.after_ingest = "move"
    runtime.settings.done_dir = inbox / "done"
    media.make(inbox / NAME)

    first = local_scan(runtime, inbox, "ST-1")
    second = local_scan(runtime, inbox, "ST-1")

    assert [o.status for o in first] == ["stored"] and second == []
    assert (inbox / "done" / NAME).exists() and len(db.sightings()) == 1


def test_scan_once_reports_progress_and_takes_media_before_sidecars(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    media.make(inbox / "b" / NAME)
    (inbox / "a").mkdir()
    (inbox / "a" / "lonely.json").write_text("{}")
    (inbox / "b" / NAME.replace(".mp4", ".json")).write_text("{}")
    (inbox / "notes.docx").write_text("not evidence")
    progress: list[tuple[int, int]] = []

    outcomes = local_scan(runtime, inbox, "ST-1", progress=lambda done, total: progress.append((done, total)))

    assert [(o.path, o.status) for o in outcomes] == [(f"b/{NAME}", "stored"), ("a/lonely.json", "stored")]
    assert [s.path for s in outcomes[0].sidecars] == [f"b/{NAME.replace('.mp4', '.json')}"]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    assert sorted(s.recording_id is None for s in db.sidecars()) == [False, True]


def test_a_move_that_failed_after_commit_is_retried_by_the_watcher(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.after_ingest = "move"
    done = runtime.settings.done_dir
    assert done is not None
    done.write_text("a file where the done folder should be")
    clock = FakeClock()
    heard: list[IngestOutcome] = []
    watcher = local_watcher(runtime, inbox, "ST-1", clock=clock, on_outcome=heard.append)
    path = media.make(inbox / NAME)

    watcher.rescan()
    watcher.tick()
    assert [(o.status, o.after_ingest) for o in heard] == [("stored", None)] and path.exists()

    done.unlink()
    clock.now += runtime.settings.retry_base_seconds
    watcher.rescan()
    watcher.tick()
    assert [(o.status, o.after_ingest) for o in heard] == [("stored", None), ("skipped_seen", "moved")]
    assert not path.exists() and (done / NAME).exists() and db.count_recordings() == 1
