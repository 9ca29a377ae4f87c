"""A docking station that pushes (SPEC §4): the watcher's handler that sends each complete file to the service.

The station holds no database or store credentials, only a station token. For each file it: hashes it here
(the digest it claims), remembers it in the local queue (:mod:`ingest.push_queue`), and uploads it with tus
(``POST /api/v1/uploads``, then ``PATCH`` chunks from the server's durable offset, asked with ``HEAD`` after
any interruption). Only when the server answers with the digest it stored — and it equals ours — does the
after-ingest step (keep, move, delete) touch the file. Network errors back off exponentially; 503 and 507
wait for the server's ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import httpx2

from config.settings import Settings
from ingest.after import apply_after_ingest
from ingest.naming import classify, sidecar_stem_key
from ingest.outcome import IngestOutcome
from ingest.paths import UnsafePath, relative_inside
from ingest.push_queue import PushQueue, QueueItem
from ingest.reader import FileState, NotRegularFile, open_regular, require_regular
from ingest.watcher import scan_once

log = logging.getLogger(__name__)

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
READ_BYTES = 256 * 1024
MIB = 1024 * 1024
TIMEOUT = httpx2.Timeout(60.0, connect=10.0)
Sleep = Callable[[float], None]


class PushProgress(Protocol):
    """Told how an upload goes (a progress bar on a terminal; nothing otherwise)."""

    def start(self, path: str, total: int, offset: int) -> None: ...

    def advance(self, path: str, n: int) -> None: ...

    def finish(self, path: str) -> None: ...


class _Silent:
    def start(self, path: str, total: int, offset: int) -> None:
        return None

    def advance(self, path: str, n: int) -> None:
        return None

    def finish(self, path: str) -> None:
        return None


class ServerBusy(Exception):
    """503 or 507: come back after ``retry_after`` seconds."""

    def __init__(self, status: int, retry_after: float, message: str) -> None:
        super().__init__(f"server busy ({status}): {message}")
        self.status = status
        self.retry_after = retry_after


class Refused(Exception):
    """The server refused the upload (auth, bad name, digest mismatch …); ``code`` is its error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


class Restart(Exception):
    """The upload on the server is gone or out of step: ask again (HEAD) or start a new one."""


@dataclass(frozen=True)
class Acknowledged:
    status: str  # stored | duplicate
    sha256: str
    recording_id: int | None


def retry_after_seconds(value: str | None, default: float) -> float:
    """``Retry-After`` as seconds (a number or an HTTP date); ``default`` when absent or unreadable."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class StationPusher:
    """The handler ``bwc watch DIR --server URL`` gives the watcher: one file in, one outcome out."""

    def __init__(
        self,
        settings: Settings,
        server: str,
        token: str,
        station: str,
        queue: PushQueue,
        *,
        progress: PushProgress | None = None,
        client: httpx2.Client | None = None,
    ) -> None:
        self.settings = settings
        self.server = server.rstrip("/")
        self.station = station
        self.queue = queue
        self.progress = progress or _Silent()
        self.chunk = max(1, int(settings.push_chunk_mb * MIB))
        self.rate = settings.push_max_rate_mbps * MIB  # bytes per second; 0: no cap
        headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": TUS_VERSION}
        self.http = client or httpx2.Client(base_url=self.server, headers=headers, timeout=TIMEOUT)

    def close(self) -> None:
        self.http.close()

    # -- the handler ------------------------------------------------------------------------------------

    def __call__(self, root: Path, path: Path) -> IngestOutcome:
        try:
            relpath = relative_inside(root, path)
        except UnsafePath as exc:
            return IngestOutcome("failed", str(path), self.station, reason="unsafe_path", error=str(exc))
        kind = classify(relpath.rsplit("/", 1)[-1])
        if kind in ("temporary", "other"):
            return IngestOutcome("ignored", relpath, self.station, kind=kind, reason=f"{kind} file")
        try:
            st = os.stat(path)
            require_regular(relpath, st)
        except NotRegularFile as exc:
            return IngestOutcome("failed", relpath, self.station, kind=kind, reason=exc.code, error=exc.message)
        except OSError as exc:
            return IngestOutcome("failed", relpath, self.station, kind=kind, reason="unreadable", error=str(exc))
        item = self.queue.get(relpath)
        if item is not None and item.state == "done" and (item.size, item.mtime_ns) == (st.st_size, st.st_mtime_ns):
            return self._after(path, item, "skipped_seen")
        due = item.next_attempt_at if item is not None and item.state != "done" else None
        if item is not None and due is not None and due > time.time():
            return self._waiting_out(item)
        if kind == "sidecar" and self._media_pending(path, relpath):
            return IngestOutcome("waiting", relpath, self.station, kind="sidecar", reason="its media is not pushed yet")
        if item is None or (item.size, item.mtime_ns) != (st.st_size, st.st_mtime_ns) or item.state == "done":
            try:
                item = self._hash_and_queue(path, relpath, kind, FileState.of(st))
            except OSError as exc:
                return IngestOutcome("failed", relpath, self.station, kind=kind, reason="unreadable", error=str(exc))
        return self._push(path, item)

    def _hash_and_queue(self, path: Path, relpath: str, kind: str, before: FileState) -> QueueItem:
        hasher = hashlib.sha256()
        with open_regular(path) as f:
            while chunk := f.read(8 * MIB):
                hasher.update(chunk)
        after = FileState.of(os.stat(path))
        if (after.size, after.mtime_ns) != (before.size, before.mtime_ns):
            raise OSError(f"{relpath} changed while it was hashed; tried again later")
        return self.queue.enqueue(relpath, kind, before.size, before.mtime_ns, hasher.hexdigest())

    def _media_pending(self, path: Path, relpath: str) -> bool:
        """A sidecar waits while a media file of its stem is in the folder and not yet acknowledged."""
        key = sidecar_stem_key(relpath)
        folder = relpath.rsplit("/", 1)[0] + "/" if "/" in relpath else ""
        try:
            names = [e.name for e in os.scandir(path.parent) if e.is_file()]
        except OSError:
            return False
        for name in names:
            if classify(name) == "media" and sidecar_stem_key(folder + name) == key:
                media = self.queue.get(folder + name)
                if media is None or media.state != "done":
                    return True
        return False

    # -- one upload ------------------------------------------------------------------------------------

    def _push(self, path: Path, item: QueueItem) -> IngestOutcome:
        try:
            ack = self._upload(path, item)
        except ServerBusy as exc:
            return self._failed(item, "server_busy", str(exc), exc.retry_after)
        except httpx2.TransportError as exc:
            return self._failed(item, "network", f"{type(exc).__name__}: {exc}", None)
        except Restart as exc:
            return self._failed(item, "restart", str(exc), 0.0)
        except Refused as exc:
            if exc.code == "digest_mismatch":
                # The bytes sent are not the bytes hashed: the file changed. Hash it again next time.
                self.queue.update(item.path, mtime_ns=-1, upload_url=None, offset=0)
            return self._failed(item, exc.code, str(exc), None)
        except OSError as exc:
            return self._failed(item, "unreadable", str(exc), None)
        finally:
            self.progress.finish(item.path)
        if ack.sha256 != item.sha256:
            # Never happens with an honest server (it refuses other bytes): then nothing is removed here.
            return self._failed(
                item, "server_digest_differs", f"server stored {ack.sha256}, we hashed {item.sha256}", None
            )
        self.queue.update(
            item.path,
            state="done",
            server_status=ack.status,
            server_sha256=ack.sha256,
            recording_id=ack.recording_id,
        )
        log.info("push.%s path=%s sha256=%s recording=%s", ack.status, item.path, ack.sha256, ack.recording_id)
        done = self.queue.get(item.path)
        assert done is not None
        return self._after(path, done, "duplicate" if ack.status == "duplicate" else "stored")

    def _upload(self, path: Path, item: QueueItem) -> Acknowledged:
        url, offset = item.upload_url, 0
        if url is not None:
            head = self.http.head(url)
            if head.status_code in (404, 410):
                url = None
            else:
                self._check(head)
                ack = _acknowledged(head)
                if ack is not None:
                    return ack
                offset = int(head.headers["Upload-Offset"])
        if url is None:
            url = self._create(item)
            offset = 0
        self.queue.update(item.path, upload_url=url, offset=offset, resumed_from=offset)
        log.info("push.resume path=%s from=%d of %d", item.path, offset, item.size)
        self.progress.start(item.path, item.size, offset)
        with open_regular(path) as f:
            while True:
                end = min(item.size, offset + self.chunk)
                f.seek(offset)
                response = self.http.patch(
                    url,
                    content=self._body(f, end - offset, item.path),
                    headers={"Upload-Offset": str(offset), "Content-Type": OFFSET_CONTENT_TYPE},
                )
                if response.status_code == 409:
                    raise Restart(f"the server's offset moved ({_message(response)}): asking again")
                if response.status_code == 404:
                    self.queue.update(item.path, upload_url=None, offset=0)
                    raise Restart("the upload expired on the server: starting again")
                self._check(response)
                new_offset = int(response.headers["Upload-Offset"])
                self.queue.add_sent(item.path, end - offset, new_offset)
                ack = _acknowledged(response)
                if ack is not None:
                    return ack
                if new_offset >= item.size:
                    raise Restart("the server has every byte but did not say what became of them")
                offset = new_offset

    def _create(self, item: QueueItem) -> str:
        meta = {"filename": item.path, "sha256": item.sha256}
        encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
        response = self.http.post(
            "/api/v1/uploads", headers={"Upload-Length": str(item.size), "Upload-Metadata": encoded}
        )
        self._check(response)
        location = response.headers.get("Location")
        if response.status_code != 201 or not location:
            raise Refused(response.status_code, "no_location", "the server made no upload")
        return str(location)

    def _body(self, f: BinaryIO, n: int, path: str) -> Iterator[bytes]:
        """``n`` bytes from the file's position, at most ``push_max_rate_mbps`` when a cap is set."""
        started = time.monotonic()
        sent = 0
        while sent < n:
            data = f.read(min(READ_BYTES, n - sent))
            if not data:
                raise OSError(f"{path} is shorter than when it was hashed")
            sent += len(data)
            self.progress.advance(path, len(data))
            yield data
            if self.rate > 0:
                ahead = sent / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

    def _check(self, response: httpx2.Response) -> None:
        if response.status_code in (503, 507):
            wait = retry_after_seconds(response.headers.get("Retry-After"), self.settings.retry_base_seconds)
            raise ServerBusy(response.status_code, wait, _message(response))
        if response.status_code >= 400:
            raise Refused(response.status_code, _code(response), _message(response))

    # -- outcomes --------------------------------------------------------------------------------------

    def _failed(self, item: QueueItem, reason: str, error: str, wait: float | None) -> IngestOutcome:
        current = self.queue.get(item.path)
        attempts = (current.attempts if current is not None else item.attempts) + 1
        if wait is None:
            wait = min(self.settings.retry_max_seconds, self.settings.retry_base_seconds * 2 ** (attempts - 1))
        now = time.time()
        due = now + wait
        self.queue.failed(item.path, f"{reason}: {error}", due, now)
        log.warning("push.failed path=%s reason=%s retry_in=%.1fs error=%s", item.path, reason, wait, error)
        return IngestOutcome(
            "failed",
            item.path,
            self.station,
            kind=item.kind,
            reason=reason,
            error=error,
            next_attempt_at=datetime.fromtimestamp(due, UTC),
        )

    def _waiting_out(self, item: QueueItem) -> IngestOutcome:
        due = item.next_attempt_at or time.time()
        return IngestOutcome(
            "failed",
            item.path,
            self.station,
            kind=item.kind,
            reason="backing_off",
            error=item.last_error,
            next_attempt_at=datetime.fromtimestamp(due, UTC),
        )

    def _after(self, path: Path, item: QueueItem, status: str) -> IngestOutcome:
        """The server holds the bytes (its digest equals ours): now keep, move or delete the station's copy."""
        done = item.after_ingest
        if done is None:
            try:
                done, _dest = apply_after_ingest(self.settings.after_ingest, path, item.path, self.settings.done_dir)
                self.queue.update(item.path, after_ingest=done)
            except OSError as exc:
                log.error("push.after_failed path=%s error=%s", item.path, exc)
                done = None
        outcome_status = "duplicate" if status == "duplicate" else ("stored" if status == "stored" else "skipped_seen")
        return IngestOutcome(
            outcome_status,  # type: ignore[arg-type]
            item.path,
            self.station,
            kind=item.kind,
            recording_id=item.recording_id,
            sha256=item.server_sha256,
            after_ingest=done,
        )


def _acknowledged(response: httpx2.Response) -> Acknowledged | None:
    status = response.headers.get("X-Ingest-Status")
    sha256 = response.headers.get("X-Content-SHA256")
    if not status or not sha256:
        return None
    recording = response.headers.get("X-Recording-Id")
    return Acknowledged(status, sha256.lower(), int(recording) if recording and recording.isdigit() else None)


def _code(response: httpx2.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"


def _message(response: httpx2.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


def push_once(
    settings: Settings, root: Path, station: str, pusher: StationPusher, *, tries: int, sleep: Sleep = time.sleep
) -> list[IngestOutcome]:
    """``--once``: push what is complete now; failed files are retried after their back-off (or the server's
    ``Retry-After``), for at most ``tries`` passes. What is still not done stays queued for the next run."""
    outcomes: list[IngestOutcome] = []
    for attempt in range(1, tries + 1):
        outcomes = scan_once(settings, root, station, pusher)
        due = [o.next_attempt_at for o in outcomes if o.failed and o.next_attempt_at is not None]
        if not due or attempt == tries:
            return outcomes
        wait = (min(due) - datetime.now(UTC)).total_seconds()
        log.info("push.round attempt=%d failed=%d next_in=%.1fs", attempt, len(due), wait)
        sleep(max(0.0, wait))
    return outcomes


def queue_backoff(queue: PushQueue) -> list[tuple[str, datetime]]:
    """Files a pushing station failed on before, and when each is due (the watcher's ``backoff``)."""
    return [
        (item.path, datetime.fromtimestamp(item.next_attempt_at, UTC))
        for item in queue.items()
        if item.state != "done" and item.next_attempt_at is not None
    ]
