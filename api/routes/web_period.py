"""The period report's page and its XLSX and PDF downloads (SPEC §14), for auditors.

Presets name whole calendar spans around today in ``BWC_TIMEZONE``: this week (Monday–Sunday), this month,
this half-year (January–June or July–December). Without dates the page opens on this month. A unit's name
drills down to its actions; without a unit the page lists none (a year holds too many to show).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.i18n import TEXT
from api.period_download import period_file
from api.routes.actions import date_param
from api.routes.web_common import (
    LangQuery,
    PageReader,
    PageRoute,
    Span,
    SpanQuery,
    download,
    error_text,
    page,
    pick_lang,
)
from audit.labels import reason_label
from audit.period_query import ledger_findings, period_report
from audit.period_words import percent, points, words
from config.errors import BadInput
from storage.basics import utcnow
from storage.models import Unit
from storage.runtime import Runtime

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_LISTED = 1000


def presets(today: date) -> dict[str, tuple[date, date]]:
    """This week, this month and this half-year, each a whole span containing ``today``."""
    monday = today - timedelta(days=today.weekday())
    month_end = today.replace(day=calendar.monthrange(today.year, today.month)[1])
    first_half = today.month <= 6
    half = (
        (date(today.year, 1, 1), date(today.year, 6, 30))
        if first_half
        else (
            date(today.year, 7, 1),
            date(today.year, 12, 31),
        )
    )
    return {
        "week": (monday, monday + timedelta(days=6)),
        "month": (today.replace(day=1), month_end),
        "half_year": half,
    }


def _lang(value: str | None, default: str) -> str:
    return pick_lang(value) if value else default


def _dates(from_: str | None, to: str | None, today: date) -> tuple[date | None, date | None]:
    if not from_ and not to:
        return presets(today)["month"]
    return date_param(from_, "from"), date_param(to, "to")


@router.get("/reports/period")
async def period_page(reader: PageReader, span: SpanQuery, lang: LangQuery = None) -> Response:
    lang = _lang(lang, reader.runtime.settings.language)
    return await reader.speaking(lang).run(_period_page, reader.request, lang, reader.runtime, span)


def _period_page(session: Session, who: Principal, request: Request, lang: str, rt: Runtime, span: Span) -> Response:
    today = datetime.now(rt.settings.tz).date()
    units = list(session.scalars(select(Unit.code).order_by(Unit.code)))
    from_, to, unit = span.from_, span.to, span.unit
    form = {"from": from_ or "", "to": to or "", "unit": unit or ""}
    context: dict[str, Any] = {"units": units, "presets": presets(today), "w": words(lang)}
    context |= {"percent": percent, "points": points, "max_listed": MAX_LISTED}
    context["reason_label"] = lambda code: reason_label(code, lang)
    start = end = None
    try:
        start, end = _dates(from_, to, today)
        form |= {"from": str(start or ""), "to": str(end or "")}
        report = period_report(session, rt.settings, start, end, unit, utcnow(), ledger_findings())
    except BadInput as exc:
        error = _error_words(exc, lang, from_ or to, start, end)
        return page(request, "period.html", lang, 400, who=who, form=form, report=None, error=error, **context)
    return page(request, "period.html", lang, who=who, form=form, report=report, error=None, **context)


def _error_words(exc: BadInput, lang: str, asked: str | None, start: date | None, end: date | None) -> str:
    """Why the report cannot be made, in the page's language: a Chinese page names no English message."""
    if lang == "en":
        return error_text(exc, lang)[1]
    if asked and start is None and end is None:
        return TEXT[lang]["bad_date"]  # a date that did not parse
    if start is not None and end is not None and start > end:
        return TEXT[lang]["from_after_to"]
    return error_text(exc, lang)[1]


@router.get("/reports/period.{fmt}")
async def period_download(
    fmt: Literal["xlsx", "pdf"], reader: PageReader, span: SpanQuery, lang: LangQuery = None
) -> Response:
    """The page's report as a file, through the same rendering as ``GET /api/v1/reports/period?format=``."""
    settings = reader.runtime.settings
    lang = _lang(lang, settings.language)

    def make(session: Session, _who: Principal) -> Response:
        start, end = _dates(span.from_, span.to, datetime.now(settings.tz).date())
        report = period_report(session, settings, start, end, span.unit, utcnow(), ledger_findings())
        return period_file(report, fmt, lang)

    return await download(reader.speaking(lang), make)
