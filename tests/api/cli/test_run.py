"""``bwc run`` end to end: a real process serves the API and ingests what lands in its inbox."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import httpx2
import psutil
import pytest
from sqlalchemy import func, select

from api.auth import create_token
from audit import linking, notes
from audit.log_verify import verify_log
from audit.notes import Signer
from config.settings import Settings
from storage import local_copy
from storage.basics import utcnow
from storage.db import transaction
from storage.events import event_details
from storage.models import AuditCheckpoint, AuditEvent
from storage.runtime import build_runtime
from tests.fixtures import audit_data as ad
from tests.fixtures.audit_log import new_signer, pem
from tests.fixtures.cli import BWC as BWC_SCRIPT
from tests.fixtures.media import MediaFactory

BWC = str(BWC_SCRIPT)
DEADLINE_SECONDS = 120.0  # a bound on waiting, not a performance threshold
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: str, proc: subprocess.Popen[bytes], probe: Callable[[], T | None]) -> T:
    """Poll the service's own API (the event we wait for) until ``probe`` answers, within a bound."""
    end = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"bwc run exited with {proc.returncode} while waiting for {what}")
        try:
            result = probe()
        except httpx2.TransportError:
            result = None
        if result is not None:
            return result
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    base: str
    reviewer: str
    station: str
    log: Path
    auditor: str
    signer: Signer


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[Service]:
    rt = build_runtime(settings)
    with transaction(rt.sessions) as s:
        # the inbox's recordings belong to no unit yet: only an unscoped token (admin, auditor) sees them (SPEC §15)
        _token, reviewer = create_token(s, role="admin", name="run-reviewer", actor="test")
        _token, station = create_token(s, role="station", name="run-station", station_code="ST-RUN", actor="test")
        _token, auditor = create_token(s, role="auditor", name="run-auditor", actor="test")
    rt.close()
    signer = new_signer()
    port = _free_port()
    env = {
        **os.environ,
        "BWC_HOME": str(settings.home),
        "BWC_DATABASE_URL": settings.db_url,
        "BWC_STABLE_SECONDS": "0",
        "BWC_RESCAN_SECONDS": "1",
        "BWC_SIGNING_KEY": pem(signer),
        "BWC_CHECKPOINT_SECONDS": "0.2",
        "BWC_HOUSEKEEPING_SECONDS": "0.2",
        "BWC_UPLOAD_GRACE_HOURS": "1",  # the service's policy; the test judges under the default 24 h
    }
    env.pop("BWC_CONFIG", None)
    log = tmp_path / "bwc-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [BWC, "run", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield Service(proc, f"http://127.0.0.1:{port}", reviewer, station, log, auditor, signer)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _healthy(service: Service) -> None:
    url = f"{service.base}/api/v1/healthz"
    assert _until("healthz", service.proc, lambda: httpx2.get(url, timeout=5).status_code == 200 or None)


def test_run_serves_ingests_and_stops_cleanly(
    service: Service, settings: Settings, media: MediaFactory, tmp_path: Path
) -> None:
    proc, base, log = service.proc, service.base, service.log
    headers = {"Authorization": f"Bearer {service.reviewer}"}
    _healthy(service)

    # Arrive the way a docking station's copy finishes: complete, then renamed into place.
    staged = media.make(tmp_path / "staging" / "DEV-42_P1_20240501080000_0001.mp4", seconds=1)
    target = settings.inbox_path / "DEV-42_P1_20240501080000_0001.mp4"
    os.replace(staged, target)

    def listed() -> list[dict[str, object]] | None:
        r = httpx2.get(f"{base}/api/v1/recordings", params={"device": "DEV-42"}, headers=headers, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["recordings"] or None

    found = _until("the recording to be listed", proc, listed)
    assert [r["original_name"] for r in found] == [target.name]
    assert found[0]["status"] == "ok"

    def checkpoint() -> str | None:  # the checkpointer signs the ingest's events (after the 3 token events)
        r = httpx2.get(f"{base}/api/v1/audit/checkpoint", headers={"Authorization": f"Bearer {service.auditor}"})
        return r.text if r.status_code == 200 and int(r.text.split("\n")[1]) > 3 else None

    note = _until("a checkpoint covering the ingest", proc, checkpoint)
    assert notes.open_checkpoint(note, service.signer.verifier).size > 3

    # An action filmed two hours ago whose cameras never docked, judged pending under a 24 h grace; the
    # service's policy gives 1 h, so its grace is over (pending_until says so, as a judge under it would
    # have left it): the housekeeping re-judges it and its findings open, with nothing else happening.
    rt = build_runtime(settings)
    with transaction(rt.sessions) as s:
        row = ad.action(
            s, "RUN-1", "U-RUN", utcnow() - timedelta(hours=2), "complete", minutes=10, devices=("RX", "RY")
        )
        linking.on_actions_changed(s, rt.settings, [row.id], "test")
        s.refresh(row)
        assert row.verdict == "pending"
        assert row.ended_at is not None
        row.pending_until = row.ended_at + timedelta(hours=1)
    rt.close()

    def finding_kinds() -> set[str] | None:
        r = httpx2.get(
            f"{base}/api/v1/findings",
            headers={"Authorization": f"Bearer {service.auditor}"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        return {f["kind"] for f in r.json()["findings"] if f["subject"] == "action:RUN-1"} or None

    assert _until("the housekeeping to open the findings", proc, finding_kinds) == {"no_footage", "shortfall"}

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=DEADLINE_SECONDS) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text, text
    rt = build_runtime(settings)
    with transaction(rt.sessions) as s:  # one last checkpoint on the way out: every event is signed
        assert verify_log(s, service.signer.verifier).ok
        latest = s.scalar(select(func.max(AuditCheckpoint.size)))
        assert latest == s.scalar(select(func.max(AuditEvent.seq)))
    rt.close()


@pytest.mark.slow
def test_upload_streams_with_flat_memory(service: Service, tmp_path: Path) -> None:
    """A body read whole would grow the server by at least its size; streaming keeps it to the store's buffers,
    which are fixed: the local copy's ``SLOTS`` pairs of regions (96 MiB with four in flight), whatever the size."""
    buffers = 2 * local_copy.SLOTS * local_copy.REGION_SIZE
    size = 256 * 1024 * 1024
    assert buffers < size / 2, "the body must be far larger than the store's buffers for this test to mean anything"
    blob = tmp_path / "big.mp4"
    digest = hashlib.sha256()
    with open(blob, "wb") as f:
        for i in range(size // (1 << 20)):
            chunk = hashlib.sha256(str(i).encode()).digest() * (1 << 15)  # 1 MiB, incompressible enough
            digest.update(chunk)
            f.write(chunk)
    _healthy(service)
    server = psutil.Process(service.proc.pid)
    before = server.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.memory_info().rss)
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()

    def body() -> Iterator[bytes]:
        with open(blob, "rb") as f:
            while chunk := f.read(256 * 1024):
                yield chunk

    try:
        response = httpx2.post(
            f"{service.base}/api/v1/recordings",
            content=body(),
            timeout=DEADLINE_SECONDS,
            headers={
                "Authorization": f"Bearer {service.station}",
                "X-Device-Id": "MEM-1",
                "X-Filename": "MEM-1_20240501_080000_1.mp4",
                "X-Content-SHA256": digest.hexdigest(),
            },
        )
    finally:
        done.set()
        sampler.join()
    assert response.status_code == 201, response.text
    assert response.json()["size"] == size
    grown = peak - before
    assert grown < size / 2, f"server grew by {grown / 2**20:.0f} MiB for a {size / 2**20:.0f} MiB upload"


def test_a_killed_upload_leaves_a_spool_file_that_start_up_removes(
    service: Service, settings: Settings, media: MediaFactory, tmp_path: Path
) -> None:
    _healthy(service)
    clip = media.make(tmp_path / "clip.mp4", seconds=2)
    data = clip.read_bytes()
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield data[:4096]
        release.wait(DEADLINE_SECONDS)  # the rest never comes: the server dies first
        yield data[4096:]

    headers = {
        "Authorization": f"Bearer {service.station}",
        "X-Device-Id": "DEV-9",
        "X-Filename": "DEV-9_P1_20240501080000_0001.mp4",
        "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
    }
    upload = threading.Thread(
        target=lambda: _ignore_transport_errors(
            lambda: httpx2.post(f"{service.base}/api/v1/recordings", headers=headers, content=body(), timeout=30)
        ),
        daemon=True,
    )
    upload.start()
    spool = settings.home / "spool"
    [leftover] = _until("the upload's spool file", service.proc, lambda: list(spool.glob("upload-*")) or None)
    service.proc.kill()  # a crash mid-upload: nothing gets to clean up
    service.proc.wait()
    release.set()
    upload.join(DEADLINE_SECONDS)
    assert leftover.exists()

    env = {**os.environ, "BWC_HOME": str(settings.home), "BWC_DATABASE_URL": settings.db_url}
    fresh = subprocess.run([BWC, "init"], env=env, capture_output=True, text=True, timeout=DEADLINE_SECONDS)
    assert fresh.returncode == 0 and leftover.exists()  # young: it might be a live upload of another replica
    old = time.time() - 2 * 3600
    os.utime(leftover, (old, old))
    later = subprocess.run([BWC, "init"], env=env, capture_output=True, text=True, timeout=DEADLINE_SECONDS)
    assert later.returncode == 0, later.stderr
    assert not leftover.exists() and "leftovers removed: 1 spool" in later.stdout
    rt = build_runtime(settings)
    try:
        with rt.sessions() as s:
            [event] = s.scalars(select(AuditEvent).where(AuditEvent.kind == "storage.leftovers_removed"))
        assert [k["key"] for k in event_details(event)["keys"]] == [f"spool/{leftover.name}"]
    finally:
        rt.close()


def _ignore_transport_errors(call: Callable[[], object]) -> None:
    with contextlib.suppress(httpx2.TransportError):  # the server was killed under it, on purpose
        call()


def _workers(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """The uvicorn worker processes under a ``bwc run`` (spawned by multiprocessing; not its resource tracker)."""
    found = []
    for child in psutil.Process(proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if any("spawn_main" in part for part in child.cmdline()):
                found.append(child)
    return found


def test_run_with_two_workers_serves_from_both_and_stops_them(settings: Settings, tmp_path: Path) -> None:
    rt = build_runtime(settings)
    with transaction(rt.sessions) as s:
        _token, auditor = create_token(s, role="auditor", name="workers-auditor", actor="test")
        ad.action(s, "W-1", "U-W", utcnow() - timedelta(days=1), "complete", devices=("WX",))
    rt.close()
    port = _free_port()
    env = {**os.environ, "BWC_HOME": str(settings.home), "BWC_DATABASE_URL": settings.db_url}
    env.pop("BWC_CONFIG", None)
    log = tmp_path / "bwc-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [BWC, "run", "--no-watch", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        health = f"{base}/api/v1/healthz"
        assert _until("healthz", proc, lambda: httpx2.get(health, timeout=5).status_code == 200 or None)
        workers = _until("two workers", proc, lambda: _workers(proc) if len(_workers(proc)) == 2 else None)
        headers = {"Authorization": f"Bearer {auditor}"}
        with httpx2.Client(base_url=base, headers=headers, timeout=30) as client:
            for _ in range(8):  # on one shared socket: whichever worker takes it, the answer is the same
                case = client.get("/api/v1/cases/case-W-1")
                assert case.status_code == 200, case.text
                assert [a["action_id"] for a in case.json()["actions"]] == ["W-1"]
        # each worker is a whole service: kill one and the other still answers, while the parent replaces it
        workers[0].kill()
        assert httpx2.get(f"{base}/api/v1/cases/case-W-1", headers=headers, timeout=30).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE_SECONDS) == 0, log.read_text()
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers[1:])
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_run_refuses_fewer_than_one_worker(settings: Settings) -> None:
    env = {**os.environ, "BWC_HOME": str(settings.home), "BWC_DATABASE_URL": settings.db_url}
    done = subprocess.run([BWC, "run", "--workers", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--workers" in done.stderr and "greater than or equal to 1" in done.stderr


@pytest.mark.parametrize("asked", [None, "true"])
def test_the_per_request_access_log_is_written_only_when_asked(
    settings: Settings, tmp_path: Path, asked: str | None
) -> None:
    port = _free_port()
    env = {**os.environ, "BWC_HOME": str(settings.home), "BWC_DATABASE_URL": settings.db_url}
    env.pop("BWC_CONFIG", None)
    env.pop("BWC_ACCESS_LOG", None)
    if asked is not None:
        env["BWC_ACCESS_LOG"] = asked
    log = tmp_path / "bwc-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [BWC, "run", "--no-watch", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        health = f"http://127.0.0.1:{port}/api/v1/healthz"
        assert _until("healthz", proc, lambda: httpx2.get(health, timeout=5).status_code == 200 or None)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE_SECONDS) == 0, log.read_text()
        text = log.read_text()
        assert "Application startup complete" in text, text  # uvicorn's own log is there either way
        assert ('"GET /api/v1/healthz HTTP/1.1" 200' in text) == (asked is not None), text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
