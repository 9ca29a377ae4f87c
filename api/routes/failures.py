"""Files the ingest could not store yet, with their last error (SPEC §4)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, require_reading
from api.routes import API_PREFIX
from ingest.failures import open_failures
from storage.shapes import failure_json

router = APIRouter(prefix=API_PREFIX, tags=["ingest"])


@router.get("/ingest/failures", summary="Open ingest failures, oldest first")
async def list_failures(
    reader: Annotated[Reading, Depends(require_reading("ingest.failures"))],
    station: Annotated[str | None, Query(max_length=128, description="only this station's files")] = None,
) -> dict[str, Any]:
    return await reader.run(_list_failures, station)


def _list_failures(session: Session, _who: Principal, station: str | None) -> dict[str, Any]:
    return {"failures": [failure_json(f, code) for f, code in open_failures(session, station)]}
