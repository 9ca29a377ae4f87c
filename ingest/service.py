"""The one ingest path: bytes plus what their sender claims (name, device, digest, station) in, an outcome out.

Three callers share it. The local watcher hands it files through :func:`local_handler` (the pipeline, which
also proves the source held still and does the after-ingest step); ``POST /recordings`` and the resumable
uploads hand it streams through :func:`receive`. Either way the same commit makes the recording, its sighting,
the audit events and the sidecar links, so a watched file and a pushed one become the same evidence.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast

from sqlalchemy import select

from config.errors import BadInput
from ingest.failures import open_failures
from ingest.naming import classify, name_patterns, parse_name
from ingest.outcome import IngestOutcome
from ingest.pipeline import commit_stored, ingest_file
from ingest.probe import probe
from ingest.reader import FileState
from ingest.sidecars import commit_sidecar
from ingest.transfer import Transfer
from ingest.watcher import Handler, OutcomeHook, ScanProgress, Watcher, scan_once
from storage.basics import utcnow
from storage.db import reading
from storage.leftovers import SPOOL_PREFIX, spool_dir
from storage.models import Recording
from storage.objects import StoredObject
from storage.runtime import Runtime

log = logging.getLogger(__name__)


def local_handler(rt: Runtime, station: str, actor: str | None = None) -> Handler:
    """The watcher's handler where the database and the store are at hand: the full local pipeline."""

    def handle(root: Path, path: Path) -> IngestOutcome:
        return ingest_file(rt, root, path, station, actor)

    return handle


def local_backoff(rt: Runtime, station: str) -> list[tuple[str, datetime]]:
    """The station's open failures and when each is due again (so a restart keeps their back-off)."""
    with rt.sessions() as s:
        return [(failure.path, failure.next_attempt_at) for failure, _code in open_failures(s, station)]


def local_watcher(
    rt: Runtime,
    root: Path,
    station: str,
    *,
    actor: str | None = None,
    on_outcome: OutcomeHook | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Watcher:
    """A watcher that ingests into this service's own database and store (``bwc watch DIR``, ``bwc run``)."""
    return Watcher(
        rt.settings,
        root,
        station,
        local_handler(rt, station, actor),
        backoff=lambda: local_backoff(rt, station),
        on_outcome=on_outcome,
        clock=clock,
    )


def local_scan(
    rt: Runtime,
    root: Path,
    station: str,
    progress: ScanProgress | None = None,
    *,
    on_outcome: OutcomeHook | None = None,
    actor: str | None = None,
) -> list[IngestOutcome]:
    """Ingest what is complete under ``root`` now (``bwc watch DIR --once``)."""
    return scan_once(rt.settings, root, station, local_handler(rt, station, actor), progress, on_outcome=on_outcome)


@dataclass(frozen=True)
class Claim:
    """What the sender says about the bytes; only ``sha256`` is checked against them (the server hashes)."""

    relpath: str  # station-relative, ``/``-separated
    station: str
    actor: str
    sha256: str
    device: str | None = None  # wins over the device the name gives


def kind_of(relpath: str) -> str:
    """``media`` or ``sidecar``; anything else is refused (BadInput) before a byte is read."""
    kind = classify(relpath.rsplit("/", 1)[-1])
    if kind not in ("media", "sidecar"):
        raise BadInput(f"{relpath!r} is neither a media file nor a sidecar ({kind})", code="not_media")
    return kind


def receive(
    rt: Runtime,
    source: BinaryIO | Path,
    claim: Claim,
    *,
    now: datetime | None = None,
    received_sha256: str | None = None,
) -> IngestOutcome:
    """Store ``source`` (hashed on the way), probe and commit it; returns ``stored`` or ``duplicate``.

    ``source`` is a stream (``POST /recordings``: copied to a spool file on the way, since an MP4's index may sit
    at its end and ffprobe needs to seek) or a whole file the caller hands over and never writes again (a
    finished resumable upload: the store may take it as it is, and ffprobe reads it meanwhile). Raises
    DigestMismatch (nothing stored), StoreError, BadInput or SQLAlchemyError; the caller keeps or drops its
    copy accordingly. ``received_sha256``: for a handed-over file, the digest its writer computed of the durable
    bytes (see :meth:`storage.objects.ObjectStore.put_file`).
    """
    now = now or utcnow()
    kind = kind_of(claim.relpath)
    if kind == "sidecar":
        stored = _put(rt, source, claim, now, received_sha256)
        sidecar_id, duplicate, recording_id = commit_sidecar(rt, claim.relpath, claim.station, claim.actor, now, stored)
        log.info("upload.sidecar path=%s sha256=%s recording=%s", claim.relpath, stored.sha256, recording_id)
        return IngestOutcome(
            "duplicate" if duplicate else "stored",
            claim.relpath,
            claim.station,
            kind="sidecar",
            recording_id=recording_id,
            sidecar_id=sidecar_id,
            sha256=stored.sha256,
        )
    if isinstance(source, Path):
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe") as pool:
            # ffprobe is a subprocess of its own: it runs while the store hashes (bytes already known keep their
            # first probe; a claim that lies is refused by the store before the probe is used).
            empty = source.stat().st_size == 0
            pending = None if empty or _known(rt, claim.sha256) else pool.submit(probe, source)
            stored = _put(rt, source, claim, now, received_sha256)
            result = pending.result() if pending is not None else None
    else:
        folder = spool_dir(rt.settings)
        folder.mkdir(parents=True, exist_ok=True)
        suffix = PurePosixPath(claim.relpath).suffix
        # A crash leaves this file behind; start-up removes it once idle (storage.leftovers).
        with tempfile.NamedTemporaryFile(dir=folder, prefix=SPOOL_PREFIX, suffix=suffix) as spool:
            stored = _put(rt, cast(BinaryIO, _Tee(source, cast(BinaryIO, spool))), claim, now)
            spool.flush()
            result = None if not stored.size or _known(rt, stored.sha256) else probe(Path(spool.name))
    names = parse_name(claim.relpath, name_patterns(rt.settings))
    if claim.device:
        names = replace(names, device=claim.device)
    # Pushed bytes have no file mtime here: the time they arrived stands in (the last start-time fallback).
    state = FileState(size=stored.size, mtime_ns=int(now.timestamp() * 1e9), inode=0)
    moved = Transfer(stored, state, result, now + timedelta(days=rt.settings.retention_days))
    recording_id, _sighting, duplicate = commit_stored(rt, claim.relpath, claim.station, claim.actor, now, names, moved)
    log.info(
        "upload.%s recording=%s sha256=%s station=%s actor=%s",
        "duplicate" if duplicate else "stored",
        recording_id,
        stored.sha256,
        claim.station,
        claim.actor,
    )
    return IngestOutcome(
        "duplicate" if duplicate else "stored",
        claim.relpath,
        claim.station,
        recording_id=recording_id,
        sha256=stored.sha256,
    )


def _put(
    rt: Runtime, source: BinaryIO | Path, claim: Claim, now: datetime, received_sha256: str | None = None
) -> StoredObject:
    expected, extra = claim.sha256.lower(), tuple(rt.settings.extra_digests)
    until = now + timedelta(days=rt.settings.retention_days)
    if isinstance(source, Path):
        return rt.store.put_file(
            source, expected_sha256=expected, extra_digests=extra, retain_until=until, received_sha256=received_sha256
        )
    return rt.store.put(source, expected_sha256=expected, extra_digests=extra, retain_until=until)


def _known(rt: Runtime, sha256: str) -> bool:
    """Bytes already stored are a duplicate sighting: they keep their first probe, so none is run."""
    with reading(rt.sessions) as s:
        return s.scalar(select(Recording.id).where(Recording.sha256 == sha256.lower())) is not None


class _Tee:
    """A read-only stream that copies what is read from ``source`` into ``sink`` (the spool file)."""

    def __init__(self, source: BinaryIO, sink: BinaryIO) -> None:
        self._source = source
        self._sink = sink

    def readinto(self, buffer: bytearray | memoryview) -> int:
        n = self._source.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._sink.write(memoryview(buffer)[:n])
        return int(n or 0)

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._sink.write(data)
        return data

    def readable(self) -> bool:
        return True
