"""One file uploaded by a docking station (SPEC §8 ``POST /recordings``), stored like a watched file.

The body streams once into the store (hashed on the way; a wrong digest stores nothing) and, on the same
pass, into a spool file under ``BWC_HOME/spool`` for ffprobe, which needs a seekable file (an MP4's index
may sit at its end). The database part is the ingest pipeline's own commit, so an upload and a watched file
become the same recording, sighting and audit events.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast
from urllib.parse import unquote

from sqlalchemy import select

from api.body import BodyReader
from config.errors import BadInput
from ingest.naming import classify, compile_patterns, parse_name
from ingest.pipeline import commit_stored
from ingest.probe import probe
from ingest.reader import FileState
from ingest.transfer import Transfer
from storage.db import reading
from storage.leftovers import SPOOL_PREFIX, spool_dir
from storage.models import Recording
from storage.runtime import Runtime
from storage.types import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadResult:
    recording_id: int
    sha256: str
    size: int
    duplicate: bool


def upload_relpath(header: str) -> str:
    """The station-relative path an ``X-Filename`` names (percent-encoded UTF-8 allowed), or BadInput."""
    name = unquote(header.strip())
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        name = name.encode("latin-1").decode("utf-8")  # raw UTF-8 bytes arrive as latin-1 text
    name = name.replace("\\", "/").lstrip("/")
    parts = PurePosixPath(name).parts
    if not parts or any(p in ("..", ".") for p in parts) or any(ord(c) < 32 for c in name):
        raise BadInput(f"X-Filename {header!r} is not a file name", code="bad_filename")
    kind = classify(parts[-1])
    if kind != "media":
        raise BadInput(f"X-Filename {parts[-1]!r} is not a media file ({kind})", code="not_media")
    return "/".join(parts)


def receive_upload(
    rt: Runtime,
    body: BodyReader,
    *,
    relpath: str,
    device: str,
    expected_sha256: str,
    station: str,
    actor: str,
    now: datetime | None = None,
) -> UploadResult:
    """Store, probe and commit one uploaded file; raises DigestMismatch (nothing stored) or StoreError."""
    settings = rt.settings
    now = now or utcnow()
    spool_folder = spool_dir(settings)
    spool_folder.mkdir(parents=True, exist_ok=True)
    suffix = PurePosixPath(relpath).suffix
    # A crash leaves this file behind; start-up removes it once idle (storage.leftovers).
    with tempfile.NamedTemporaryFile(dir=spool_folder, prefix=SPOOL_PREFIX, suffix=suffix) as spool:
        body.tee(cast(BinaryIO, spool))
        stored = rt.store.put(
            cast(BinaryIO, body),
            expected_sha256=expected_sha256.lower(),
            extra_digests=tuple(settings.extra_digests),
            retain_until=now + timedelta(days=settings.retention_days),
        )
        spool.flush()
        with reading(rt.sessions) as s:
            known = s.scalar(select(Recording.id).where(Recording.sha256 == stored.sha256)) is not None
        result = probe(Path(spool.name)) if stored.size and not known else None
    # The header names the device; the file name may still carry officer, start and sequence.
    names = replace(parse_name(relpath, compile_patterns(settings.name_patterns)), device=device)
    # An upload has no file mtime of its own: the time it arrived stands in (the last start-time fallback).
    state = FileState(size=stored.size, mtime_ns=int(now.timestamp() * 1e9), inode=0)
    recording_id, _sighting, duplicate = commit_stored(
        rt, relpath, station, actor, now, names, Transfer(stored, state, result)
    )
    log.info(
        "upload.%s recording=%s sha256=%s station=%s actor=%s",
        "duplicate" if duplicate else "stored",
        recording_id,
        stored.sha256,
        station,
        actor,
    )
    return UploadResult(recording_id, stored.sha256, stored.size, duplicate)
