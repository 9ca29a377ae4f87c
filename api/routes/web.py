"""Server-rendered pages for reviewers and auditors (SPEC §11): sign-in, landing page, playback.

Browsers cannot put a bearer token on a ``<video>`` request, so the pages take the token once through a
login form and keep it in an HttpOnly, SameSite=Strict cookie; the pages and the page-side content route
read it from there. The JSON API under ``/api/v1`` never reads the cookie (no cross-site request can use it).
The case, action and report pages live in ``web_cases`` and ``web_reports``; this router includes them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import select

from api.deps import TOKEN_COOKIE, ReadSessionDep, RuntimeDep, SessionDep, resolve_principal
from api.i18n import TEXT, pick_lang
from api.params import RowId
from api.routes import web_cases, web_reports
from api.routes.recordings import stream_recording
from api.routes.web_common import PAGE_ROLES, PLAY_ROLES, LangQuery, guard, not_found, page
from audit.trail import recording_trail
from config.errors import Forbidden, NotFound, Unauthorized
from ingest.failures import open_failures
from storage.models import Recording
from storage.shapes import failure_json, recording_json

router = APIRouter(include_in_schema=False)
router.include_router(web_cases.router)
router.include_router(web_reports.router)

COOKIE_MAX_AGE = 12 * 3600
RECENT = 50
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The pages' own stylesheet; only files that exist in ``api/static`` are served, never a path."""
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in STATIC_TYPES or not path.is_file():
        raise NotFound(f"no static file {name!r}")
    return FileResponse(path, media_type=STATIC_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_form(request: Request, lang: LangQuery = None) -> Response:
    return page(request, "login.html", pick_lang(lang), message=None)


@router.post("/login")
def login(
    request: Request, rt: RuntimeDep, token: Annotated[str, Form(max_length=256)], lang: Annotated[str, Form()] = "en"
) -> Response:
    lang = pick_lang(lang)
    who = resolve_principal(rt, token.strip())
    if who is None:
        return page(request, "login.html", lang, 401, message=TEXT[lang]["bad_token"])
    if who.role not in PAGE_ROLES:
        return page(request, "login.html", lang, 403, message=TEXT[lang]["forbidden"])
    response = RedirectResponse(f"/?lang={lang}", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE,
        token.strip(),
        max_age=COOKIE_MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


@router.get("/")
def index(request: Request, session: ReadSessionDep, rt: RuntimeDep, lang: LangQuery = None) -> Response:
    lang = pick_lang(lang)
    who = guard(request, rt, lang)
    if isinstance(who, Response):
        return who
    recent = session.scalars(
        select(Recording).order_by(Recording.received_at.desc(), Recording.id.desc()).limit(RECENT)
    )
    return page(
        request,
        "index.html",
        lang,
        who=who,
        recordings=[recording_json(r) for r in recent],
        failures=[failure_json(f, code) for f, code in open_failures(session)],
    )


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
    who = guard(request, rt, lang, PLAY_ROLES)
    if isinstance(who, Response):
        return who
    recording = session.get(Recording, recording_id)
    if recording is None:
        return not_found(request, lang, who, "no_recording", recording_id)
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
    """The same audited read as the API's, authorized by the page cookie (for ``<video src>``)."""
    who = resolve_principal(rt, request.cookies.get(TOKEN_COOKIE))
    if who is None:
        raise Unauthorized("sign in first")
    if who.role not in PLAY_ROLES:
        raise Forbidden(f"role {who.role!r} may not read evidence content")
    return stream_recording(session, rt, recording_id, request.headers.get("range"), who, accept_damaged)
