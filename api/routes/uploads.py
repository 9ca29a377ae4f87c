"""Stations push files: one-shot ``POST /recordings`` and resumable ``/uploads`` (tus 1.0 core, creation,
termination, expiration). Bodies stream; nothing is held in memory; the server hashes what it received.

tus says a finished ``PATCH`` answers 204 without a body, so what the bytes became travels in headers, on that
``PATCH`` and on every later ``HEAD`` (for a station whose connection broke just before the answer):
``X-Ingest-Status`` (stored | duplicate), ``X-Content-SHA256`` (the digest the server computed),
``X-Recording-Id`` / ``X-Sidecar-Id``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from email.utils import format_datetime
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.arrival_hash import ArrivalHashes
from api.auth import Principal
from api.body import BodyReader
from api.deps import Reading, RuntimeDep, require, require_reading
from api.routes import API_PREFIX
from api.upload import (
    UploadSlots,
    check_device,
    check_sha256,
    parse_metadata,
    receive_part_file,
    receive_upload,
    upload_relpath,
)
from config.errors import BadInput, BwcError
from ingest.outcome import IngestOutcome
from ingest.service import Claim
from ingest.upload_sessions import (
    STORE_RETRY_SECONDS,
    Busy,
    OffsetMismatch,
    SessionView,
    UploadNotFound,
    check_disk,
    create_session,
    find_session,
    get_session,
    hold,
    make_durable,
    open_for_append,
    part_path,
    record_outcome,
    remove_session,
)
from storage.basics import INT64_MAX
from storage.db import transaction
from storage.models import Recording
from storage.objects import DigestMismatch, StoreUnavailable
from storage.runtime import Runtime
from storage.shapes import recording_json

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["uploads"])

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
SYNC_BYTES = 8 * 1024 * 1024  # a PATCH makes its bytes durable (fsync + offset) at least this often
WRITE_BYTES = 1024 * 1024  # body chunks gathered per write-and-hash in the threadpool (not on the event loop)
Station = Annotated[Principal, Depends(require("ingest.upload"))]
StationReading = Annotated[Reading, Depends(require_reading("ingest.upload"))]
UploadId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="upload id (from the creation's Location)")]
TusHeader = Annotated[str | None, Header(alias="Tus-Resumable", max_length=16)]

BACK_PRESSURE: dict[int | str, dict[str, Any]] = {
    503: {"description": "Too many uploads at once, or the store is away: come back after Retry-After"},
    507: {"description": "The disk holding uploads is nearly full: come back after Retry-After"},
}
ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "These bytes were stored before; a duplicate sighting is recorded"},
    422: {"description": "Bad headers, not a media file nor a sidecar, or the body's SHA-256 differs (nothing kept)"},
    **BACK_PRESSURE,
}


NO_UPLOAD = "No such upload (or it expired)"


def tus_responses(described: dict[int, str], back_pressure: bool = False) -> dict[int | str, dict[str, Any]]:
    """A tus route's documented answers: its own, the 412 every tus route gives another protocol version, and
    (for the routes that take bytes) the back-pressure answers."""
    responses: dict[int | str, dict[str, Any]] = {code: {"description": text} for code, text in described.items()}
    responses[412] = {"description": f"Tus-Resumable is not {TUS_VERSION}"}
    return {**responses, **(BACK_PRESSURE if back_pressure else {})}


class TusVersionMismatch(BwcError):
    code = "tus_version"
    status = 412


class UnsupportedContentType(BwcError):
    code = "unsupported_media_type"
    status = 415


def _slots(request: Request, rt: Runtime) -> UploadSlots:
    slots = getattr(request.app.state, "upload_slots", None)
    if not isinstance(slots, UploadSlots):
        slots = UploadSlots(rt.settings.upload_max_concurrent)
        request.app.state.upload_slots = slots
    return slots


def _station(who: Principal, rt: Runtime) -> str:
    return who.station_code or rt.settings.station


def _tus(value: str | None) -> None:
    if value != TUS_VERSION:
        raise TusVersionMismatch(f"Tus-Resumable must be {TUS_VERSION} (got {value!r})")


def _tus_headers(view: SessionView | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if view is not None:
        headers["Upload-Offset"] = str(view.offset)
        headers["Upload-Length"] = str(view.length)
        headers["Upload-Expires"] = format_datetime(view.expires_at, usegmt=True)
        if view.complete:
            headers["X-Ingest-Status"] = str(view.outcome)
            headers["X-Content-SHA256"] = str(view.stored_sha256)
            if view.recording_id is not None:
                headers["X-Recording-Id"] = str(view.recording_id)
            if view.sidecar_id is not None:
                headers["X-Sidecar-Id"] = str(view.sidecar_id)
    return headers


@router.post("/recordings", status_code=201, summary="Upload one recording or sidecar (station)", responses=ERRORS)
async def upload_recording(
    request: Request,
    rt: RuntimeDep,
    who: Station,
    x_device_id: Annotated[str, Header(min_length=1, max_length=128, pattern=r"^[^/\\\x00-\x1f]+$")],
    x_filename: Annotated[str, Header(min_length=1, max_length=1024)],
    x_content_sha256: Annotated[str, Header(pattern=r"^[0-9a-fA-F]{64}$")],
) -> JSONResponse:
    relpath = upload_relpath(x_filename)
    station = _station(who, rt)
    claim = Claim(relpath, station, who.actor, x_content_sha256.lower(), x_device_id.strip())
    body = BodyReader(request.stream())
    with _slots(request, rt).slot():
        # The store is sync: it runs in a worker thread, pulling the body from this event loop chunk by chunk.
        try:
            outcome = await anyio.to_thread.run_sync(partial(_store_errors, receive_upload, rt, body, claim))
        except ClientDisconnect:
            # The station went away mid-upload: nothing was stored; it sends the file again later.
            log.warning("upload.disconnected file=%s station=%s after=%d bytes", relpath, station, body.bytes_read)
            raise BadInput("the upload was cut off before its end", code="incomplete_upload") from None
    shape = await run_in_threadpool(_outcome_shape, rt, outcome)
    return JSONResponse(shape, status_code=200 if outcome.status == "duplicate" else 201)


def _store_errors(work: Any, *args: Any) -> IngestOutcome:
    """A store that is away is back-pressure (503 with Retry-After), not an error of the station's."""
    try:
        result: IngestOutcome = work(*args)
    except StoreUnavailable as exc:
        raise Busy(str(exc), retry_after=STORE_RETRY_SECONDS, code="store_unavailable") from exc
    return result


def _outcome_shape(rt: Runtime, outcome: IngestOutcome) -> dict[str, Any]:
    duplicate = outcome.status == "duplicate"
    if outcome.kind == "sidecar":
        return {
            "kind": "sidecar",
            "id": outcome.sidecar_id,
            "sha256": outcome.sha256,
            "recording_id": outcome.recording_id,
            "duplicate": duplicate,
        }
    with transaction(rt.sessions) as s:
        recording = s.get(Recording, outcome.recording_id)
        assert recording is not None
        return {**recording_json(recording), "duplicate": duplicate}


@router.options("/uploads", status_code=204, summary="tus discovery: version and extensions (station)")
async def upload_options(reader: StationReading) -> Response:
    return await reader.run(_upload_options)


def _upload_options(_session: Session, _who: Principal) -> Response:
    headers = {"Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS}
    return Response(status_code=204, headers=headers)


@router.post(
    "/uploads",
    status_code=201,
    summary="Start a resumable upload (tus creation; station)",
    responses=tus_responses(
        {
            201: "Created: Location names the upload, PATCH its bytes there",
            422: "Bad Upload-Length or Upload-Metadata (filename, sha256 required; device optional)",
        },
        back_pressure=True,
    ),
)
async def create_upload(
    request: Request,
    rt: RuntimeDep,
    who: Station,
    tus_resumable: TusHeader = None,
    upload_length: Annotated[int | None, Header(alias="Upload-Length", ge=0, le=INT64_MAX)] = None,
    upload_metadata: Annotated[str | None, Header(alias="Upload-Metadata", max_length=8192)] = None,
) -> Response:
    _tus(tus_resumable)
    if upload_length is None:
        raise BadInput("Upload-Length is required (Upload-Defer-Length is not supported)", code="bad_upload_length")
    meta = parse_metadata(upload_metadata)
    if "filename" not in meta or "sha256" not in meta:
        raise BadInput("Upload-Metadata must carry filename and sha256", code="bad_metadata")
    relpath = upload_relpath(meta["filename"])
    sha256 = check_sha256(meta["sha256"])
    device = check_device(meta.get("device"))
    view = await run_in_threadpool(
        partial(
            create_session,
            rt,
            relpath=relpath,
            station=_station(who, rt),
            actor=who.actor,
            claimed_sha256=sha256,
            length=upload_length,
            device=device,
        )
    )
    headers = {**_tus_headers(view), "Location": f"{API_PREFIX}/uploads/{view.id}"}
    return Response(status_code=201, headers=headers)


@router.head(
    "/uploads/{upload_id}",
    summary="How far an upload got (tus; station)",
    responses=tus_responses({404: NO_UPLOAD}),
)
async def upload_offset(reader: StationReading, upload_id: UploadId, tus_resumable: TusHeader = None) -> Response:
    return await reader.run(_upload_offset, upload_id, tus_resumable)


def _upload_offset(session: Session, who: Principal, upload_id: str, tus_resumable: str | None) -> Response:
    _tus(tus_resumable)  # after the token and its role, as on every upload route
    return Response(status_code=200, headers=_tus_headers(find_session(session, upload_id, who.actor)))


@router.patch(
    "/uploads/{upload_id}",
    status_code=204,
    summary="Append bytes at Upload-Offset (tus; station)",
    responses=tus_responses(
        {
            204: "Appended; Upload-Offset says how far. The last bytes also carry X-Ingest-Status",
            404: NO_UPLOAD,
            409: "Upload-Offset is not the stored offset, or another request is appending",
            415: f"Content-Type is not {OFFSET_CONTENT_TYPE}",
            422: "More bytes than Upload-Length, or the SHA-256 differs (the upload is removed)",
        },
        back_pressure=True,
    ),
)
async def append_upload(
    request: Request,
    rt: RuntimeDep,
    who: Station,
    upload_id: UploadId,
    tus_resumable: TusHeader = None,
    upload_offset: Annotated[int | None, Header(alias="Upload-Offset", ge=0, le=INT64_MAX)] = None,
    content_type: Annotated[str | None, Header(alias="Content-Type", max_length=128)] = None,
) -> Response:
    _tus(tus_resumable)
    if (content_type or "").split(";")[0].strip().lower() != OFFSET_CONTENT_TYPE:
        raise UnsupportedContentType(f"Content-Type must be {OFFSET_CONTENT_TYPE}")
    if upload_offset is None:
        raise BadInput("Upload-Offset is required", code="bad_upload_offset")
    view = await run_in_threadpool(get_session, rt, upload_id, who.actor)
    if view.complete:
        return _answered(view, upload_offset)
    with _slots(request, rt).slot():
        held = await run_in_threadpool(hold, rt, view.id)
        try:
            # Only now, holding it, is the session's offset this request's own to move.
            view = await run_in_threadpool(get_session, rt, upload_id, who.actor)
            if view.complete:
                return _answered(view, upload_offset)
            if held is None:
                raise UploadNotFound(f"upload {view.id!r} has lost its bytes; start it again")
            if view.offset < view.length or upload_offset != view.offset:
                await run_in_threadpool(check_disk, rt.settings, view.length - view.offset)
                offset, disconnected = await _append(request, rt, view, upload_offset)
                if disconnected:
                    log.warning("upload.disconnected id=%s offset=%d of %d", view.id, offset, view.length)
                if disconnected or offset < view.length:
                    return Response(status_code=204, headers=_tus_headers(_at(view, offset)))
                view = _at(view, offset)
            elif int(request.headers.get("content-length") or 0) > 0:
                raise BadInput(f"more bytes than Upload-Length {view.length}", code="upload_too_long")
            # Every byte is in (now, or before a store that was away or a service that stopped): finish.
            received = _hashes(request).digest_at(view.id, view.length)
            try:
                done = await anyio.to_thread.run_sync(partial(_finish, rt, view, received))
            finally:
                _hashes(request).forget(view.id)  # a retry after a store that was away reads the file instead
        finally:
            if held is not None:
                os.close(held)
    return Response(status_code=204, headers=_tus_headers(done))


def _answered(view: SessionView, upload_offset: int) -> Response:
    """A finished upload: its outcome again, for the station that missed the answer."""
    if upload_offset != view.length:
        raise OffsetMismatch(f"the upload is complete at {view.length} bytes")
    return Response(status_code=204, headers=_tus_headers(view))


def _hashes(request: Request) -> ArrivalHashes:
    hashes: ArrivalHashes = request.app.state.arrival_hashes  # made with the app (api.app.create_app)
    return hashes


async def _append(request: Request, rt: Runtime, view: SessionView, offset: int) -> tuple[int, bool]:
    """Write the body after the durable bytes, hashing and fsyncing as it goes; returns (durable offset,
    disconnected). Writes and hashing run in the threadpool, a batch of the body's chunks at a time, so the
    event loop only gathers bytes; the hash state is kept at each durable offset (:mod:`api.arrival_hash`)."""
    hashes = _hashes(request)
    fd, offset = await run_in_threadpool(open_for_append, rt, view, offset)
    durable = offset
    disconnected = False
    pending: list[bytes] = []
    pending_bytes = 0
    try:
        hasher = await run_in_threadpool(hashes.resume, view.id, fd, offset)

        async def write_pending() -> None:
            nonlocal offset, pending, pending_bytes
            await run_in_threadpool(_write_and_hash, fd, hasher, pending)
            offset, pending, pending_bytes = offset + pending_bytes, [], 0

        try:
            async for chunk in request.stream():
                if offset + pending_bytes + len(chunk) > view.length:
                    raise BadInput(f"more bytes than Upload-Length {view.length}", code="upload_too_long")
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= WRITE_BYTES:
                    await write_pending()
                    if offset - durable >= SYNC_BYTES:
                        await run_in_threadpool(make_durable, rt, view, fd, durable, offset)
                        durable = offset
                        hashes.durable(view.id, offset, hasher)
        except ClientDisconnect:
            disconnected = True  # what arrived is kept: the station resumes from it
        if pending:
            await write_pending()
        if offset != durable:
            await run_in_threadpool(make_durable, rt, view, fd, durable, offset)
            hashes.durable(view.id, offset, hasher)
    finally:
        os.close(fd)
    return offset, disconnected


def _write_and_hash(fd: int, hasher: Any, chunks: list[bytes]) -> None:
    """Append ``chunks`` and feed them to ``hasher`` (both release the GIL on large buffers)."""
    for data in chunks:
        _write_all(fd, data)
        hasher.update(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _at(view: SessionView, offset: int) -> SessionView:
    return replace(view, offset=offset)


def _finish(rt: Runtime, view: SessionView, received_sha256: str | None = None) -> SessionView:
    """All bytes are in: through the one ingest path. A wrong digest removes the upload; a store away keeps it.

    ``received_sha256`` is the digest hashed on arrival of the durable bytes, if this process holds it (else
    the store reads the part file to hash it)."""
    claim = Claim(view.relpath, view.station, view.actor, view.claimed_sha256, view.device)
    try:
        outcome = _store_errors(receive_part_file, rt, part_path(rt.settings, view.id), claim, received_sha256)
    except DigestMismatch:
        remove_session(rt, view.id)
        log.warning("upload.digest_mismatch id=%s path=%s: removed", view.id, view.relpath)
        raise
    return record_outcome(rt, view, outcome)


@router.delete(
    "/uploads/{upload_id}",
    status_code=204,
    summary="Abandon an upload (tus termination; station)",
    responses=tus_responses({404: NO_UPLOAD}),
)
async def terminate_upload(
    rt: RuntimeDep, who: Station, upload_id: UploadId, tus_resumable: TusHeader = None
) -> Response:
    _tus(tus_resumable)
    view = await run_in_threadpool(get_session, rt, upload_id, who.actor)
    await run_in_threadpool(remove_session, rt, view.id)
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})
