"""The missing-recording report as a page with filters, and its CSV and XLSX downloads (SPEC §6, §11).

The page opens on the last 30 local days; a submitted form with an empty date leaves that end open, as the
command line does. Downloads carry the same filters and are rendered by the same functions as ``bwc report``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from api.deps import ReadSessionDep, RuntimeDep
from api.downloads import content_disposition
from api.i18n import TEXT
from api.routes import web_period
from api.routes.actions import date_param
from api.routes.reports import XLSX, missing_file_name
from api.routes.web_common import LangQuery, PageRoute, error_text, guard, page, pick_lang
from api.routes.web_scope import approval_page
from audit.access import ApprovalRequired, report_units, scope_for
from audit.report_formats import render_csv, render_xlsx
from audit.reports import missing_report
from config.errors import BadInput
from storage.models import Unit
from storage.types import utcnow

router = APIRouter(include_in_schema=False, route_class=PageRoute)

DEFAULT_DAYS = 30
DateQuery = Annotated[str | None, Query(max_length=10)]
UnitQuery = Annotated[str | None, Query(max_length=128)]


def period(from_: str | None, to: str | None, today: date) -> tuple[date | None, date | None]:
    """The dates asked for; neither parameter present at all means the last ``DEFAULT_DAYS`` days."""
    if from_ is None and to is None:
        return today - timedelta(days=DEFAULT_DAYS - 1), today
    return date_param(from_, "from"), date_param(to, "to")


@router.get("/reports/missing")
def report_page(
    request: Request,
    session: ReadSessionDep,
    rt: RuntimeDep,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: DateQuery = None,
    unit: UnitQuery = None,
    lang: LangQuery = None,
) -> Response:
    lang = pick_lang(lang)
    who = guard(request, rt, lang)
    if isinstance(who, Response):
        return who
    units = list(session.scalars(select(Unit.code).order_by(Unit.code)))
    unit = unit or None
    form: dict[str, Any] = {"from": from_ or "", "to": to or "", "unit": unit or ""}
    try:
        start, end = period(from_, to, _today(rt.settings.tz))
    except BadInput:  # its words name the parameters; the page says it in the page's language
        error = TEXT[lang]["bad_date"]
        return page(request, "report.html", lang, 400, who=who, units=units, form=form, report=None, error=error)
    form |= {"from": str(start or ""), "to": str(end or "")}
    if start is not None and end is not None and start > end:
        error = TEXT[lang]["from_after_to"]
        return page(request, "report.html", lang, 400, who=who, units=units, form=form, report=None, error=error)
    try:
        covered = report_units(scope_for(session, who, utcnow()), unit)
        form["unit"] = covered if isinstance(covered, str) else ""
        report = missing_report(session, rt.settings, start, end, covered, utcnow())
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)
    except BadInput as exc:  # an unknown unit, or a reviewer of several units who named none
        error = error_text(exc, lang)[1]
        return page(request, "report.html", lang, 400, who=who, units=units, form=form, report=None, error=error)
    return page(request, "report.html", lang, who=who, units=units, form=form, report=report, error=None)


@router.get("/reports/missing.{fmt}")
def report_download(
    fmt: Literal["csv", "xlsx"],
    request: Request,
    session: ReadSessionDep,
    rt: RuntimeDep,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: DateQuery = None,
    unit: UnitQuery = None,
    lang: LangQuery = None,
) -> Response:
    lang = pick_lang(lang)
    who = guard(request, rt, lang)
    if isinstance(who, Response):
        return who
    unit = unit or None
    start, end = period(from_, to, _today(rt.settings.tz))
    try:
        covered = report_units(scope_for(session, who, utcnow()), unit)
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)
    report = missing_report(session, rt.settings, start, end, covered, utcnow())
    unit = covered if isinstance(covered, str) else None
    if fmt == "csv":
        body, media = render_csv(report), "text/csv; charset=utf-8"
    else:
        body, media = render_xlsx(report), XLSX
    disposition = content_disposition(missing_file_name(start, end, unit, fmt))
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})


def _today(tz: ZoneInfo) -> date:
    return datetime.now(tz).date()


router.include_router(web_period.router)  # the period report's page and downloads (SPEC §14)
