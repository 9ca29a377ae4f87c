"""A docking station pushes to a service over loopback: two ``BWC_HOME``s, two real ``bwc`` processes.

The station (``bwc watch DIR --server URL --token T``) has no database or store; the service (``bwc run``)
runs on the parametrized database. SIGKILL of either side mid-upload loses nothing and the upload continues
from the server's durable offset.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from sqlalchemy import select

from api.auth import create_token
from config.settings import Settings
from ingest.push_queue import PushQueue, QueueItem, queue_path
from ingest.upload_sessions import part_path
from storage.db import reading, transaction
from storage.models import Recording, Sidecar, Sighting, UploadSession
from storage.runtime import build_runtime
from tests.fixtures.cli import BWC
from tests.fixtures.media import MediaFactory

DEADLINE_SECONDS = 120.0  # a bound on waiting, not a performance threshold
MIB = 1024 * 1024
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, probe: Callable[[], T | None], alive: Callable[[], bool] = lambda: True) -> T:
    """Poll ``probe`` (the state we wait for: a queue row, a database row, an answer) within a bound."""
    end = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < end:
        if not alive():
            raise AssertionError(f"the process exited while waiting for {what}")
        try:
            result = probe()
        except httpx2.TransportError:
            result = None
        if result is not None and result is not False:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}


@dataclass
class Server:
    """``bwc run`` in its own home on the test's database, restartable on the same port."""

    settings: Settings
    log: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {
            **_clean_env(),
            "BWC_HOME": str(self.settings.home),
            "BWC_DATABASE_URL": self.settings.db_url,
            "BWC_STABLE_SECONDS": "0",
            **self.extra_env,
        }
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(BWC), "run", "--host", "127.0.0.1", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        proc = self.proc
        url = f"{self.base}/api/v1/healthz"
        _until("healthz", lambda: httpx2.get(url, timeout=5).status_code == 200, lambda: proc.poll() is None)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@dataclass
class Station:
    home: Path
    folder: Path
    server: Server
    token: str
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **_clean_env(),
            "BWC_HOME": str(self.home),
            "BWC_STABLE_SECONDS": "0",
            "BWC_RETRY_BASE_SECONDS": "0.2",
            "BWC_RETRY_MAX_SECONDS": "1",
            "BWC_TOKEN": self.token,
            **extra,
        }

    def args(self, tries: int = 8) -> list[str]:
        folder, base = str(self.folder), self.server.base
        return [str(BWC), "watch", folder, "--server", base, "--station", "ST-PUSH", "--once", "--tries", str(tries)]

    def start(self, tries: int = 8, **extra: str) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as out:
            return subprocess.Popen(
                [*self.args(tries), "--format", "json"], env=self.env(**extra), stdout=out, stderr=subprocess.STDOUT
            )

    def once(self, **extra: str) -> list[dict[str, Any]]:
        done = subprocess.run(
            [*self.args(), "--format", "json"],
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        result: list[dict[str, Any]] = json.loads(done.stdout)
        return result

    def queue(self) -> PushQueue:
        return PushQueue(queue_path(self.home))

    def item(self, relpath: str) -> QueueItem | None:
        if not queue_path(self.home).exists():
            return None
        return self.queue().get(relpath)


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    srv = Server(settings, tmp_path / "server.log")
    yield srv
    srv.kill()


@pytest.fixture
def station(server: Server, settings: Settings, tmp_path: Path) -> Station:
    rt = build_runtime(settings)
    with transaction(rt.sessions) as s:
        _token, secret = create_token(s, role="station", name="dock-1", station_code="ST-PUSH", actor="test")
    rt.close()
    folder = tmp_path / "dock"
    folder.mkdir()
    return Station(tmp_path / "station-home", folder, server, secret, tmp_path / "station.log")


def _random_file(path: Path, size: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _recordings(settings: Settings) -> list[tuple[int, str, str]]:
    rt = build_runtime(settings)
    try:
        with reading(rt.sessions) as s:
            rows = s.execute(select(Recording.id, Recording.sha256, Recording.source_path)).all()
        return [(int(r[0]), str(r[1]), str(r[2])) for r in rows]
    finally:
        rt.close()


def _uploads(settings: Settings) -> list[tuple[str, int, str | None]]:
    rt = build_runtime(settings)
    try:
        with reading(rt.sessions) as s:
            rows = s.execute(select(UploadSession.relpath, UploadSession.offset, UploadSession.outcome)).all()
        return [(str(r[0]), int(r[1]), r[2]) for r in rows]
    finally:
        rt.close()


def test_a_station_pushes_media_and_sidecar_and_moves_them_only_once_stored(
    server: Server, station: Station, settings: Settings, media: MediaFactory
) -> None:
    server.start()
    clip = media.make(station.folder / "DEV-7" / "DEV-7_P3_20240501080000_0001.mp4", seconds=1)
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    gps = station.folder / "DEV-7" / "DEV-7_P3_20240501080000_0001.gps"
    gps.write_text("$GPGGA,080000,3957.0,N,11624.0,E\n")
    done_dir = station.home / "done"

    outcomes = station.once(BWC_AFTER_INGEST="move", BWC_DONE_DIR=str(done_dir))

    assert [(o["kind"], o["status"], o["sha256"] is not None) for o in outcomes] == [
        ("media", "stored", True),
        ("sidecar", "stored", True),
    ]
    assert outcomes[0]["sha256"] == sha  # the digest the server computed, equal to the station's
    # The station moved its copies only after the server answered with the stored digest.
    assert not clip.exists() and not gps.exists()
    assert hashlib.sha256((done_dir / "DEV-7" / clip.name).read_bytes()).hexdigest() == sha
    [(recording_id, stored_sha, source)] = _recordings(settings)
    assert stored_sha == sha and source == "DEV-7/" + clip.name
    rt = build_runtime(settings)
    try:
        with reading(rt.sessions) as s:
            sidecar = s.scalars(select(Sidecar)).one()
            assert sidecar.recording_id == recording_id  # linked to its recording, as a watched sidecar is
            recording = s.get(Recording, recording_id)
            assert recording is not None and recording.device is not None
            assert recording.device.serial == "DEV-7" and recording.officer_code == "P3"
            assert rt.store.verify(sha)
    finally:
        rt.close()
    # The station's queue shows both acknowledged (what ``bwc ingest status`` prints there).
    status = subprocess.run(
        [str(BWC), "ingest", "status", "--format", "json"], env=station.env(), capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    rows = {r["path"]: r for r in json.loads(status.stdout)}
    assert rows["DEV-7/" + clip.name]["state"] == "done" and rows["DEV-7/" + clip.name]["server_sha256"] == sha
    assert rows["DEV-7/" + gps.name]["after_ingest"] == "moved"


def test_the_same_bytes_from_another_path_are_a_duplicate(server: Server, station: Station, settings: Settings) -> None:
    server.start()
    sha = _random_file(station.folder / "a" / "clip.mp4", 300_000)
    (station.folder / "b").mkdir()
    (station.folder / "b" / "clip.mp4").write_bytes((station.folder / "a" / "clip.mp4").read_bytes())
    outcomes = station.once()
    assert sorted(o["status"] for o in outcomes) == ["duplicate", "stored"]
    assert [r[1] for r in _recordings(settings)] == [sha]
    rt = build_runtime(settings)
    try:
        with reading(rt.sessions) as s:
            assert len(s.scalars(select(Sighting)).all()) == 2
    finally:
        rt.close()
    # Run again: both are known to the station's queue; nothing is sent twice.
    again = station.once()
    assert [o["status"] for o in again] == ["skipped_seen", "skipped_seen"]


def test_sigkill_of_the_station_mid_upload_resumes_from_the_server_offset(
    server: Server, station: Station, settings: Settings
) -> None:
    server.start()
    size = 24 * MIB
    relpath = "DEV-1/DEV-1_20240501_080000_1.mp4"
    sha = _random_file(station.folder / relpath, size)
    # A capped rate keeps the upload going long enough to be killed in the middle of it.
    proc = station.start(BWC_PUSH_CHUNK_MB="1", BWC_PUSH_MAX_RATE_MBPS="4")
    try:
        item = _until(
            "2 MiB acknowledged",
            lambda: (i := station.item(relpath)) is not None and i.offset >= 2 * MIB and i,
            lambda: proc.poll() is None,
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert isinstance(item, QueueItem) and item.state == "queued"
    assert _recordings(settings) == []  # nothing half-made on the server

    outcomes = station.once()

    assert [(o["status"], o["sha256"]) for o in outcomes] == [("stored", sha)]
    done = station.item(relpath)
    assert done is not None and done.state == "done" and done.server_sha256 == sha
    assert done.resumed_from is not None and done.resumed_from >= 2 * MIB  # not from zero
    assert size - done.resumed_from < size  # fewer bytes re-sent than the whole file
    assert [r[1] for r in _recordings(settings)] == [sha]
    assert [(u[0], u[2]) for u in _uploads(settings)] == [(relpath, "stored")]  # one upload, resumed
    assert list((settings.home / "uploads").iterdir()) == []  # the part file went once committed


def test_sigkill_of_the_server_mid_upload_the_station_retries_and_completes(
    server: Server, station: Station, settings: Settings
) -> None:
    server.start()
    relpath = "DEV-2/DEV-2_20240501_090000_1.mp4"
    sha = _random_file(station.folder / relpath, 16 * MIB)
    # Enough passes (1 s apart at most) to outlast the service's restart on a busy machine.
    proc = station.start(tries=200, BWC_PUSH_CHUNK_MB="1", BWC_PUSH_MAX_RATE_MBPS="4")
    try:
        _until(
            "2 MiB durable on the server",
            lambda: any(u[0] == relpath and u[1] >= 2 * MIB for u in _uploads(settings)),
            lambda: proc.poll() is None,
        )
        server.kill()
        server.start()  # same home, database and port
        assert proc.wait(timeout=DEADLINE_SECONDS) == 0, station.log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    done = station.item(relpath)
    assert done is not None and done.state == "done" and done.server_sha256 == sha
    assert done.attempts >= 1 and done.last_error is not None and done.last_error.startswith("network")
    assert done.resumed_from is not None and done.resumed_from >= 2 * MIB
    assert [r[1] for r in _recordings(settings)] == [sha]


def test_busy_service_answers_503_and_the_station_waits_for_retry_after(
    server: Server, station: Station, settings: Settings
) -> None:
    server.extra_env["BWC_UPLOAD_MAX_CONCURRENT"] = "1"
    server.start()
    headers = {"Authorization": f"Bearer {station.token}", "Tus-Resumable": "1.0.0"}
    # Hold the only upload slot: a PATCH whose body does not end until released.
    held = httpx2.post(
        f"{server.base}/api/v1/uploads",
        headers={**headers, "Upload-Length": "10", "Upload-Metadata": _meta("hold.mp4", "0" * 64)},
        timeout=DEADLINE_SECONDS,  # httpx's default of 5 s is shorter than a loaded machine's answer
    )
    assert held.status_code == 201, held.text
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b"x"
        release.wait(DEADLINE_SECONDS)

    patch_headers = {**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    holder = threading.Thread(
        target=lambda: httpx2.patch(
            server.base + held.headers["Location"], headers=patch_headers, content=slow_body(), timeout=DEADLINE_SECONDS
        )
    )
    holder.start()
    try:
        # Probe only once the holder is inside its slot (it locks the part file there): a probe sent first
        # would take the slot itself and could turn the holder away with the very 503 this test looks for.
        part = part_path(settings, held.headers["Location"].rsplit("/", 1)[1])
        _until("the holder inside its slot", lambda: _held_elsewhere(part) or None)
        probe = httpx2.post(
            f"{server.base}/api/v1/uploads",
            headers={**headers, "Upload-Length": "1", "Upload-Metadata": _meta("probe.mp4", "1" * 64)},
            timeout=DEADLINE_SECONDS,
        )
        probe_url = server.base + probe.headers["Location"]
        wrong = {**patch_headers, "Upload-Offset": "5"}  # 409 when a slot is free, 503 while it is held

        def refused() -> httpx2.Response | None:
            response = httpx2.patch(probe_url, headers=wrong)
            return response if response.status_code == 503 else None

        busy = _until("the slot held", refused)
        assert busy.headers["Retry-After"] == "2" and busy.json()["error"]["code"] == "too_many_uploads"

        sha = _random_file(station.folder / "clip.mp4", 100_000)
        proc = station.start()
        _until("a 503 seen by the station", lambda: (i := station.item("clip.mp4")) is not None and i.attempts >= 1)
        release.set()
        assert proc.wait(timeout=DEADLINE_SECONDS) == 0, station.log.read_text()
    finally:
        release.set()
        holder.join()
    done = station.item("clip.mp4")
    assert done is not None and done.state == "done" and done.server_sha256 == sha
    assert done.last_error is not None and done.last_error.startswith("server_busy")
    assert done.last_failed_at is not None and done.next_attempt_at is not None
    assert done.next_attempt_at - done.last_failed_at == pytest.approx(2.0, abs=0.01)  # the server's Retry-After
    assert done.updated_at >= done.next_attempt_at  # acknowledged only after waiting it out
    assert [r[1] for r in _recordings(settings)] == [sha]


def _meta(filename: str, sha256: str) -> str:
    return (
        f"filename {base64.b64encode(filename.encode()).decode()},sha256 {base64.b64encode(sha256.encode()).decode()}"
    )


def _held_elsewhere(part: Path) -> bool | None:
    """Whether a process holds the upload's ``flock`` on its part file (None: no part file yet).

    Read from ``/proc/locks`` rather than by trying the lock: a probe that took the lock, even for an instant,
    could turn the very request it watches for away with 409 ``upload_busy``.
    """
    try:
        st = part.stat()
    except FileNotFoundError:
        return None
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # a request blocked behind a lock has "->" in field 1, so is not matched
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE":
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino):
                return True
    return False


def test_two_service_processes_never_append_to_one_upload_at_once(
    server: Server, station: Station, settings: Settings, tmp_path: Path
) -> None:
    """Two ``bwc run`` on one home and database (workers or replicas): while one receives an upload's bytes,
    the other refuses that upload with 409 ``upload_busy`` and writes nothing; the upload then completes whole."""
    server.start()
    other = Server(settings, tmp_path / "other.log")
    other.start()
    try:
        data = os.urandom(3 * MIB)
        sha = hashlib.sha256(data).hexdigest()
        headers = {"Authorization": f"Bearer {station.token}", "Tus-Resumable": "1.0.0"}
        created = httpx2.post(
            f"{server.base}/api/v1/uploads",
            headers={**headers, "Upload-Length": str(len(data)), "Upload-Metadata": _meta("DEV-9/two.mp4", sha)},
            timeout=DEADLINE_SECONDS,  # httpx's default of 5 s is shorter than a loaded machine's answer
        )
        assert created.status_code == 201, created.text
        location = created.headers["Location"]
        part = part_path(settings, location.rsplit("/", 1)[1])
        release = threading.Event()
        answers: list[httpx2.Response] = []

        def first_half_then_wait() -> Iterator[bytes]:
            yield data[: MIB // 2]
            release.wait(DEADLINE_SECONDS)
            yield data[MIB // 2 : 2 * MIB]

        patch = {**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
        holder = threading.Thread(
            target=lambda: answers.append(
                httpx2.patch(server.base + location, headers=patch, content=first_half_then_wait(), timeout=60)
            )
        )
        holder.start()
        try:
            _until("the first process holding the upload", lambda: _held_elsewhere(part) or None)
            rival = httpx2.patch(other.base + location, headers=patch, content=data, timeout=60)
            assert rival.status_code == 409, rival.text
            assert rival.json()["error"]["code"] == "upload_busy"
        finally:
            release.set()
            holder.join()
        [first] = answers
        assert first.status_code == 204 and first.headers["Upload-Offset"] == str(2 * MIB)
        assert part.read_bytes() == data[: 2 * MIB]  # nothing of the rival's body got in
        # The other process now takes the rest: the lock went with the first request.
        rest = httpx2.patch(
            other.base + location,
            headers={**patch, "Upload-Offset": str(2 * MIB)},
            content=data[2 * MIB :],
            timeout=DEADLINE_SECONDS,  # the last bytes are also the ingest: probe, store, commit
        )
        assert rest.status_code == 204, rest.text
        assert rest.headers["X-Ingest-Status"] == "stored" and rest.headers["X-Content-SHA256"] == sha
        assert [r[1] for r in _recordings(settings)] == [sha]
        assert not part.exists()
    finally:
        other.kill()
