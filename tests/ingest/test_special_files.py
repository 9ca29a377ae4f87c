"""FIFOs, sockets, devices and folders named like recordings: refused and reported, never opened, never a hang."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import Settings
from ingest.outcome import IngestOutcome
from ingest.pipeline import ingest_file
from ingest.service import local_watcher
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory
from tests.ingest.conftest import Db

BWC = str(Path(sys.executable).with_name("bwc"))
GUARD = 120.0  # seconds: a hang fails the test instead of the suite; never a synchronization
GOOD = "DSJ-A001_001_20240501083000_0001.mp4"
FIFO = "DSJ-A001_001_20240501090000_0002.mp4"
REFUSED = "not_a_regular_file"


def _bwc(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real ``bwc`` program in its own process, killed if it hangs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env.update(BWC_HOME=str(settings.home), BWC_DATABASE_URL=settings.db_url, BWC_STABLE_SECONDS="0")
    return subprocess.run([BWC, *args], env=env, capture_output=True, text=True, timeout=GUARD, check=False)


@contextlib.contextmanager
def unblocking(*fifos: Path) -> Iterator[None]:
    """On the way out, open each FIFO for writing: a reader stuck in its open (the bug) is let go, not leaked."""
    try:
        yield
    finally:
        for fifo in fifos:
            with contextlib.suppress(OSError):  # ENXIO: nobody is blocked reading it, as it should be
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def _status(settings: Settings) -> dict[str, dict[str, object]]:
    result = _bwc(settings, "ingest", "status", "--format", "json")
    assert result.returncode == 0, result.stderr
    return {row["path"]: row for row in json.loads(result.stdout)}


def test_bwc_ingest_on_a_fifo_refuses_it_and_returns(runtime: Runtime, inbox: Path, db: Db) -> None:
    fifo = inbox / FIFO
    os.mkfifo(fifo)

    with unblocking(fifo):
        result = _bwc(runtime.settings, "ingest", str(fifo), "--format", "json")

    assert result.returncode == 1, result.stderr  # a failed file is a finding
    [outcome] = json.loads(result.stdout)
    assert (outcome["status"], outcome["reason"]) == ("failed", REFUSED)
    assert "FIFO" in outcome["error"]
    row = _status(runtime.settings)[FIFO]
    assert row["reason"] == REFUSED and "FIFO" in str(row["last_error"])
    assert db.count_recordings() == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # left where it is, untouched


def _bind(sock: socket.socket, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bind a Unix socket at ``path`` by its short relative name (socket paths are limited to ~108 bytes)."""
    monkeypatch.chdir(path.parent)
    sock.bind(path.name)


def test_watch_once_refuses_special_files_and_ingests_the_good_ones(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = media.make(inbox / GOOD)
    fifo = inbox / FIFO
    os.mkfifo(fifo)
    side_fifo = inbox / (good.stem + ".gps")  # a sidecar that is a FIFO, beside a good recording
    os.mkfifo(side_fifo)
    sock = socket.socket(socket.AF_UNIX)
    _bind(sock, inbox / "DSJ-A001_001_20240501100000_0003.mp4", monkeypatch)
    with contextlib.suppress(PermissionError):  # a device named like a recording, where we may make one
        os.mknod(inbox / "DSJ-A001_001_20240501110000_0004.mp4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (inbox / "DSJ-A001_001_20240501120000_0005.mp4").mkdir()  # a folder is walked, not read

    with unblocking(fifo, side_fifo), contextlib.closing(sock):
        result = _bwc(runtime.settings, "watch", str(inbox), "--once", "--format", "json")

    assert result.returncode == 1, result.stderr
    [rec] = db.recordings()
    assert rec.original_name == GOOD and runtime.store.verify(rec.sha256)
    refused = {p for p, row in _status(runtime.settings).items() if row["reason"] == REFUSED}
    expected = {FIFO, side_fifo.name, "DSJ-A001_001_20240501100000_0003.mp4"}
    if (inbox / "DSJ-A001_001_20240501110000_0004.mp4").exists():
        expected.add("DSJ-A001_001_20240501110000_0004.mp4")
    assert refused == expected
    assert {e.subject.rsplit(":", 1)[-1] for e in db.events("ingest.failed")} == expected


def test_the_watcher_ingests_the_good_file_beside_a_fifo_and_returns(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    runtime.settings.ingest_workers = 1  # one worker: a blocked open would starve every other file
    fifo = inbox / "DSJ-A001_001_20240501070000_0000.mp4"  # sorts first: tried before the good one
    os.mkfifo(fifo)
    good = media.make(inbox / GOOD)
    heard: list[IngestOutcome] = []
    watcher = local_watcher(runtime, inbox, "ST-W", on_outcome=heard.append)
    watcher.rescan()

    tick = threading.Thread(target=watcher.tick, daemon=True)
    with unblocking(fifo):
        tick.start()
        tick.join(GUARD)
        assert not tick.is_alive(), "the watcher hung on the FIFO"

    assert {(o.path, o.status, o.reason) for o in heard} == {
        (fifo.name, "failed", REFUSED),
        (good.name, "stored", None),
    }
    [rec] = db.recordings()
    assert rec.original_name == good.name
    [failure] = db.failures()
    assert (failure.path, failure.reason) == (fifo.name, REFUSED)


def test_a_folder_named_like_a_recording_is_refused_by_the_pipeline(runtime: Runtime, inbox: Path, db: Db) -> None:
    folder = inbox / GOOD
    folder.mkdir()

    outcome = ingest_file(runtime, inbox, folder, "ST-1")

    assert (outcome.status, outcome.reason) == ("failed", REFUSED)
    assert outcome.error is not None and "folder" in outcome.error
    assert db.count_recordings() == 0


def test_a_sidecar_waits_for_no_fifo_media(runtime: Runtime, inbox: Path, db: Db) -> None:
    os.mkfifo(inbox / FIFO)
    side = inbox / (Path(FIFO).stem + ".gps")
    side.write_text("$GPGGA,083000,3114.0,N,12128.0,E\n")

    with unblocking(inbox / FIFO):
        outcome = ingest_file(runtime, inbox, side, "ST-1")

    # The FIFO will never become the recording: the track is stored unlinked, not held back forever.
    assert (outcome.status, outcome.kind) == ("stored", "sidecar")
    [row] = db.sidecars()
    assert row.recording_id is None and row.original_name == side.name


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_a_special_file_is_refused_before_it_is_opened(
    runtime: Runtime, inbox: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = inbox / FIFO
    sock = socket.socket(socket.AF_UNIX)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        _bind(sock, path, monkeypatch)
    with unblocking(path), contextlib.closing(sock):
        outcome = ingest_file(runtime, inbox, path, "ST-1")
    assert (outcome.status, outcome.reason) == ("failed", REFUSED)
    assert outcome.error is not None and ("FIFO" if kind == "fifo" else "socket") in outcome.error
