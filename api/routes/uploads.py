"""``POST /recordings``: a docking station uploads one file, streamed, never held in memory."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.auth import Principal
from api.body import BodyReader
from api.deps import RuntimeDep, require
from api.routes import API_PREFIX
from api.upload import receive_upload, upload_relpath
from config.errors import BadInput
from storage.db import transaction
from storage.models import Recording
from storage.runtime import Runtime
from storage.shapes import recording_json

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["recordings"])

ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"description": "These bytes were stored before; a duplicate sighting is recorded"},
    422: {"description": "Bad headers, not a media file, or the body's SHA-256 differs (nothing stored)"},
}


@router.post("/recordings", status_code=201, summary="Upload one recording (station)", responses=ERRORS)
async def upload_recording(
    request: Request,
    rt: RuntimeDep,
    who: Annotated[Principal, Depends(require("ingest.upload"))],
    x_device_id: Annotated[str, Header(min_length=1, max_length=128, pattern=r"^[^/\\\x00-\x1f]+$")],
    x_filename: Annotated[str, Header(min_length=1, max_length=1024)],
    x_content_sha256: Annotated[str, Header(pattern=r"^[0-9a-fA-F]{64}$")],
) -> JSONResponse:
    relpath = upload_relpath(x_filename)
    station = who.station_code or rt.settings.station
    body = BodyReader(request.stream())
    # The store is sync: it runs in a worker thread, pulling the body from this event loop chunk by chunk.
    work = partial(
        receive_upload,
        rt,
        body,
        relpath=relpath,
        device=x_device_id.strip(),
        expected_sha256=x_content_sha256,
        station=station,
        actor=who.actor,
    )
    try:
        result = await anyio.to_thread.run_sync(work)
    except ClientDisconnect:
        # The station went away mid-upload: nothing was stored; it sends the file again later.
        log.warning("upload.disconnected file=%s station=%s after=%d bytes", relpath, station, body.bytes_read)
        raise BadInput("the upload was cut off before its end", code="incomplete_upload") from None
    shape = await run_in_threadpool(_recording_shape, rt, result.recording_id)
    return JSONResponse({**shape, "duplicate": result.duplicate}, status_code=200 if result.duplicate else 201)


def _recording_shape(rt: Runtime, recording_id: int) -> dict[str, Any]:
    with transaction(rt.sessions) as s:
        recording = s.get(Recording, recording_id)
        assert recording is not None
        return recording_json(recording)
