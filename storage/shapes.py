"""JSON shapes of stored things, shared by the CLI and the API (SPEC §12)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from config.settings import mask_text
from storage.basics import iso_or_none
from storage.models import Device, IngestFailure, Recording, Station

# The columns the recording shape reads, for a reader that selects them as a Core row instead of loading
# ``Recording`` with its device and station (the case lookup): the device's serial as ``device``, the station's
# code as ``station`` (outer joins ``Device`` and ``Station``).
RECORDING_FIELDS = (
    Recording.id,
    Recording.sha256,
    Recording.size,
    Device.serial.label("device"),
    Station.code.label("station"),
    Recording.officer_code,
    Recording.original_name,
    Recording.started_at,
    Recording.ended_at,
    Recording.duration_seconds,
    Recording.has_video,
    Recording.has_audio,
    Recording.status,
    Recording.time_source,
    Recording.received_at,
    Recording.sequence,
    Recording.source_path,
    Recording.media_kind,
    Recording.probe_error,
    Recording.verified_at,
    Recording.sm3,
    Recording.retention_until,
    Recording.legal_hold,
    Recording.fixity_ok,
    Recording.fixity_checked_at,
)


def recording_json(rec: Recording) -> dict[str, Any]:
    """A recording as SPEC §12 shapes it, plus a few fields reviewers find useful."""
    device = rec.device.serial if rec.device is not None else None
    return shape_recording(rec, device, rec.station.code if rec.station is not None else None)


def shape_recording(rec: Recording | Row[Any], device: str | None, station: str | None) -> dict[str, Any]:
    """``recording_json`` of a ``Recording`` or of a row of ``RECORDING_FIELDS``, its device serial and station code."""
    return {
        "id": rec.id,
        "sha256": rec.sha256,
        "size": rec.size,
        "device": device,
        "station": station,
        "officer": rec.officer_code,
        "original_name": rec.original_name,
        "started_at": iso_or_none(rec.started_at),
        "ended_at": iso_or_none(rec.ended_at),
        "duration_seconds": rec.duration_seconds,
        "has_video": rec.has_video,
        "has_audio": rec.has_audio,
        "status": rec.status,
        "time_source": rec.time_source,
        "received_at": iso_or_none(rec.received_at),
        # more than the contract asks:
        "sequence": rec.sequence,
        "source_path": rec.source_path,
        "media_kind": rec.media_kind,
        "probe_error": rec.probe_error,
        "verified_at": iso_or_none(rec.verified_at),
        "sm3": rec.sm3,
        "retention_until": iso_or_none(rec.retention_until),
        "legal_hold": rec.legal_hold,
        # None: never checked; False: the stored bytes failed a re-hash (see ``bwc fixity``)
        "fixity_ok": rec.fixity_ok,
        "fixity_checked_at": iso_or_none(rec.fixity_checked_at),
    }


def failure_json(failure: IngestFailure, station: str | None) -> dict[str, Any]:
    """An open ingest failure, as ``bwc ingest status`` and ``GET /ingest/failures`` show it."""
    return {
        "station": station,
        "path": failure.path,
        "reason": failure.reason,
        # masked when written (ingest/jobs.py); masked again by shape in case an older row quoted a URL password
        "last_error": None if failure.last_error is None else mask_text(failure.last_error),
        "attempts": failure.attempts,
        "first_failed_at": iso_or_none(failure.first_failed_at),
        "last_failed_at": iso_or_none(failure.last_failed_at),
        "next_attempt_at": iso_or_none(failure.next_attempt_at),
    }
