"""The rectification ledger over HTTP (SPEC §13): auditors change findings, reviewers read them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, RuntimeDep, SessionDep, require, require_reading
from api.downloads import attachment, content_disposition
from api.params import OffsetQuery, RowId
from api.routes import API_PREFIX
from audit.access import check_unit, report_units, scope_for
from audit.findings import change_by_hand, get_finding, open_by_hand
from audit.findings_formats import render_csv, render_xlsx
from audit.findings_ledger import Filters, finding_json, ledger, list_findings
from audit.findings_rules import STATUSES
from storage.basics import utcnow
from storage.runtime import Runtime

router = APIRouter(prefix=API_PREFIX, tags=["findings"])

Readers = Annotated[Reading, Depends(require_reading("findings.read"))]
Auditors = Annotated[Principal, Depends(require("findings.write"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Status = Literal["open", "rectifying", "closed", "waived"]
assert set(Status.__args__) == set(STATUSES)  # type: ignore[attr-defined]


class NoteIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000)
    rectifying: bool = False  # rectification has started: an open finding becomes rectifying
    owner: str | None = Field(None, max_length=256)


class CloseIn(BaseModel):
    note: str = Field(min_length=1, max_length=4000, description="the rectification note")


class WaiveIn(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


class OpenIn(BaseModel):
    subject: str = Field(min_length=3, max_length=512, description="action:ID, recording:N, device:D, ...")
    category: str = Field(min_length=1, max_length=128)
    note: str = Field(min_length=1, max_length=4000)
    owner: str | None = Field(None, max_length=256)


@router.get(
    "/findings",
    summary="The work ledger (工作台账): findings and per-unit tallies, as JSON, CSV or XLSX",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "text/csv": {}, XLSX: {}}}},
)
async def findings(
    reader: Readers,
    unit: Annotated[str | None, Query(max_length=128)] = None,
    status: Status | None = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    overdue: bool = False,
    format: Literal["json", "csv", "xlsx"] = "json",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: OffsetQuery = 0,
) -> dict[str, Any] | Response:
    return await reader.run(_findings, reader.runtime, unit, status, kind, overdue, format, limit, offset)


def _findings(
    session: Session,
    who: Principal,
    rt: Runtime,
    unit: str | None,
    status: Status | None,
    kind: str | None,
    overdue: bool,
    format: Literal["json", "csv", "xlsx"],
    limit: int,
    offset: int,
) -> dict[str, Any] | Response:
    now = utcnow()
    covered = report_units(scope_for(who, now), unit)  # a reviewer sees their own units' ledger
    filters = Filters.covering(covered, status=status, kind=kind, overdue=overdue)
    if format == "json":
        found = list_findings(session, filters, now, limit, offset)
        return {"findings": [finding_json(f, now) for f in found], "next_offset": offset + len(found)}
    return ledger_download(ledger(session, filters, now, rt.settings.timezone), covered, now, format)


def ledger_download(
    book: dict[str, Any], covered: str | frozenset[str] | None, now: datetime, fmt: Literal["csv", "xlsx"]
) -> Response:
    """The ledger as a CSV or XLSX attachment named for its units (Chinese names kept: RFC 6266)."""
    units = "+".join(sorted(covered)) if isinstance(covered, frozenset) else covered
    stem = f"工作台账-{units or '全部'}-{now.date().isoformat()}"
    body, media = (render_csv(book), "text/csv; charset=utf-8") if fmt == "csv" else (render_xlsx(book), XLSX)
    return attachment(body, media, content_disposition(f"{stem}.{fmt}"))


@router.post("/findings", summary="Open a finding by hand (auditor)", status_code=201)
def open_finding(body: OpenIn, session: SessionDep, rt: RuntimeDep, who: Auditors) -> dict[str, Any]:
    now = utcnow()
    found = open_by_hand(
        session, body.subject, body.category, body.note, who.actor, now, rt.settings.finding_due_days, body.owner
    )
    return finding_json(found, now)


@router.get("/findings/{finding_id}", summary="One finding with its history")
async def finding(finding_id: RowId, reader: Readers) -> dict[str, Any]:
    return await reader.run(_finding, finding_id)


def _finding(session: Session, who: Principal, finding_id: int) -> dict[str, Any]:
    now = utcnow()
    found = get_finding(session, finding_id)
    check_unit(scope_for(who, now), found.unit.code if found.unit else None, f"finding {finding_id}")
    return finding_json(found, now)


@router.post("/findings/{finding_id}/notes", summary="Add a note; `rectifying` starts the rectification (auditor)")
def note(finding_id: RowId, body: NoteIn, session: SessionDep, who: Auditors) -> dict[str, Any]:
    change = "rectifying" if body.rectifying else "note"
    now = utcnow()
    return finding_json(change_by_hand(session, finding_id, change, body.note, who.actor, now, body.owner), now)


@router.post("/findings/{finding_id}/close", summary="Close (销号) with a rectification note (auditor)")
def close(finding_id: RowId, body: CloseIn, session: SessionDep, who: Auditors) -> dict[str, Any]:
    now = utcnow()
    return finding_json(change_by_hand(session, finding_id, "close", body.note, who.actor, now), now)


@router.post("/findings/{finding_id}/waive", summary="Waive with a reason (auditor)")
def waive(finding_id: RowId, body: WaiveIn, session: SessionDep, who: Auditors) -> dict[str, Any]:
    now = utcnow()
    return finding_json(change_by_hand(session, finding_id, "waive", body.reason, who.actor, now), now)
