"""The access-grants admin page (SPEC §15): every grant with its state, a form to grant, a revoke button.

Granting and revoking call the same ``audit.access`` functions as ``bwc access`` and ``/api/v1/access/grants``,
so the limits (1 to ``MAX_HOURS`` hours, a live reviewer token, a case with actions) and the audit events
(``access.granted``, ``access.revoked``) are theirs. A refused grant re-shows the form with what was typed and
the reason in the page's language. This router is included before the admin pages' ``/admin/{section}``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import RuntimeDep, SessionDep
from api.i18n import TEXT
from api.params import RowId
from api.routes.web_admin import TABS, Csrf
from api.routes.web_common import LangQuery, PageReader, PageRoute, error_text, form_caller, page
from audit.access import DEFAULT_HOURS, MAX_HOURS, grant_access, grant_json, revoke_grant
from config.errors import BadInput, BwcError
from storage.basics import utcnow
from storage.models import AccessGrant, ApiToken

router = APIRouter(include_in_schema=False, route_class=PageRoute)

# The API's limits (api/routes/access.py GrantIn); longer values never reach grant_access.
Holder = Annotated[str, Form(max_length=256)]
CaseNumber = Annotated[str, Form(max_length=128)]
Approver = Annotated[str, Form(max_length=256)]
Reason = Annotated[str, Form(max_length=4000)]
Hours = Annotated[str, Form(max_length=32)]
PAGE_SIZE = 50
MAX_PAGE = 100_000
PageQuery = Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)]

# An error's code (audit.access) -> the words that say it on the page.
GRANT_ERRORS = {
    "bad_holder": "grant_bad_holder",
    "bad_case": "grant_bad_case",
    "bad_approver": "grant_bad_approver",
    "bad_reason": "grant_bad_reason",
    "bad_hours": "grant_bad_hours",
    "no_holder": "grant_no_holder",
    "holder_not_scoped": "grant_not_scoped",
    "no_case": "grant_no_case",
    "not_found": "grant_not_found",
    "already_revoked": "grant_already_revoked",
}


def error_words(exc: BwcError, lang: str, **values: Any) -> str:
    """A refused grant or revocation in the page's language; an unforeseen error in ``error_text``'s words."""
    key = GRANT_ERRORS.get(exc.code)
    if key is None:
        return error_text(exc, lang)[1]
    return TEXT[lang][key].format(max=MAX_HOURS, **values)


def parse_hours(value: str) -> float:
    """Hours as typed; empty is the API's default. Range checks are ``grant_access``'s, as for the API."""
    if not value.strip():
        return float(DEFAULT_HOURS)
    try:
        hours = float(value)
    except ValueError:
        raise BadInput(f"hours: {value!r} is not a number", code="bad_hours") from None
    if not math.isfinite(hours):
        raise BadInput("hours must be a finite number", code="bad_hours")
    return hours


def _reviewers(session: Session) -> list[str]:
    """Live reviewer tokens' names, offered while typing the holder (any name may still be typed)."""
    live = select(ApiToken.name).where(ApiToken.role == "reviewer", ApiToken.revoked_at.is_(None))
    return sorted(set(session.scalars(live.order_by(ApiToken.name).limit(1000))))


def grants_page(session: Session, page_no: int) -> tuple[list[dict[str, Any]], bool, int]:
    """One page of grants, newest first (as ``/recordings`` pages its rows), whether more follow, and how many
    there are in all: years of grants never load at once."""
    query = select(AccessGrant).order_by(AccessGrant.id.desc()).offset((page_no - 1) * PAGE_SIZE)
    now = utcnow()
    rows = [grant_json(g, now) for g in session.scalars(query.limit(PAGE_SIZE + 1))]
    total = session.scalar(select(func.count()).select_from(AccessGrant)) or 0
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, total


def access_page(
    request: Request,
    session: Session,
    lang: str,
    who: Principal,
    status: int = 200,
    page_no: int = 1,
    **context: Any,
) -> Response:
    """The grants a page at a time (after a form, the first: the newest grant), with the form to grant."""
    grants, more, total = grants_page(session, page_no)
    context.setdefault("error", None)
    context.setdefault("done", None)
    context.setdefault("typed", {"hours": str(DEFAULT_HOURS)})
    return page(
        request,
        "access.html",
        lang,
        status,
        who=who,
        section="access",
        sections=TABS,
        grants=grants,
        total=total,
        page_no=page_no,
        more=more,
        reviewers=_reviewers(session),
        max_hours=MAX_HOURS,
        # after a form was sent, the other language is this page's address, not the form's (a POST route)
        other_lang_url=f"/admin/access?lang={'en' if lang == 'zh' else 'zh'}",
        **context,
    )


@router.get("/admin/access")
async def access_grants(reader: PageReader, page_no: PageQuery = 1, lang: LangQuery = None) -> Response:
    return await reader.run(_access_grants, reader.request, reader.lang, page_no)


def _access_grants(session: Session, who: Principal, request: Request, lang: str, page_no: int) -> Response:
    return access_page(request, session, lang, who, page_no=page_no)


@router.post("/admin/access")
def grant(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    to: Holder = "",
    case_number: CaseNumber = "",
    approver: Approver = "",
    reason: Reason = "",
    hours: Hours = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    """Grant one reviewer one case for a while (an ``access.granted`` event in the request's transaction)."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    typed = {"to": to, "case_number": case_number, "approver": approver, "reason": reason, "hours": hours}
    try:
        with session.begin_nested():  # a refused grant leaves nothing behind; the page still renders
            made = grant_access(
                session,
                holder=to,
                case_number=case_number,
                approver=approver,
                reason=reason,
                hours=parse_hours(hours),
                actor=who.actor,
                now=utcnow(),
            )
    except BwcError as exc:
        text = error_words(exc, lang, holder=to.strip(), case=case_number.strip())
        return access_page(request, session, lang, who, exc.status, error=text, typed=typed)
    tz = rt.settings.tz
    until = made.expires_at.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    done = TEXT[lang]["grant_done"].format(holder=made.holder, case=made.case_number, until=until)
    return access_page(request, session, lang, who, 201, done=done)


@router.post("/admin/access/{grant_id}/revoke")
def revoke(
    grant_id: RowId, request: Request, session: SessionDep, rt: RuntimeDep, csrf: Csrf = "", lang: LangQuery = None
) -> Response:
    """End a grant now (an ``access.revoked`` event); revoking twice is refused so that a stale page shows."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            ended = revoke_grant(session, grant_id, actor=who.actor, now=utcnow())
    except BwcError as exc:
        return access_page(request, session, lang, who, exc.status, error=error_words(exc, lang, id=grant_id))
    done = TEXT[lang]["grant_revoked"].format(id=ended.id, holder=ended.holder, case=ended.case_number)
    return access_page(request, session, lang, who, done=done)
