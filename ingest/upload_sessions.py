"""Resumable uploads from stations (tus 1.0: core, creation, termination, expiration), the server's half.

A session is a row (what the station claims, the durable offset) plus a part file under
``BWC_HOME/uploads``. Bytes are appended to the part file and fsynced before the row's offset moves, so the
offset a ``HEAD`` reports is always on disk: a station that lost its connection, or a service killed
mid-upload, resumes from there. Once the last byte is in, the part file goes through the one ingest path
(:func:`ingest.service.receive`), which hashes it again and trusts nothing the station said; a wrong digest
removes the session and its bytes. Sessions never finished expire and are removed at start-up.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from config.errors import BadInput, Conflict, NotFound, Unavailable
from config.settings import Settings
from ingest.outcome import IngestOutcome
from storage.basics import utcnow
from storage.db import reading, transaction
from storage.models import UploadSession
from storage.objects import Leftover
from storage.runtime import Runtime

log = logging.getLogger(__name__)

PART_SUFFIX = ".part"
MIB = 1024 * 1024
BUSY_RETRY_SECONDS = 2  # too many uploads at once: a slot frees up soon
STORE_RETRY_SECONDS = 30  # the object store is away
DISK_RETRY_SECONDS = 300  # the disk is nearly full: an operator has to act


class UploadNotFound(NotFound):
    code = "upload_not_found"


class OffsetMismatch(Conflict):
    """The PATCH does not start where the durable bytes end; the station asks (HEAD) and resumes from there."""

    code = "offset_mismatch"


class UploadBusy(Conflict):
    """Another request is appending to this upload right now (a station that restarted before the first noticed)."""

    code = "upload_busy"


class Busy(Unavailable):
    """Back-pressure: come back after ``retry_after`` seconds (sent as ``Retry-After``)."""

    code = "busy"
    status = 503

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        if status is not None:
            self.status = status


class InsufficientStorage(Busy):
    code = "insufficient_storage"
    status = 507


@dataclass(frozen=True)
class SessionView:
    """One session as the routes and the station see it."""

    id: str
    station: str
    actor: str
    relpath: str
    device: str | None
    claimed_sha256: str
    length: int
    offset: int
    expires_at: datetime
    outcome: str | None
    stored_sha256: str | None
    recording_id: int | None
    sidecar_id: int | None

    @property
    def complete(self) -> bool:
        return self.outcome is not None


def uploads_dir(settings: Settings) -> Path:
    return settings.home / "uploads"


def part_path(settings: Settings, upload_id: str) -> Path:
    return uploads_dir(settings) / f"{upload_id}{PART_SUFFIX}"


def _view(row: UploadSession) -> SessionView:
    return SessionView(
        row.id,
        row.station_code,
        row.actor,
        row.relpath,
        row.device,
        row.claimed_sha256,
        row.length,
        row.offset,
        row.expires_at,
        row.outcome,
        row.stored_sha256,
        row.recording_id,
        row.sidecar_id,
    )


def check_disk(settings: Settings, incoming: int) -> None:
    """507 when the part files' disk would keep less than ``upload_min_free_mb`` after ``incoming`` bytes."""
    folder = uploads_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder).free
    keep = int(settings.upload_min_free_mb * MIB)
    if free - incoming < keep:
        raise InsufficientStorage(
            f"not enough disk for this upload: {free // MIB} MiB free, {incoming // MIB} MiB coming,"
            f" {keep // MIB} MiB must stay free",
            retry_after=DISK_RETRY_SECONDS,
        )


def create_session(
    rt: Runtime,
    *,
    relpath: str,
    station: str,
    actor: str,
    claimed_sha256: str,
    length: int,
    device: str | None,
    now: datetime | None = None,
) -> SessionView:
    """A new, empty upload (tus creation); raises InsufficientStorage before anything is made."""
    now = now or utcnow()
    if length < 0:
        raise BadInput("Upload-Length must be 0 or more", code="bad_upload_length")
    check_disk(rt.settings, length)
    upload_id = secrets.token_hex(16)
    part = part_path(rt.settings, upload_id)
    with open(part, "xb") as f:
        os.fsync(f.fileno())
    _fsync_dir(part.parent)
    row = UploadSession(
        id=upload_id,
        station_code=station,
        actor=actor,
        relpath=relpath,
        device=device,
        claimed_sha256=claimed_sha256.lower(),
        length=length,
        offset=0,
        created_at=now,
        expires_at=now + timedelta(hours=rt.settings.upload_expiry_hours),
    )
    with transaction(rt.sessions) as s:
        s.add(row)
        s.flush()
        view = _view(row)
    log.info("upload.created id=%s path=%s length=%d station=%s", upload_id, relpath, length, station)
    return view


def get_session(rt: Runtime, upload_id: str, actor: str, now: datetime | None = None) -> SessionView:
    """``find_session`` in its own short reading transaction."""
    with reading(rt.sessions) as s:
        return find_session(s, upload_id, actor, now)


def find_session(s: Session, upload_id: str, actor: str, now: datetime | None = None) -> SessionView:
    """The session, if it exists, has not expired and belongs to this token; else UploadNotFound."""
    now = now or utcnow()
    row = s.get(UploadSession, upload_id)
    view = _view(row) if row is not None else None
    if view is None or view.actor != actor or (view.expires_at <= now and not view.complete):
        raise UploadNotFound(f"no upload {upload_id!r} (never made, finished long ago or expired)")
    return view


def hold(rt: Runtime, upload_id: str) -> int | None:
    """Take the upload for this request alone: an exclusive ``flock`` on its part file, returned as a descriptor
    to close when done (the kernel drops the lock then, or when the process dies, so a SIGKILL leaves none).

    The lock lives in the kernel, not in this process, so two workers or two replicas on one host serialise on
    it just as two requests in one process do; whoever comes second gets UploadBusy (409) at once and asks
    again with ``HEAD``. None: the part file is gone (the upload finished or was removed meanwhile): read the
    session again to know which. Hold it, then read the session: only then is its offset this request's own.
    """
    try:
        fd = os.open(part_path(rt.settings, upload_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UploadBusy(f"upload {upload_id!r} is receiving bytes in another request") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_for_append(rt: Runtime, view: SessionView, offset: int) -> tuple[int, int]:
    """Open the part file at the durable offset for appending; returns (fd, offset). Raises OffsetMismatch.

    A part file that holds every byte is never opened for writing again: the store may have taken that very
    file (a hard link) as the object. The caller holds the upload (:func:`hold`).
    """
    if offset != view.offset:
        raise OffsetMismatch(f"Upload-Offset {offset} does not match the stored offset {view.offset}")
    if view.offset >= view.length:
        raise OffsetMismatch(f"the upload holds all its {view.length} bytes; nothing is appended")
    part = part_path(rt.settings, view.id)
    try:
        fd = os.open(part, os.O_RDWR | os.O_CLOEXEC)  # read too: the arrival hash may rebuild from it
    except FileNotFoundError:
        raise UploadNotFound(f"upload {view.id!r} has lost its bytes; start it again") from None
    # Bytes beyond the durable offset came from a request that died before its fsync: never trusted.
    os.ftruncate(fd, view.offset)
    os.lseek(fd, view.offset, os.SEEK_SET)
    return fd, view.offset


def make_durable(
    rt: Runtime, view: SessionView, fd: int, durable: int, offset: int, now: datetime | None = None
) -> None:
    """fsync what was appended, then move the recorded offset from ``durable`` to ``offset`` (and the expiry
    out). The move is conditional: an offset that is no longer ``durable`` was moved by someone else (which
    :func:`hold` prevents on one host) and raises OffsetMismatch instead of being overwritten."""
    os.fsync(fd)
    now = now or utcnow()
    expires = now + timedelta(hours=rt.settings.upload_expiry_hours)
    with transaction(rt.sessions) as s:
        moved = s.execute(
            update(UploadSession)
            .where(UploadSession.id == view.id, UploadSession.offset == durable)
            .values(offset=offset, expires_at=expires)
        )
        if cast(CursorResult[Any], moved).rowcount == 1:
            return
        if s.get(UploadSession, view.id) is None:  # terminated meanwhile
            raise UploadNotFound(f"upload {view.id!r} was removed")
    raise OffsetMismatch(f"upload {view.id!r}: its offset moved away from {durable} in another request")


def record_outcome(rt: Runtime, view: SessionView, outcome: IngestOutcome) -> SessionView:
    """The bytes are committed: remember what they became (for a HEAD after a lost answer), drop the part file."""
    with transaction(rt.sessions) as s:
        row = s.get(UploadSession, view.id)
        if row is not None:
            row.outcome = outcome.status
            row.stored_sha256 = outcome.sha256
            row.recording_id = outcome.recording_id
            row.sidecar_id = outcome.sidecar_id
            row.offset = row.length
            view = _view(row)
    with contextlib.suppress(FileNotFoundError):
        part_path(rt.settings, view.id).unlink()
    return view


def remove_session(rt: Runtime, upload_id: str) -> None:
    """Terminate: the row and its bytes go (a wrong digest, or the station's DELETE)."""
    with transaction(rt.sessions) as s:
        s.execute(delete(UploadSession).where(UploadSession.id == upload_id))
    with contextlib.suppress(FileNotFoundError):
        part_path(rt.settings, upload_id).unlink()


def remove_expired_uploads(rt: Runtime, now: datetime, idle_before: datetime) -> list[Leftover]:
    """Sessions past their expiry (and part files without a session, idle since ``idle_before``) go."""
    removed: list[Leftover] = []
    with transaction(rt.sessions) as s:
        rows = s.scalars(select(UploadSession).where(UploadSession.expires_at < now)).all()
        for row in rows:
            part = part_path(rt.settings, row.id)
            size = _size(part)
            with contextlib.suppress(FileNotFoundError):
                part.unlink()
            if row.outcome is None:
                removed.append(Leftover("upload", f"uploads/{part.name}", size, row.expires_at, upload_id=row.id))
            s.delete(row)
        known = set(s.scalars(select(UploadSession.id)).all())
    folder = uploads_dir(rt.settings)
    with contextlib.suppress(FileNotFoundError):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            name = entry.name
            if not name.endswith(PART_SUFFIX) or name[: -len(PART_SUFFIX)] in known:
                continue
            st = entry.stat(follow_symlinks=False)
            since = datetime.fromtimestamp(st.st_mtime, UTC)
            if since >= idle_before:
                continue  # may be a session being created right now in another process
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
            removed.append(Leftover("upload", f"uploads/{name}", st.st_size, since))
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
