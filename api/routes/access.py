"""Approvals over the API (SPEC §15, admin): grant a reviewer one case for a while, list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, SessionDep, require, require_reading
from api.params import RowId
from api.routes import API_PREFIX
from audit.access import DEFAULT_HOURS, MAX_HOURS, grant_access, grant_json, list_grants, revoke_grant
from storage.basics import utcnow

router = APIRouter(prefix=API_PREFIX, tags=["access"])

Admin = Annotated[Principal, Depends(require("access.admin"))]
AdminReading = Annotated[Reading, Depends(require_reading("access.admin"))]
ERROR = {"description": "An error", "content": {"application/json": {}}}


class GrantIn(BaseModel):
    """Who may read which case, on whose approval, why, and for how long."""

    to: str = Field(min_length=1, max_length=256, description="the reviewer token's name")
    case_number: str = Field(min_length=1, max_length=128)
    approver: str = Field(min_length=1, max_length=256, description="who approved it (the unit's head)")
    reason: str = Field(min_length=1, max_length=4000)
    hours: float = Field(DEFAULT_HOURS, gt=0, le=MAX_HOURS)


@router.post(
    "/access/grants",
    summary="Grant a reviewer access to one case until it expires (admin; an audit event)",
    status_code=201,
    responses={404: {**ERROR, "description": "No live token of that name, or no such case"}},
)
def create_grant(body: GrantIn, session: SessionDep, who: Admin) -> JSONResponse:
    now = utcnow()
    grant = grant_access(
        session,
        holder=body.to,
        case_number=body.case_number,
        approver=body.approver,
        reason=body.reason,
        hours=body.hours,
        actor=who.actor,
        now=now,
    )
    return JSONResponse(grant_json(grant, now), status_code=201)


@router.get("/access/grants", summary="Every grant with its state: active, expired or revoked (admin)")
async def grants(reader: AdminReading, active: bool = False) -> dict[str, Any]:
    return await reader.run(_grants, active)


def _grants(session: Session, _who: Principal, active: bool) -> dict[str, Any]:
    return {"grants": list_grants(session, utcnow(), active_only=active)}


@router.delete(
    "/access/grants/{grant_id}",
    summary="Revoke a grant now (admin; an audit event)",
    responses={404: {**ERROR, "description": "No such grant"}, 409: {**ERROR, "description": "Already revoked"}},
)
def delete_grant(grant_id: RowId, session: SessionDep, who: Admin) -> dict[str, Any]:
    now = utcnow()
    return grant_json(revoke_grant(session, grant_id, actor=who.actor, now=now), now)
