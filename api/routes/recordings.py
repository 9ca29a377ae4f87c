"""Recording metadata (reviewer, auditor) and content for playback (reviewer, every read audited)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from itertools import chain
from pathlib import PurePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, RuntimeDep, SessionDep, require, require_reading
from api.errors import error_response
from api.openapi_errors import error
from api.params import OffsetQuery, RowId, time_param
from api.ranges import RangeNotSatisfiable, parse_range
from api.routes import API_PREFIX
from audit.access import check_recording, note_uses, record_uses, recording_condition, scope_for
from audit.fixity import EVENT_KIND as FIXITY_EVENT
from config.errors import Conflict, NotFound
from storage.basics import iso, utcnow
from storage.events import append_event
from storage.models import AuditEvent, Device, Recording, Station
from storage.objects import ObjectMissing
from storage.runtime import Runtime
from storage.shapes import recording_json

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["recordings"])
Readers = Annotated[Reading, Depends(require_reading("recordings.read"))]

MEDIA_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "mkv": "video/x-matroska",
    "ts": "video/mp2t",
    "m4a": "audio/mp4",
    "wav": "audio/wav",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
}


# What ``/content`` may carry: the recording's own type, by its extension (SPEC §8: for playback).
CONTENT_TYPES: dict[str, Any] = {
    t: {"schema": {"type": "string", "format": "binary"}}
    for t in [*sorted(set(MEDIA_TYPES.values())), "application/octet-stream"]
}


def media_type(name: str) -> str:
    return MEDIA_TYPES.get(PurePath(name).suffix.lower().lstrip("."), "application/octet-stream")


def get_recording(session: Session, recording_id: int) -> Recording:
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"no recording {recording_id}")
    assert isinstance(recording, Recording)
    return recording


@router.get(
    "/recordings", summary="Recordings by device and time (overlapping [from, to])", response_model=dict[str, Any]
)
async def list_recordings(
    reader: Readers,
    device: Annotated[str | None, Query(max_length=128, description="device serial")] = None,
    station: Annotated[str | None, Query(max_length=128, description="station code")] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description="ISO 8601 time or date")] = None,
    to: Annotated[str | None, Query(max_length=40, description="ISO 8601 time or date (whole day)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    return await reader.run(_list_recordings, reader.runtime, device, station, from_, to, limit, offset)


def _list_recordings(
    session: Session,
    who: Principal,
    rt: Runtime,
    device: str | None,
    station: str | None,
    from_: str | None,
    to: str | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    tz = rt.settings.tz
    start, end = time_param(from_, tz, "from"), time_param(to, tz, "to", end=True)
    query = select(Recording)
    scoped = recording_condition(scope_for(who, utcnow()))
    if scoped is not None:
        query = query.where(scoped)
    if device is not None:
        query = query.join(Device, Device.id == Recording.device_id).where(Device.serial == device)
    if station is not None:
        query = query.join(Station, Station.id == Recording.station_id).where(Station.code == station)
    if start is not None:
        query = query.where(func.coalesce(Recording.ended_at, Recording.started_at) >= start)
    if end is not None:
        query = query.where(Recording.started_at <= end)
    query = query.order_by(Recording.started_at, Recording.id).limit(limit).offset(offset)
    return {"recordings": [recording_json(r) for r in session.scalars(query)], "limit": limit, "offset": offset}


@router.get("/recordings/{recording_id}", summary="One recording's metadata (SPEC §12)", response_model=dict[str, Any])
async def show_recording(recording_id: RowId, reader: Readers) -> dict[str, Any]:
    return await reader.run(_show_recording, reader.runtime, recording_id)


def _show_recording(session: Session, who: Principal, rt: Runtime, recording_id: int) -> dict[str, Any]:
    recording = get_recording(session, recording_id)
    scope = scope_for(who, utcnow())
    note_uses(rt.sessions, scope, check_recording(session, scope, recording), "recordings.read")
    return recording_json(recording)


@router.get(
    "/recordings/{recording_id}/content",
    summary="The recorded bytes, with single-range HTTP Range for playback; every read is an audit event",
    response_class=Response,
    responses={
        200: {"description": "The whole recording", "content": CONTENT_TYPES},
        206: {"description": "The requested byte range (Content-Range)", "content": CONTENT_TYPES},
        416: {**error("The range cannot be satisfied"), "headers": {"Content-Range": {"schema": {"type": "string"}}}},
    },
)
def recording_content(
    recording_id: RowId,
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require("recordings.content"))],
    accept_damaged: Annotated[
        bool, Query(description="serve a recording that failed its fixity check anyway (audited)")
    ] = False,
) -> Response:
    return stream_recording(session, rt, recording_id, request.headers.get("range"), who, accept_damaged)


def integrity_finding(session: Session, recording: Recording) -> str:
    """Why a recording is not served as intact: its last fixity result, in words."""
    last = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.kind == FIXITY_EVENT, AuditEvent.subject == f"recording:{recording.id}")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    result = json.loads(last.details).get("result", "failed") if last is not None else "failed"
    when = f" at {iso(recording.fixity_checked_at)}" if recording.fixity_checked_at else ""
    return f"recording {recording.id} failed its fixity check{when} ({result})"


def stream_recording(
    session: Session,
    rt: Runtime,
    recording_id: int,
    range_header: str | None,
    who: Principal,
    accept_damaged: bool = False,
    audit_details: dict[str, Any] | None = None,
    audited: bool = True,
) -> Response:
    """The response for one evidence read; the caller's session must commit before the response is sent.

    ``audit_details`` join the read's event; ``audited=False`` writes none, for the later Range requests of one
    web viewing, whose first read was audited.
    """
    recording = get_recording(session, recording_id)
    scope = scope_for(who, utcnow())
    grants = check_recording(session, scope, recording)
    damaged = recording.fixity_ok is False
    if damaged and not accept_damaged:
        finding = integrity_finding(session, recording)
        raise Conflict(f"{finding}; a reviewer may still read it with ?accept_damaged=true", code="integrity_failed")
    size = recording.size
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable as exc:
        return error_response(416, "range_not_satisfiable", str(exc), {"Content-Range": f"bytes */{size}"})
    first, last = span if span is not None else (0, size - 1)
    # Open the object before anything is promised: a missing object is an error, not a truncated 200.
    chunks: Iterator[bytes] = iter(rt.store.read(recording.sha256, first, last)) if size else iter(())
    try:
        head = next(chunks, b"")
    except ObjectMissing as exc:
        raise Conflict(f"recording {recording.id}'s object is missing from the store", code="object_missing") from exc
    details: dict[str, Any] = {"sha256": recording.sha256, "role": who.role, "token_id": who.token_id}
    if damaged:
        details["accept_damaged"] = True
        details["finding"] = integrity_finding(session, recording)
    if span is not None:
        details["range"] = [first, last]
    if grants:
        details["grants"] = grants
    record_uses(session, scope, grants, "recordings.content")
    # Committed by the request's session before the response (and so any byte) is sent.
    if audited:
        details |= audit_details or {}
        append_event(session, "evidence.read", f"recording:{recording.id}", details, actor=who.actor)
    log.info("evidence.read recording=%s actor=%s range=%s", recording.id, who.actor, span)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(last - first + 1 if size else 0),
        "ETag": f'"{recording.sha256}"',
        "Content-Disposition": _inline_disposition(recording.original_name),
        "Cache-Control": "private, no-store",
    }
    if span is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(
        chain([head], chunks) if head else chunks,
        status_code=206 if span is not None else 200,
        media_type=media_type(recording.original_name),
        headers=headers,
    )


def _inline_disposition(name: str) -> str:
    base = PurePath(name).name or "recording"
    ascii_name = base.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(base)}"
