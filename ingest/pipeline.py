"""One file in, one verified and committed recording out (SPEC §4, §5).

The order is what makes it safe: read the file once while hashing, storing and probing it; prove it did not
change meanwhile; commit the recording, its sighting and the audit event in one transaction; only then
move or delete the source. A crash anywhere leaves either an untouched source or a committed recording.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from audit.findings_sync import follow_duplicate
from audit.holds import apply_case_holds
from audit.linking import on_recordings_changed
from audit.registry import Registry
from config.settings import Settings
from ingest import failures
from ingest.catalog import find_sighting
from ingest.jobs import after_ingest, failed
from ingest.naming import NameInfo, classify, name_patterns, parse_name
from ingest.outcome import IngestOutcome
from ingest.paths import UnsafePath, relative_inside
from ingest.probe import ProbeResult
from ingest.reader import ChunkHook, FileChanged, FileState, NotRegularFile, require_regular
from ingest.sidecars import ingest_sidecar, link_orphan_sidecars, sidecars_beside
from ingest.timing import choose_times
from ingest.transfer import Transfer, transfer
from storage.basics import utcnow
from storage.db import reading, transaction
from storage.events import append_event
from storage.models import Recording, Sighting
from storage.objects import StoreError
from storage.runtime import Runtime

log = logging.getLogger(__name__)

EMPTY_FILE_ERROR = "empty file (0 bytes): nothing to play"
COMMIT_TRIES = 3


def default_actor(station: str) -> str:
    return f"station:{station}"


def ingest_file(
    rt: Runtime,
    root: Path,
    path: Path,
    station: str,
    actor: str | None = None,
    *,
    on_chunk: ChunkHook | None = None,
    now: datetime | None = None,
) -> IngestOutcome:
    """Store one file found under ``root`` for ``station``; never raises for bad input or a store outage.

    ``on_chunk`` is called with the bytes read so far after each read of the source (tests use it to
    change the file mid-read).
    """
    actor = actor or default_actor(station)
    now = now or utcnow()
    try:
        relpath = relative_inside(root, path)
    except UnsafePath as exc:
        # Refused before anything is opened: record where it pointed, never its bytes.
        return failed(rt, station, _shown_path(root, path), failures.UNSAFE_PATH, str(exc), actor, now)
    kind = classify(relpath.rsplit("/", 1)[-1])
    if kind in ("temporary", "other"):
        return IngestOutcome("ignored", relpath, station, kind=kind, reason=f"{kind} file")
    if kind == "sidecar":
        return ingest_sidecar(rt, root, path, relpath, station, actor, now, on_chunk=on_chunk)
    return _ingest_media(rt, root, path, relpath, station, actor, now, on_chunk)


def _shown_path(root: Path, path: Path) -> str:
    """How a refused path is reported: relative when it sits in the root by name (a symlink out), else as given."""
    absolute, base = path.absolute(), Path(os.path.abspath(root))
    if absolute.is_relative_to(base) and ".." not in absolute.parts:
        return absolute.relative_to(base).as_posix()
    return str(path)


def _ingest_media(
    rt: Runtime,
    root: Path,
    path: Path,
    relpath: str,
    station: str,
    actor: str,
    now: datetime,
    on_chunk: ChunkHook | None,
) -> IngestOutcome:
    try:
        st = os.stat(path)
        require_regular(relpath, st)  # a FIFO or device would block the read (or worse): never opened
        before = FileState.of(st)
    except NotRegularFile as exc:
        return failed(rt, station, relpath, exc.code, exc.message, actor, now)
    except FileNotFoundError as exc:
        return failed(rt, station, relpath, failures.VANISHED, str(exc), actor, now)
    except OSError as exc:
        return failed(rt, station, relpath, failures.UNREADABLE, str(exc), actor, now)

    with reading(rt.sessions) as s:
        seen = find_sighting(s, station, relpath, before.size, before.mtime_ns)
        seen_info = (seen.id, seen.recording_id, seen.after_ingest) if seen is not None else None
    if seen_info is not None:
        return _already_seen(rt, path, relpath, station, actor, *seen_info)

    try:
        moved = transfer(rt, path, before, now=now, with_probe=True, on_chunk=on_chunk)
    except FileChanged as exc:
        return failed(rt, station, relpath, failures.CHANGED_WHILE_READING, str(exc), actor, now)
    except NotRegularFile as exc:  # swapped for a FIFO or device after the stat above
        return failed(rt, station, relpath, exc.code, exc.message, actor, now)
    except StoreError as exc:
        return failed(rt, station, relpath, exc.code, str(exc), actor, now)
    except FileNotFoundError as exc:
        return failed(rt, station, relpath, failures.VANISHED, str(exc), actor, now)
    except OSError as exc:
        return failed(rt, station, relpath, failures.UNREADABLE, str(exc), actor, now)

    names = parse_name(relpath, name_patterns(rt.settings))
    try:
        recording_id, sighting_id, duplicate = commit_stored(rt, relpath, station, actor, now, names, moved)
    except SQLAlchemyError as exc:
        return failed(rt, station, relpath, failures.DATABASE, f"{type(exc).__name__}: {exc}", actor, now)
    sha256 = moved.stored.sha256
    log.info(
        "ingest.%s path=%s sha256=%s recording=%s",
        "duplicate" if duplicate else "stored",
        relpath,
        sha256,
        recording_id,
    )

    # Sidecars that were already complete go with their recording now; later ones come through the watcher.
    side = _complete_sidecars(rt, root, path, relpath, station, actor, now)
    done = None
    if rt.settings.after_ingest != "keep":
        done = after_ingest(rt, path, relpath, f"recording:{sha256}", actor, sighting_id)
    return IngestOutcome(
        "duplicate" if duplicate else "stored",
        relpath,
        station,
        recording_id=recording_id,
        sha256=sha256,
        after_ingest=done or ("kept" if rt.settings.after_ingest == "keep" else None),
        sidecars=side,
    )


def _complete_sidecars(
    rt: Runtime, root: Path, path: Path, relpath: str, station: str, actor: str, now: datetime
) -> tuple[IngestOutcome, ...]:
    """Store the sidecars beside a just-committed media file; ones still being written are left for later."""
    outcomes = []
    for side_path, side_relpath in sidecars_beside(root, path, relpath):
        outcome = ingest_sidecar(
            rt, root, side_path, side_relpath, station, actor, now, stable_seconds=rt.settings.stable_seconds
        )
        if outcome.status != "not_stable":
            outcomes.append(outcome)
    return tuple(outcomes)


def _already_seen(
    rt: Runtime,
    path: Path,
    relpath: str,
    station: str,
    actor: str,
    sighting_id: int,
    recording_id: int,
    after: str | None,
) -> IngestOutcome:
    """This exact file was committed before; finish its after-ingest step if a crash interrupted it."""
    with reading(rt.sessions) as s:
        sha256 = s.scalar(select(Recording.sha256).where(Recording.id == recording_id))
    done = None
    if after is None and rt.settings.after_ingest != "keep":
        done = after_ingest(rt, path, relpath, f"recording:{sha256}", actor, sighting_id)
    return IngestOutcome(
        "skipped_seen", relpath, station, recording_id=recording_id, sha256=sha256, after_ingest=done or after
    )


def commit_stored(
    rt: Runtime, relpath: str, station: str, actor: str, now: datetime, names: NameInfo, moved: Transfer
) -> tuple[int, int, bool]:
    """The one transaction of an ingest, retried when a concurrent ingest of the same bytes wins the race.

    Returns (recording id, sighting id, duplicate). Also used by HTTP uploads, which store bytes their own way.
    """
    for attempt in range(1, COMMIT_TRIES + 1):
        try:
            with transaction(rt.sessions) as s:
                written = _write(s, rt.settings, relpath, station, actor, now, names, moved)
                if not written[2]:  # a new recording may have joined a held case (late docking)
                    apply_case_holds(s, rt.store, actor, [written[0]])
                return written
        except IntegrityError:
            # Another process stored the same sha256 (or created the same device) first: go again, and
            # this time the existing row is found and this file becomes a duplicate sighting.
            if attempt == COMMIT_TRIES:
                raise
            log.info("ingest.commit_race path=%s attempt=%d", relpath, attempt)
    raise AssertionError("unreachable")


def _write(
    s: Session,
    settings: Settings,
    relpath: str,
    station_code: str,
    actor: str,
    now: datetime,
    names: NameInfo,
    moved: Transfer,
) -> tuple[int, int, bool]:
    stored = moved.stored
    registry = Registry(s, actor, origin="ingest")
    station = registry.station(station_code)
    rec = s.scalar(select(Recording).where(Recording.sha256 == stored.sha256))
    duplicate = rec is not None
    if rec is None:
        rec = _new_recording(s, settings, registry, relpath, station.id, now, names, moved)
    sighting = Sighting(
        recording_id=rec.id,
        station_id=station.id,
        path=relpath,
        size=moved.state.size,
        mtime_ns=moved.state.mtime_ns,
        seen_at=now,
        duplicate=duplicate,
        after_ingest="kept" if settings.after_ingest == "keep" else None,
    )
    s.add(sighting)
    s.flush()
    subject = f"recording:{stored.sha256}"
    if duplicate:
        details = {"path": relpath, "station": station_code, "size": stored.size, "recording": rec.id}
        append_event(s, "recording.duplicate", subject, details, actor=actor)
        follow_duplicate(s, settings, rec, names.device, names.start_local, relpath, now, actor)  # SPEC §4, §13
    else:
        details = {
            "path": relpath,
            "station": station_code,
            "size": stored.size,
            "device": names.device,
            "status": rec.status,
            "recording": rec.id,
        }
        append_event(s, "recording.ingested", subject, details, actor=actor)
    failures.resolve_failure(s, station, relpath, now)
    link_orphan_sidecars(s, station.id, relpath, rec.id, actor)
    if not duplicate:
        on_recordings_changed(s, settings, [rec.id], actor)
    return rec.id, sighting.id, duplicate


def _new_recording(
    s: Session,
    settings: Settings,
    registry: Registry,
    relpath: str,
    station_id: int,
    now: datetime,
    names: NameInfo,
    moved: Transfer,
) -> Recording:
    stored = moved.stored
    result = moved.probe
    device = registry.device(names.device) if names.device else None
    duration = result.duration_seconds if result is not None and result.ok else None
    times = choose_times(
        name_start_local=names.start_local,
        creation_time=result.creation_time if result is not None else None,
        mtime=datetime.fromtimestamp(moved.state.mtime_ns / 1e9, UTC),
        duration_seconds=duration,
        tz=settings.tz,
        now=now,
        earliest=settings.earliest_plausible,
        future_tolerance_seconds=settings.future_tolerance_seconds,
        media_kind=result.media_kind if result is not None else None,
    )
    rec = Recording(
        sha256=stored.sha256,
        sm3=stored.extra_digests.get("sm3"),
        size=stored.size,
        object_key=stored.key,
        object_version=stored.version_id,
        retention_until=stored.retention_until or moved.retain_until,
        device_id=device.id if device is not None else None,
        station_id=station_id,
        officer_code=names.officer,
        original_name=relpath.rsplit("/", 1)[-1],
        source_path=relpath,
        sequence=names.sequence,
        started_at=times.started_at,
        ended_at=times.ended_at,
        time_source=times.time_source,
        received_at=now,
        verified_at=now,
        **_probe_fields(result, stored.size),
    )
    s.add(rec)
    s.flush()
    return rec


def _probe_fields(result: ProbeResult | None, size: int) -> dict[str, object]:
    """What the probe said, or why the file is stored as ``unplayable`` evidence anyway."""
    if size == 0 or result is None:
        return {"status": "unplayable", "probe_error": EMPTY_FILE_ERROR}
    fields: dict[str, object] = {
        "duration_seconds": result.duration_seconds,
        "has_video": bool(result.has_video),
        "has_audio": bool(result.has_audio),
        "media_kind": result.media_kind,
        "container": result.container,
        "video_codec": result.video_codec,
        "audio_codec": result.audio_codec,
        "width": result.width,
        "height": result.height,
        "creation_time": result.creation_time,
    }
    if result.ok:
        fields["status"] = "ok"
        fields["probe_error"] = result.warning  # playable but damaged (e.g. truncated): say how
    else:
        fields["status"] = "unplayable"
        fields["probe_error"] = result.error or "cannot be probed"
    return fields
