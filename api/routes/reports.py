"""The missing-recording report (SPEC §6) and the audit log's events (SPEC §9), for auditors."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, require_reading
from api.downloads import attachment, content_disposition
from api.params import SeqQuery
from api.period_download import PDF, period_file
from api.routes import API_PREFIX
from api.routes.actions import date_param
from audit.access import report_units, scope_for
from audit.period_query import ledger_findings, period_report, report_json
from audit.report_formats import render_csv, render_json, render_xlsx
from audit.reports import missing_report
from storage.basics import utcnow
from storage.events import iso_utc
from storage.models import AuditEvent
from storage.runtime import Runtime

router = APIRouter(prefix=API_PREFIX, tags=["audit"])

Auditors = Annotated[Reading, Depends(require_reading("audit.read"))]
PeriodReaders = Annotated[Reading, Depends(require_reading("reports.period"))]
ReportReaders = Annotated[Reading, Depends(require_reading("reports.missing"))]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get(
    "/reports/missing",
    summary="Actions lacking full-process footage, per unit and period (local dates, inclusive)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "text/csv": {}, XLSX: {}}}},
)
async def report_missing(
    reader: ReportReaders,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    unit: Annotated[str | None, Query(max_length=128)] = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Response:
    return await reader.run(_report_missing, reader.runtime, from_, to, unit, format)


def _report_missing(
    session: Session,
    who: Principal,
    rt: Runtime,
    from_: str | None,
    to: str | None,
    unit: str | None,
    format: Literal["json", "csv", "xlsx"],
) -> Response:
    start, end = date_param(from_, "from"), date_param(to, "to")
    covered = report_units(scope_for(who, utcnow()), unit)
    report = missing_report(session, rt.settings, start, end, covered, utcnow())
    if format == "json":
        return Response(render_json(report), media_type="application/json")
    return missing_file(report, start, end, covered, format)


def missing_file(
    report: dict[str, Any],
    start: date | None,
    end: date | None,
    covered: str | frozenset[str] | None,
    fmt: Literal["csv", "xlsx"],
) -> Response:
    """The report as a CSV or XLSX attachment, for the API and the web page alike."""
    unit = covered if isinstance(covered, str) else None  # several units: the file is named for none
    body, media = (render_csv(report), "text/csv; charset=utf-8") if fmt == "csv" else (render_xlsx(report), XLSX)
    return attachment(body, media, content_disposition(missing_file_name(start, end, unit, fmt)))


def missing_file_name(start: date | None, end: date | None, unit: str | None, ext: str) -> str:
    """``missing-<from>-<to>[-<unit>].<ext>`` for the API's and the web page's downloads alike."""
    return "-".join(["missing", str(start or "start"), str(end or "now"), *([unit] if unit else [])]) + f".{ext}"


@router.get(
    "/reports/period",
    summary="The written report for a period (SPEC §14): per unit coverage, trend, reasons, late uploads, findings",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, XLSX: {}, PDF: {}}}},
)
async def report_period(
    reader: PeriodReaders,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    unit: Annotated[str | None, Query(max_length=128)] = None,
    format: Literal["json", "xlsx", "pdf"] = "json",
    lang: Literal["en", "zh"] | None = None,
) -> Response:
    return await reader.run(_report_period, reader.runtime, from_, to, unit, format, lang)


def _report_period(
    session: Session,
    _who: Principal,
    rt: Runtime,
    from_: str | None,
    to: str | None,
    unit: str | None,
    format: Literal["json", "xlsx", "pdf"],
    lang: Literal["en", "zh"] | None,
) -> Response:
    start, end = date_param(from_, "from"), date_param(to, "to")
    report = period_report(session, rt.settings, start, end, unit or None, utcnow(), ledger_findings())
    if format == "json":
        return Response(render_json(report_json(report)), media_type="application/json")
    return period_file(report, format, lang or rt.settings.language)


@router.get("/audit/events", summary="Audit events in sequence order, after a given seq, optionally of one subject")
async def audit_events(
    reader: Auditors,
    after: SeqQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    subject: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
) -> dict[str, Any]:
    return await reader.run(_audit_events, after, limit, subject)


def _audit_events(session: Session, _who: Principal, after: int, limit: int, subject: str | None) -> dict[str, Any]:
    query = select(AuditEvent).where(AuditEvent.seq > after)
    if subject is not None:  # e.g. recording:42 — who viewed, linked or exported it (ix_audit_subject)
        query = query.where(AuditEvent.subject == subject)
    rows = session.scalars(query.order_by(AuditEvent.seq).limit(limit))
    events = [
        {
            "seq": e.seq,
            "at": iso_utc(e.at),
            "actor": e.actor,
            "kind": e.kind,
            "subject": e.subject,
            "details": json.loads(e.details),
            "leaf_hash": e.leaf_hash,
        }
        for e in rows
    ]
    return {"events": events, "next_after": events[-1]["seq"] if events else after}
