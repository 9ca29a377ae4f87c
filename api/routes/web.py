"""Server-rendered pages for reviewers and auditors (SPEC §11): sign-in, landing page, playback.

Browsers cannot put a bearer token on a ``<video>`` request, so the pages take the token once through a
login form and start a server-side session (``api.web_sessions``); the HttpOnly, SameSite=Strict cookie holds
only that session's random key, never the token. The JSON API under ``/api/v1`` never reads the cookie.
Every form that changes something carries a CSRF token and must come from this site's origin.
The case, action, recordings, report and admin pages live in their own modules; this router includes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal, authenticate
from api.deps import RuntimeDep, SessionDep
from api.i18n import TEXT, pick_lang
from api.params import RowId
from api.permissions import allowed, decide, page_capability
from api.routes import web_access, web_admin, web_cases, web_findings, web_recordings, web_reports
from api.routes.recordings import get_recording, stream_recording
from api.routes.web_common import (
    LangQuery,
    PageReader,
    PageRoute,
    approval_page,
    guard,
    message,
    not_found,
    page,
    safe_next,
    who_is_calling,
)
from api.routes.web_forms import client_address, cookie_is_secure, form_is_ours
from api.web_sessions import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    THROTTLE_WINDOW,
    end_session,
    new_csrf,
    open_viewing,
    record_failure,
    start_session,
    throttled,
    token_name_of,
    viewing_to_audit,
)
from audit.access import ApprovalRequired, check_recording, record_uses, recording_condition, scope_for
from audit.trail import recording_trail
from config.errors import NotFound, Unauthorized
from ingest.failures import open_failures
from storage.basics import utcnow
from storage.events import append_event
from storage.models import Recording
from storage.shapes import failure_json, recording_json

router = APIRouter(include_in_schema=False, route_class=PageRoute)
router.include_router(web_cases.router)
router.include_router(web_reports.router)
router.include_router(web_recordings.router)
router.include_router(web_access.router)  # before web_admin: /admin/access is not one of its /admin/{section}
router.include_router(web_admin.router)
router.include_router(web_findings.router)

RECENT = 50
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
LOGIN_FORM_SECONDS = 3600

TokenForm = Annotated[str, Form(max_length=256)]
ShortForm = Annotated[str, Form(max_length=128)]
NextForm = Annotated[str, Form(max_length=2048)]
NextQuery = Annotated[str | None, Query(max_length=2048)]


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The pages' own stylesheet and scripts; only files that exist in ``api/static`` are served, never a path."""
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=3600"})


def login_page(
    request: Request, lang: str, status: int = 200, message_: str | None = None, next_: str | None = None
) -> Response:
    """The sign-in form with a fresh pre-session CSRF token (in the form and in a cookie only /login reads)."""
    token = new_csrf()
    response = page(request, "login.html", lang, status, message=message_, next=safe_next(next_), login_csrf=token)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_FORM_SECONDS,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request),
    )
    return response


@router.get("/login")
def login_form(request: Request, lang: LangQuery = None, next: NextQuery = None) -> Response:
    return login_page(request, pick_lang(lang), next_=next)


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    token: TokenForm = "",
    lang: ShortForm = "en",
    next: NextForm = "",
    csrf: ShortForm = "",
) -> Response:
    lang = pick_lang(lang)
    t = TEXT[lang]
    if not form_is_ours(request, csrf, request.cookies.get(LOGIN_CSRF_COOKIE)):
        return login_page(request, lang, 403, t["csrf_failed"], next)
    secret = token.strip()
    if not secret:
        return login_page(request, lang, 422, t["empty_token"], next)
    client = client_address(request)
    name = token_name_of(session, secret)
    if throttled(session, client, name):
        minutes = int(THROTTLE_WINDOW.total_seconds() // 60)
        response = login_page(request, lang, 429, t["throttled"].format(minutes=minutes), next)
        response.headers["Retry-After"] = str(int(THROTTLE_WINDOW.total_seconds()))
        return response
    who = authenticate(session, secret)
    if who is None or not allowed(who.role, "pages.browse"):
        record_failure(session, client, name)
        return login_page(
            request, lang, 401 if who is None else 403, t["bad_token" if who is None else "forbidden"], next
        )
    key, web = start_session(session, who.token_id, rt.settings.web_session_hours)
    append_event(
        session, "web.signed_in", f"token:{who.token_id}", {"session": web.id, "client": client}, actor=who.actor
    )
    response = RedirectResponse(safe_next(next) or f"/?lang={lang}", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        max_age=int(rt.settings.web_session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=cookie_is_secure(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(
    request: Request, session: SessionDep, rt: RuntimeDep, lang: ShortForm = "en", csrf: ShortForm = ""
) -> Response:
    """End the server-side session (the cookie alone would outlive a browser that kept it); language kept."""
    lang = pick_lang(lang)
    who = who_is_calling(request, rt)
    web = request.state.signed_in
    if who is not None and web is not None:
        if not form_is_ours(request, csrf, web.csrf):
            return message(request, lang, 403, TEXT[lang]["csrf_failed"], who=who)
        end_session(session, web.session_id)
        append_event(session, "web.signed_out", f"token:{who.token_id}", {"session": web.session_id}, actor=who.actor)
    response = RedirectResponse(f"/login?{urlencode({'lang': lang})}", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/")
async def index(reader: PageReader, lang: LangQuery = None) -> Response:
    return await reader.run(_index, reader.request, reader.lang)


def _index(session: Session, who: Principal, request: Request, lang: str) -> Response:
    query = select(Recording)
    scoped = recording_condition(scope_for(who, utcnow()))
    if scoped is not None:
        query = query.where(scoped)
    recent = session.scalars(query.order_by(Recording.received_at.desc(), Recording.id.desc()).limit(RECENT))
    # Ingest failures are shown to whoever the API would show them to (None: the section is left out).
    failures = (
        [failure_json(f, code) for f, code in open_failures(session)] if allowed(who.role, "ingest.failures") else None
    )
    return page(request, "index.html", lang, who=who, recordings=[recording_json(r) for r in recent], failures=failures)


@router.get("/recordings/{recording_id}/play")
def play(
    recording_id: RowId,
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    lang: LangQuery = None,
    accept_damaged: bool = False,
) -> Response:
    lang = pick_lang(lang)
    who = guard(request, rt, lang, denied="may_not_play")
    if isinstance(who, Response):
        return who
    recording = session.get(Recording, recording_id)
    if recording is None:
        return not_found(request, lang, who, "no_recording", recording_id)
    scope = scope_for(who, utcnow())
    try:
        grants = check_recording(session, scope, recording)
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)
    record_uses(session, scope, grants, "recordings.play")
    open_viewing(session, request.state.signed_in.session_id, recording.id)
    return page(
        request,
        "play.html",
        lang,
        who=who,
        recording=recording_json(recording),
        trail=recording_trail(session, [recording]),
        accept_damaged=accept_damaged,
    )


@router.get("/recordings/{recording_id}/content")
def page_content(
    recording_id: RowId, request: Request, session: SessionDep, rt: RuntimeDep, accept_damaged: bool = False
) -> Response:
    """The same read as the API's, for ``<video src>``: one audit event per viewing, naming the viewer."""
    who = who_is_calling(request, rt)
    if who is None:
        raise Unauthorized("sign in first")
    decide(who, page_capability(request.scope["route"].path))
    web = request.state.signed_in
    get_recording(session, recording_id)  # a missing recording is a 404 before any viewing is recorded
    claim = session.begin_nested()
    viewing = viewing_to_audit(session, web.session_id, recording_id)
    details = {"via": "web", "viewing": viewing, "session": web.session_id}
    response = stream_recording(
        session, rt, recording_id, request.headers.get("range"), who, accept_damaged, details, viewing is not None
    )
    if response.status_code in (200, 206):
        claim.commit()
    else:
        claim.rollback()  # nothing was read: the viewing's first read is still to come
    return response
