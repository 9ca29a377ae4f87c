"""The recordings page (SPEC §11): every stored recording, filtered by device, officer, station, date and
status, a page at a time, newest first. ``per_page`` (1–200, default 50) sets how many rows a page holds; the
pager and the filter form keep it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.i18n import TEXT
from api.routes.web_common import LangQuery, PageReader, PageRoute, message, page
from audit.access import recording_condition, scope_for
from storage.basics import utcnow
from storage.models import Device, Recording, Station
from storage.runtime import Runtime
from storage.shapes import recording_json

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_PAGE = 100_000
TextQuery = Annotated[str, Query(max_length=128)]
DayQuery = Annotated[str, Query(max_length=10)]


def day_bounds(value: str, tz: ZoneInfo, end: bool) -> datetime | None:
    """A local date as the first instant of that day, or (``end``) of the next; ValueError when not a date."""
    if not value.strip():
        return None
    day = date.fromisoformat(value.strip())
    if end:
        day += timedelta(days=1)
    return datetime.combine(day, time(), tz)


def find_recordings(
    session: Session,
    filters: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    page_no: int,
    scoped: Any = None,
    per_page: int = PAGE_SIZE,
) -> tuple[list[Recording], bool]:
    """One page of recordings matching every filter given (device, officer, station: exact codes), among those
    ``scoped`` admits (an ``audit.access`` condition; None for all)."""
    query = select(Recording)
    if scoped is not None:
        query = query.where(scoped)
    if filters["device"]:
        query = query.join(Device, Device.id == Recording.device_id).where(Device.serial == filters["device"])
    if filters["station"]:
        query = query.join(Station, Station.id == Recording.station_id).where(Station.code == filters["station"])
    if filters["officer"]:
        query = query.where(Recording.officer_code == filters["officer"])
    if filters["status"]:
        query = query.where(Recording.status == filters["status"])
    if start is not None:
        query = query.where(func.coalesce(Recording.ended_at, Recording.started_at) >= start)
    if end is not None:
        query = query.where(Recording.started_at < end)
    query = query.order_by(Recording.started_at.desc(), Recording.id.desc())
    rows = list(session.scalars(query.limit(per_page + 1).offset((page_no - 1) * per_page)))
    return rows[:per_page], len(rows) > per_page


@router.get("/recordings")
async def recordings_page(
    reader: PageReader,
    device: TextQuery = "",
    officer: TextQuery = "",
    station: TextQuery = "",
    from_: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: DayQuery = "",
    status: Literal["", "ok", "unplayable"] = "",
    page_no: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = PAGE_SIZE,
    lang: LangQuery = None,
) -> Response:
    filters = {"device": device.strip(), "officer": officer.strip(), "station": station.strip(), "status": status}
    form = {**filters, "from": from_.strip(), "to": to.strip(), "per_page": per_page if per_page != PAGE_SIZE else ""}
    return await reader.run(
        _recordings_page, reader.request, reader.lang, reader.runtime, filters, form, from_, to, page_no, per_page
    )


def _recordings_page(
    session: Session,
    who: Principal,
    request: Request,
    lang: str,
    rt: Runtime,
    filters: dict[str, str],
    form: dict[str, Any],
    from_: str,
    to: str,
    page_no: int,
    per_page: int,
) -> Response:
    try:
        start, end = day_bounds(from_, rt.settings.tz, False), day_bounds(to, rt.settings.tz, True)
    except ValueError:
        return message(request, lang, 422, TEXT[lang]["bad_date"], who=who)
    if start is not None and end is not None and start >= end:
        return message(request, lang, 422, TEXT[lang]["from_after_to"], who=who)
    scoped = recording_condition(scope_for(who, utcnow()))  # a reviewer lists their units' evidence
    found, more = find_recordings(session, filters, start, end, page_no, scoped, per_page)
    return page(
        request,
        "recordings.html",
        lang,
        who=who,
        form=form,
        recordings=[recording_json(r) for r in found],
        page_no=page_no,
        more=more,
        query={k: v for k, v in form.items() if v},
    )
