"""The missing-recording report as a page with filters, and its CSV and XLSX downloads (SPEC §6, §11).

The page opens on the last 30 local days; a submitted form with an empty date leaves that end open, as the
command line does. Downloads carry the same filters and are rendered by the same functions as ``bwc report``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.i18n import TEXT
from api.routes import web_period
from api.routes.actions import date_param
from api.routes.reports import missing_file
from api.routes.web_common import (
    LangQuery,
    PageReader,
    PageRoute,
    Span,
    SpanQuery,
    approval_page,
    download,
    error_text,
    page,
)
from audit.access import ApprovalRequired, report_units, scope_for
from audit.reports import missing_report
from config.errors import BadInput
from storage.basics import utcnow
from storage.models import Unit
from storage.runtime import Runtime

router = APIRouter(include_in_schema=False, route_class=PageRoute)

DEFAULT_DAYS = 30


def period(from_: str | None, to: str | None, today: date) -> tuple[date | None, date | None]:
    """The dates asked for; neither parameter present at all means the last ``DEFAULT_DAYS`` days."""
    if from_ is None and to is None:
        return today - timedelta(days=DEFAULT_DAYS - 1), today
    return date_param(from_, "from"), date_param(to, "to")


@router.get("/reports/missing")
async def report_page(reader: PageReader, span: SpanQuery, lang: LangQuery = None) -> Response:
    return await reader.run(_report_page, reader.request, reader.lang, reader.runtime, span)


def _report_page(session: Session, who: Principal, request: Request, lang: str, rt: Runtime, span: Span) -> Response:
    units = list(session.scalars(select(Unit.code).order_by(Unit.code)))
    unit = span.unit
    form: dict[str, Any] = {"from": span.from_ or "", "to": span.to or "", "unit": unit or ""}
    try:
        start, end = period(span.from_, span.to, _today(rt.settings.tz))
    except BadInput:  # its words name the parameters; the page says it in the page's language
        error = TEXT[lang]["bad_date"]
        return page(request, "report.html", lang, 400, who=who, units=units, form=form, report=None, error=error)
    form |= {"from": str(start or ""), "to": str(end or "")}
    if start is not None and end is not None and start > end:
        error = TEXT[lang]["from_after_to"]
        return page(request, "report.html", lang, 400, who=who, units=units, form=form, report=None, error=error)
    try:
        covered = report_units(scope_for(who, utcnow()), unit)
        form["unit"] = covered if isinstance(covered, str) else ""
        report = missing_report(session, rt.settings, start, end, covered, utcnow())
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)
    except BadInput as exc:  # an unknown unit, or a reviewer of several units who named none
        error = error_text(exc, lang)[1]
        return page(request, "report.html", lang, 400, who=who, units=units, form=form, report=None, error=error)
    return page(request, "report.html", lang, who=who, units=units, form=form, report=report, error=None)


@router.get("/reports/missing.{fmt}")
async def report_download(
    fmt: Literal["csv", "xlsx"], reader: PageReader, span: SpanQuery, lang: LangQuery = None
) -> Response:
    """The page's report as a file, through the same rendering as ``GET /api/v1/reports/missing?format=``."""
    settings = reader.runtime.settings

    def make(session: Session, who: Principal) -> Response:
        start, end = period(span.from_, span.to, _today(settings.tz))
        covered = report_units(scope_for(who, utcnow()), span.unit)
        return missing_file(missing_report(session, settings, start, end, covered, utcnow()), start, end, covered, fmt)

    return await download(reader, make)


def _today(tz: ZoneInfo) -> date:
    return datetime.now(tz).date()


router.include_router(web_period.router)  # the period report's page and downloads (SPEC §14)
