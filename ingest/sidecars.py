"""Sidecars (GPS tracks, XML, subtitles): stored like recordings and linked to the one with their stem.

A sidecar that arrives before its media waits while that media file is in the folder; one whose media
never comes is stored unlinked (nothing is ever dropped) and linked if the media turns up later.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from audit.holds import hold_sidecar
from audit.registry import Registry
from ingest import failures
from ingest.jobs import after_ingest, failed
from ingest.naming import classify, sidecar_stem_key
from ingest.outcome import IngestOutcome
from ingest.paths import UnsafePath, relative_inside
from ingest.reader import ChunkHook, FileChanged, FileState, NotRegularFile, open_regular, require_regular
from ingest.transfer import transfer
from storage.db import reading, transaction
from storage.events import SYSTEM_ACTOR, append_event
from storage.models import Sidecar, Sighting, Station
from storage.objects import DigestMismatch, StoredObject, StoreError, sha256_of_stream
from storage.runtime import Runtime

log = logging.getLogger(__name__)


def _dir_of(relpath: str) -> str:
    return relpath.rsplit("/", 1)[0] + "/" if "/" in relpath else ""


def _stem_prefix(relpath: str) -> str:
    """A prefix every file of the same stem shares (the name up to its first dot), to narrow queries."""
    name = relpath.rsplit("/", 1)[-1]
    return _dir_of(relpath) + name.split(".", 1)[0]


def sidecars_beside(root: Path, media: Path, media_relpath: str) -> list[tuple[Path, str]]:
    """Sidecar files in the media file's folder that pair with it; unsafe ones are left to the watcher."""
    key = sidecar_stem_key(media_relpath)
    found: list[tuple[Path, str]] = []
    try:
        entries = sorted(os.scandir(media.parent), key=lambda e: e.name)
    except OSError:
        return found
    for entry in entries:
        if classify(entry.name) != "sidecar" or sidecar_stem_key(_dir_of(media_relpath) + entry.name) != key:
            continue
        try:
            found.append((Path(entry.path), relative_inside(root, Path(entry.path))))
        except UnsafePath:
            continue
    return found


def media_in_folder(path: Path, relpath: str) -> bool:
    """Is a media file with this sidecar's stem in its folder (so the sidecar should wait for it)?"""
    key = sidecar_stem_key(relpath)
    try:
        # Only a regular file is media that will arrive; a FIFO of that name is refused, so it is not waited for.
        names = [e.name for e in os.scandir(path.parent) if e.is_file()]
    except OSError:
        return False
    return any(classify(n) == "media" and sidecar_stem_key(_dir_of(relpath) + n) == key for n in names)


def recording_for(s: Session, station_code: str, relpath: str) -> int | None:
    """The recording of the media file this sidecar pairs with, from the station's sightings."""
    key = sidecar_stem_key(relpath)
    rows = s.execute(
        select(Sighting.path, Sighting.recording_id)
        .join(Station, Station.id == Sighting.station_id)
        .where(Station.code == station_code, Sighting.path.startswith(_stem_prefix(relpath), autoescape=True))
        .order_by(Sighting.id.desc())
    ).all()
    for path, recording_id in rows:
        if classify(path.rsplit("/", 1)[-1]) == "media" and sidecar_stem_key(path) == key:
            return int(recording_id)
    return None


def link_orphan_sidecars(
    s: Session, station_id: int, media_relpath: str, recording_id: int, actor: str = SYSTEM_ACTOR
) -> list[int]:
    """Link sidecars stored before their media arrived; returns their ids."""
    key = sidecar_stem_key(media_relpath)
    orphans = s.scalars(
        select(Sidecar).where(
            Sidecar.station_id == station_id,
            Sidecar.recording_id.is_(None),
            Sidecar.source_path.startswith(_stem_prefix(media_relpath), autoescape=True),
        )
    ).all()
    linked: list[int] = []
    for orphan in orphans:
        if orphan.source_path is None or sidecar_stem_key(orphan.source_path) != key:
            continue
        if _linked_copy(s, recording_id, orphan.sha256) is not None:
            continue  # the same bytes are already linked to this recording
        orphan.recording_id = recording_id
        s.flush()
        append_event(
            s,
            "sidecar.linked",
            f"sidecar:{orphan.sha256}",
            {"path": orphan.source_path, "recording": recording_id},
            actor=actor,
        )
        linked.append(orphan.id)
    return linked


def _linked_copy(s: Session, recording_id: int, sha256: str) -> int | None:
    return s.scalar(select(Sidecar.id).where(Sidecar.recording_id == recording_id, Sidecar.sha256 == sha256))


def _sha256_of(path: Path) -> str:
    with open_regular(path) as f:
        return sha256_of_stream(f)


def ingest_sidecar(
    rt: Runtime,
    root: Path,
    path: Path,
    relpath: str,
    station: str,
    actor: str,
    now: datetime,
    *,
    on_chunk: ChunkHook | None = None,
    stable_seconds: float | None = None,
) -> IngestOutcome:
    """Store one sidecar and link it; with ``stable_seconds``, leave a file younger than that for later."""
    with reading(rt.sessions) as s:
        recording_id = recording_for(s, station, relpath)
    if recording_id is None and media_in_folder(path, relpath):
        return IngestOutcome("waiting", relpath, station, kind="sidecar", reason="its media file is not stored yet")
    try:
        st = os.stat(path)
        require_regular(relpath, st)
        before = FileState.of(st)
        if stable_seconds is not None and now.timestamp() - before.mtime_ns / 1e9 < stable_seconds:
            return IngestOutcome("not_stable", relpath, station, kind="sidecar")
        sha256 = _sha256_of(path)
    except NotRegularFile as exc:
        return failed(rt, station, relpath, exc.code, exc.message, actor, now, kind="sidecar")
    except FileNotFoundError as exc:
        return failed(rt, station, relpath, failures.VANISHED, str(exc), actor, now, kind="sidecar")
    except OSError as exc:
        return failed(rt, station, relpath, failures.UNREADABLE, str(exc), actor, now, kind="sidecar")

    with reading(rt.sessions) as s:
        seen = s.scalar(
            select(Sidecar.id)
            .join(Station, Station.id == Sidecar.station_id)
            .where(Station.code == station, Sidecar.source_path == relpath, Sidecar.sha256 == sha256)
            .limit(1)
        )
    if seen is not None:
        done = _after(rt, path, relpath, sha256, actor)
        return IngestOutcome(
            "skipped_seen", relpath, station, kind="sidecar", sidecar_id=seen, sha256=sha256, after_ingest=done
        )

    try:
        moved = transfer(rt, path, before, now=now, with_probe=False, expected_sha256=sha256, on_chunk=on_chunk)
    except (FileChanged, DigestMismatch) as exc:
        reason = failures.CHANGED_WHILE_READING
        return failed(rt, station, relpath, reason, str(exc), actor, now, kind="sidecar")
    except NotRegularFile as exc:
        return failed(rt, station, relpath, exc.code, exc.message, actor, now, kind="sidecar")
    except StoreError as exc:
        return failed(rt, station, relpath, exc.code, str(exc), actor, now, kind="sidecar")
    except OSError as exc:
        return failed(rt, station, relpath, failures.UNREADABLE, str(exc), actor, now, kind="sidecar")

    try:
        existing, duplicate, recording_id = commit_sidecar(rt, relpath, station, actor, now, moved.stored)
    except SQLAlchemyError as exc:
        reason = failures.DATABASE
        return failed(rt, station, relpath, reason, f"{type(exc).__name__}: {exc}", actor, now, kind="sidecar")
    except StoreError as exc:  # the hold of a held recording's sidecar could not be set: not committed, retried
        return failed(rt, station, relpath, exc.code, str(exc), actor, now, kind="sidecar")
    log.info("ingest.sidecar path=%s sha256=%s recording=%s", relpath, sha256, recording_id)
    done = _after(rt, path, relpath, sha256, actor)
    return IngestOutcome(
        "duplicate" if duplicate else "stored",
        relpath,
        station,
        kind="sidecar",
        recording_id=recording_id,
        sidecar_id=existing,
        sha256=sha256,
        after_ingest=done,
    )


def commit_sidecar(
    rt: Runtime, relpath: str, station: str, actor: str, now: datetime, stored: StoredObject
) -> tuple[int, bool, int | None]:
    """Record stored sidecar bytes and link them to the recording with their stem (watched or pushed alike).

    Returns (sidecar id, duplicate, recording id or None); raises SQLAlchemyError, or StoreError when a held
    recording's sidecar cannot be held too (nothing committed then).
    """
    with transaction(rt.sessions) as s:
        recording_id = recording_for(s, station, relpath)
        station_row = Registry(s, actor, origin="ingest").station(station)
        existing = _linked_copy(s, recording_id, stored.sha256) if recording_id is not None else None
        duplicate = existing is not None
        if existing is None:
            row = Sidecar(
                recording_id=recording_id,
                sha256=stored.sha256,
                size=stored.size,
                object_key=stored.key,
                object_version=stored.version_id,
                original_name=relpath.rsplit("/", 1)[-1],
                source_path=relpath,
                station_id=station_row.id,
                received_at=now,
            )
            s.add(row)
            s.flush()
            existing = row.id
            details = {"path": relpath, "station": station, "size": stored.size, "recording": recording_id}
            append_event(s, "sidecar.stored", f"sidecar:{stored.sha256}", details, actor=actor)
        if recording_id is not None:
            hold_sidecar(s, rt.store, recording_id, stored.sha256)
        failures.resolve_failure(s, station_row, relpath, now)
    return existing, duplicate, recording_id


def _after(rt: Runtime, path: Path, relpath: str, sha256: str, actor: str) -> str | None:
    if rt.settings.after_ingest == "keep":
        return "kept"
    return after_ingest(rt, path, relpath, f"sidecar:{sha256}", actor)
