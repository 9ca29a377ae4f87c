"""Kill ``bwc watch --once`` mid-backlog with SIGKILL, run it again: every file stored exactly once, verified,
and no source moved away before its object was verified and its recording committed."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from config.settings import Settings
from storage.db import make_engine
from storage.models import Recording, Sighting
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory
from tests.ingest.conftest import Db

GUARD = 300.0  # seconds: a failure guard only


def _backlog(inbox: Path, media: MediaFactory) -> dict[str, str]:
    """About 30 files (real videos, undecodable ones, duplicates); returns relpath -> sha256."""
    rng = random.Random(7)
    files: dict[str, str] = {}
    for i in range(12):
        path = media.make(
            inbox / f"DSJ-{i % 3:04d}" / f"DSJ-{i % 3:04d}_001_2024050108{i:02d}00_{i:04d}.mp4",
            seconds=1,
            tone=300 + 40 * i,
        )
        files[path.relative_to(inbox).as_posix()] = ""
    for i in range(12):
        path = inbox / "noise" / f"clip{i:02d}.mp4"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(rng.randbytes(32 * 1024 + i))
        files[path.relative_to(inbox).as_posix()] = ""
    for i, rel in enumerate(sorted(files)[:6]):  # the same bytes docked again from another camera folder
        copy = inbox / "again" / f"copy{i}{Path(rel).suffix}"
        copy.parent.mkdir(exist_ok=True)
        copy.write_bytes((inbox / rel).read_bytes())
        files[copy.relative_to(inbox).as_posix()] = ""
    for rel in files:
        files[rel] = hashlib.sha256((inbox / rel).read_bytes()).hexdigest()
    return files


def _watch_once(settings: Settings, inbox: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env.update(
        BWC_HOME=str(settings.home),
        BWC_DATABASE_URL=settings.db_url,
        BWC_AFTER_INGEST="move",
        BWC_STABLE_SECONDS="0",
    )
    bwc = Path(sys.executable).with_name("bwc")
    return subprocess.Popen(
        [str(bwc), "watch", str(inbox), "--once", "--station", "ST-1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _sightings(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(Sighting)) or 0)
    finally:
        engine.dispose()


def test_sigkill_mid_backlog_then_restart_loses_and_duplicates_nothing(
    runtime: Runtime, inbox: Path, media: MediaFactory, db: Db
) -> None:
    done = runtime.settings.done_dir
    assert done is not None
    files = _backlog(inbox, media)
    assert len(files) == 30

    first = _watch_once(runtime.settings, inbox)
    deadline = time.monotonic() + GUARD
    # Poll the database (the marker) until some files are committed, then kill without warning.
    while _sightings(runtime.settings.db_url) < 3:
        assert first.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "no file was committed in time"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=GUARD) == -signal.SIGKILL
    assert _sightings(runtime.settings.db_url) < len(files), "killed too late to test anything"

    # Whatever the kill left, nothing is gone: each file is in the inbox or in done (or both, mid-move).
    for rel in files:
        assert (inbox / rel).exists() or (done / rel).exists(), f"{rel} vanished"

    second = _watch_once(runtime.settings, inbox)
    _, err = second.communicate(timeout=GUARD)
    assert second.returncode == 0, err.decode()

    recordings = {r.sha256: r for r in db.recordings()}
    assert set(recordings) == set(files.values()), "one recording per distinct content"
    for rel, digest in files.items():
        assert not (inbox / rel).exists(), f"{rel} was left in the inbox"
        moved = done / rel
        assert hashlib.sha256(moved.read_bytes()).hexdigest() == digest, f"{rel} in done is not what was stored"
        assert runtime.store.verify(digest), f"{rel}: object missing or corrupt"
    sightings = db.sightings()
    assert sorted(s.path for s in sightings) == sorted(files), "exactly one sighting per file"
    assert {s.after_ingest for s in sightings} <= {"moved", None}
    by_content = {files[s.path]: s for s in sightings if not s.duplicate}
    assert len(by_content) == len(recordings)
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == len(set(files.values()))
