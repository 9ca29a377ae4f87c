"""The tamper-evident audit log over HTTP (SPEC §9): the latest checkpoint, inclusion and consistency proofs."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, require_reading
from api.params import SeqPath
from api.routes import API_PREFIX
from audit import checkpoints
from storage.basics import INT64_MAX

router = APIRouter(prefix=API_PREFIX, tags=["audit"])

Auditors = Annotated[Reading, Depends(require_reading("audit.read"))]


@router.get(
    "/audit/checkpoint",
    summary="The latest signed checkpoint (a C2SP tlog-checkpoint note)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def latest_checkpoint(reader: Auditors) -> Response:
    return await reader.run(_latest_checkpoint)


def _latest_checkpoint(session: Session, _who: Principal) -> Response:
    checkpoint = checkpoints.latest(session)
    if checkpoint is None:
        raise checkpoints.NoCheckpoint("no audit checkpoint yet: one is made within a minute while events arrive")
    return Response(checkpoint.note, media_type="text/plain; charset=utf-8")


@router.get("/audit/events/{seq}/proof", summary="An event's leaf bytes and tlog-proof against the latest checkpoint")
async def event_proof(reader: Auditors, seq: SeqPath) -> dict[str, object]:
    return await reader.run(_event_proof, seq)


def _event_proof(session: Session, _who: Principal, seq: int) -> dict[str, object]:
    return checkpoints.event_proof(session, seq).as_json()


@router.get("/audit/consistency", summary="The consistency proof between two tree sizes, up to the latest checkpoint")
async def consistency(
    reader: Auditors,
    from_: Annotated[int, Query(alias="from", ge=0, le=INT64_MAX)],
    to: Annotated[int, Query(ge=0, le=INT64_MAX)],
) -> dict[str, Any]:
    return await reader.run(_consistency, from_, to)


def _consistency(session: Session, _who: Principal, from_: int, to: int) -> dict[str, Any]:
    proof = checkpoints.consistency(session, from_, to)
    return {"from": from_, "to": to, "proof": [base64.b64encode(h).decode() for h in proof]}
