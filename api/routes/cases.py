"""Cases: legal hold and release (admin), and the court export (SPEC §5, §10)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import RuntimeDep, SessionDep, require
from api.downloads import content_disposition
from api.routes import API_PREFIX
from audit.access import check_case, record_uses, scope_for
from audit.export import plan_export
from audit.export_bag import stream_bag
from audit.holds import hold_case, release_case
from storage.basics import utcnow
from storage.runtime import Runtime

router = APIRouter(prefix=API_PREFIX, tags=["cases"])

Admin = Annotated[Principal, Depends(require("cases.hold"))]
Reviewer = Annotated[Principal, Depends(require("cases.export"))]


class ReasonIn(BaseModel):
    """Why a case is held or released; kept in the audit log."""

    reason: str = Field(min_length=1, max_length=4000)


@router.post("/cases/{case_number}/hold", summary="Put a case's recordings, now and later linked, on legal hold")
def hold(case_number: str, body: ReasonIn, session: SessionDep, rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    return hold_case(session, rt.store, case_number, body.reason, who.actor, utcnow()).as_json()


@router.post("/cases/{case_number}/release", summary="Release a case's legal hold")
def release(case_number: str, body: ReasonIn, session: SessionDep, rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    return release_case(session, rt.store, case_number, body.reason, who.actor, utcnow()).as_json()


@router.get(
    "/cases/{case_number}/export",
    summary="The case's BagIt export as a ZIP, streamed as it is written (an audited event)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
def export(case_number: str, session: SessionDep, rt: RuntimeDep, who: Reviewer) -> StreamingResponse:
    return export_response(session, rt, case_number, who)


def export_response(session: Session, rt: Runtime, case_number: str, who: Principal) -> StreamingResponse:
    """The streamed export; its plan and audit event are committed by the request's session before any byte.

    An export copies the whole case, so every action of it must be in the caller's scope (SPEC §15)."""
    now = utcnow()
    scope = scope_for(who, now)
    record_uses(session, scope, check_case(session, scope, case_number, whole=True), "cases.export")
    plan = plan_export(session, rt.settings, case_number, who.actor, utcnow())
    return StreamingResponse(
        stream_bag(plan, rt.store),
        media_type="application/zip",
        headers={
            "Content-Disposition": content_disposition(f"{case_number}-export.zip"),
            "Cache-Control": "private, no-store",
        },
    )
