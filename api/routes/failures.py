"""Files the ingest could not store yet, with their last error (SPEC §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.auth import Principal
from api.deps import ReadSessionDep, require
from api.routes import API_PREFIX
from ingest.failures import open_failures
from storage.shapes import failure_json

router = APIRouter(prefix=API_PREFIX, tags=["ingest"])


@router.get("/ingest/failures", summary="Open ingest failures, oldest first")
def list_failures(
    session: ReadSessionDep,
    _who: Annotated[Principal, Depends(require("ingest.failures"))],
    station: Annotated[str | None, Query(max_length=128, description="only this station's files")] = None,
) -> dict[str, Any]:
    return {"failures": [failure_json(f, code) for f, code in open_failures(session, station)]}
