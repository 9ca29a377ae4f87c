"""Case search, a case's actions and recordings, and one action with its coverage timeline (SPEC §11).

Showing an action is not an evidence read (no content leaves the store); playing a recording is, and the
player page's content route audits it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import RuntimeDep, SessionDep
from api.routes.cases import export_response
from api.routes.web_common import LangQuery, PageReader, PageRoute, approval_page, caller, not_found, page
from api.routes.web_timeline import (
    BarIn,
    Timeline,
    build_timeline,
    length_label,
    seek_seconds,
    sync_cameras,
)
from audit.access import ApprovalRequired, action_condition, check_action, note_uses, scope_for
from audit.case_view import read_case
from audit.labels import reason_label
from audit.shapes import action_json, actions_json
from audit.trail import recording_trail
from config.errors import NotFound
from config.settings import Settings
from storage.basics import utcnow
from storage.models import Action, Recording
from storage.runtime import Runtime
from storage.shapes import recording_json

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_RESULTS = 200
LATEST = 50
# Reasons that say why one recording does not count as coverage: its bar is drawn as such.
RECORDING_PROBLEMS = frozenset({"no_audio", "no_video", "unplayable", "integrity"})


def find_actions(
    session: Session, q: str, limit: int = MAX_RESULTS, scoped: Any = None
) -> tuple[list[dict[str, Any]], bool]:
    """Actions whose case number or action id contains ``q`` anywhere (case-insensitive on every database),
    among those ``scoped`` admits (an ``audit.access`` condition; None for all)."""
    if q:
        part = q.lower()
        where: Any = or_(
            func.lower(Action.action_id).contains(part, autoescape=True),
            func.lower(Action.case_number).contains(part, autoescape=True),
        )
        query = select(Action.id).where(where).order_by(Action.started_at.desc(), Action.action_id)
    else:
        query = select(Action.id).order_by(Action.started_at.desc(), Action.action_id)
        limit = LATEST
    if scoped is not None:
        query = query.where(scoped)
    ids = list(session.scalars(query.limit(limit + 1)))
    more = len(ids) > limit
    found = actions_json(session, [Action.id.in_(ids[:limit])], utcnow()) if ids else []
    found.reverse()  # newest first, as the query ranked them
    return found, more


def recordings_by_id(session: Session, ids: set[int]) -> list[Recording]:
    if not ids:
        return []
    query = select(Recording).where(Recording.id.in_(ids)).order_by(Recording.started_at, Recording.id)
    return list(session.scalars(query))


@router.get("/cases")
async def search(reader: PageReader, q: Annotated[str, Query(max_length=128)] = "", lang: LangQuery = None) -> Response:
    return await reader.run(_search, reader.request, reader.lang, q)


def _search(session: Session, who: Principal, request: Request, lang: str, q: str) -> Response:
    q = q.strip()
    found, more = find_actions(session, q, scoped=action_condition(scope_for(who, utcnow())))
    return page(request, "cases.html", lang, who=who, q=q, actions=found, more=more, limit=MAX_RESULTS)


@router.get("/cases/{case_number:path}")
async def case(case_number: str, reader: PageReader, lang: LangQuery = None) -> Response:
    return await reader.run(_case, reader.request, reader.lang, reader.runtime, case_number)


def _case(session: Session, who: Principal, request: Request, lang: str, rt: Runtime, case_number: str) -> Response:
    now = utcnow()
    scope = scope_for(who, now)
    try:
        view = read_case(session, scope, case_number, now)  # the reader GET /api/v1/cases/{n} uses
        note_uses(rt.sessions, scope, view.grants_used, "cases.read")
    except NotFound:
        return not_found(request, lang, who, "no_case", case_number)
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)
    return page(
        request,
        "case.html",
        lang,
        who=who,
        case_number=case_number,
        actions=view.actions,
        recordings=view.recordings,
        belongs=actions_of_recordings(view.actions),
        summary=case_summary(view.actions, len(view.recordings)),
        hold=view.hold,
    )


def actions_of_recordings(actions: list[dict[str, Any]]) -> dict[int, list[str]]:
    """Which of the case's actions each recording belongs to (a recording may cover several)."""
    belongs: dict[int, list[str]] = {}
    for action in actions:
        for rid in action["recordings"]:
            belongs.setdefault(rid, []).append(action["action_id"])
    return belongs


def case_summary(actions: list[dict[str, Any]], recordings: int) -> dict[str, int]:
    """How many of the case's actions have each verdict, and how many recordings they hold."""
    counts = {"n": len(actions), "complete": 0, "pending": 0, "incomplete": 0, "r": recordings}
    for action in actions:
        if action.get("verdict") in counts:
            counts[str(action["verdict"])] += 1
    return counts


@router.get("/exports/{case_number:path}")
def export_download(
    case_number: str, request: Request, session: SessionDep, rt: RuntimeDep, lang: LangQuery = None
) -> Response:
    """The case page's export button: the same streamed, audited ZIP as ``GET /api/v1/cases/{n}/export``."""
    lang, who = caller(request, rt, lang)
    if isinstance(who, Response):
        return who
    try:
        return export_response(session, rt, case_number, who)
    except NotFound:
        return not_found(request, lang, who, "no_case", case_number)
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)


@router.get("/actions/{action_id:path}")
async def action_page(action_id: str, reader: PageReader, lang: LangQuery = None) -> Response:
    return await reader.run(_action_page, reader.request, reader.lang, reader.runtime, action_id)


def _action_page(
    session: Session, who: Principal, request: Request, lang: str, rt: Runtime, action_id: str
) -> Response:
    action = session.scalar(select(Action).where(Action.action_id == action_id))
    if action is None:
        return not_found(request, lang, who, "no_action", action_id)
    scope = scope_for(who, utcnow())
    try:
        note_uses(rt.sessions, scope, check_action(session, scope, action), "actions.read")
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)
    data = action_json(session, action, utcnow())
    recordings = recordings_by_id(session, set(data["recordings"]))
    return page(
        request,
        "action.html",
        lang,
        who=who,
        action=data,
        recordings=[recording_json(r) for r in recordings],
        timeline=(timeline := action_timeline(rt.settings, action, data, recordings)),
        sync=sync_cameras(timeline, recordings),
        action_start=action.started_at,
        required_devices=rt.settings.min_devices,
        length_label=length_label,
        seek_seconds=seek_seconds,
        reason_label=lambda code: reason_label(code, lang),
        trail=recording_trail(session, recordings),
    )


def action_timeline(settings: Settings, action: Action, data: dict[str, Any], recordings: list[Recording]) -> Timeline:
    """Lanes for the action's devices (then devices only a hand-made link brings), bars on corrected clocks."""
    devices = list(data["devices"])
    devices += sorted({r.device.serial for r in recordings if r.device is not None} - set(devices))
    problems = {
        reason.get("recording"): reason["code"]
        for reason in data["reasons"]
        if reason.get("code") in RECORDING_PROBLEMS and reason.get("recording") is not None
    }
    bars = []
    for rec in recordings:
        if rec.device is None or rec.started_at is None:
            continue
        shift = timedelta(seconds=float(rec.device.clock_offset_seconds or 0.0))
        end = rec.ended_at + shift if rec.ended_at is not None else None
        bars.append(BarIn(rec.id, rec.device.serial, rec.started_at + shift, end, problems.get(rec.id)))
    shortfalls = [
        (datetime.fromisoformat(r["from"]), datetime.fromisoformat(r["to"]), tuple(r.get("devices_recording") or ()))
        for r in data["reasons"]
        if r.get("code") == "shortfall" and r.get("from") and r.get("to")
    ]
    return build_timeline(
        action.started_at,
        action.ended_at,
        devices,
        bars,
        shortfalls,
        settings.tz,
        settings.link_margin_seconds,
        required=settings.min_devices,
    )
