"""Server-rendered pages for reviewers and auditors (SPEC §11).

Browsers cannot put a bearer token on a ``<video>`` request, so the pages take the token once through a
login form and keep it in an HttpOnly, SameSite=Strict cookie; the pages and the page-side content route
read it from there. The JSON API under ``/api/v1`` never reads the cookie (no cross-site request can use it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from bwc.api.auth import Principal
from bwc.api.deps import TOKEN_COOKIE, RuntimeDep, SessionDep, resolve_principal
from bwc.api.i18n import TEXT, pick_lang
from bwc.api.routes.recordings import get_recording, stream_recording
from bwc.config.errors import Forbidden, Unauthorized
from bwc.ingest.failures import open_failures
from bwc.storage.models import Recording
from bwc.storage.runtime import Runtime
from bwc.storage.shapes import failure_json, recording_json

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")

PAGE_ROLES = frozenset({"admin", "reviewer", "auditor"})
PLAY_ROLES = frozenset({"admin", "reviewer"})
COOKIE_MAX_AGE = 12 * 3600
RECENT = 50

LangQuery = Annotated[str | None, Query(max_length=8)]


def _page(request: Request, name: str, lang: str, status: int = 200, **context: Any) -> Response:
    return templates.TemplateResponse(request, name, {"lang": lang, "t": TEXT[lang], **context}, status_code=status)


def _cookie_principal(request: Request, rt: Runtime) -> Principal | None:
    return resolve_principal(rt, request.cookies.get(TOKEN_COOKIE))


@router.get("/login")
def login_form(request: Request, lang: LangQuery = None) -> Response:
    return _page(request, "login.html", pick_lang(lang), who=None, message=None)


@router.post("/login")
def login(
    request: Request, rt: RuntimeDep, token: Annotated[str, Form(max_length=256)], lang: Annotated[str, Form()] = "en"
) -> Response:
    lang = pick_lang(lang)
    who = resolve_principal(rt, token.strip())
    if who is None:
        return _page(request, "login.html", lang, 401, who=None, message=TEXT[lang]["bad_token"])
    if who.role not in PAGE_ROLES:
        return _page(request, "login.html", lang, 403, who=None, message=TEXT[lang]["forbidden"])
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
def index(request: Request, session: SessionDep, rt: RuntimeDep, lang: LangQuery = None) -> Response:
    lang = pick_lang(lang)
    who = _cookie_principal(request, rt)
    if who is None:
        return RedirectResponse(f"/login?lang={lang}", status_code=303)
    if who.role not in PAGE_ROLES:
        return _page(request, "login.html", lang, 403, who=who, message=TEXT[lang]["forbidden"])
    recent = session.scalars(
        select(Recording).order_by(Recording.received_at.desc(), Recording.id.desc()).limit(RECENT)
    )
    return _page(
        request,
        "index.html",
        lang,
        who=who,
        recordings=[recording_json(r) for r in recent],
        failures=[failure_json(f, code) for f, code in open_failures(session)],
        can_play=who.role in PLAY_ROLES,
    )


@router.get("/recordings/{recording_id}/play")
def play(recording_id: int, request: Request, session: SessionDep, rt: RuntimeDep, lang: LangQuery = None) -> Response:
    lang = pick_lang(lang)
    who = _cookie_principal(request, rt)
    if who is None:
        return RedirectResponse(f"/login?lang={lang}", status_code=303)
    if who.role not in PLAY_ROLES:
        return _page(request, "login.html", lang, 403, who=who, message=TEXT[lang]["forbidden"])
    recording = recording_json(get_recording(session, recording_id))
    return _page(request, "play.html", lang, who=who, recording=recording)


@router.get("/recordings/{recording_id}/content")
def page_content(recording_id: int, request: Request, session: SessionDep, rt: RuntimeDep) -> Response:
    """The same audited read as the API's, authorized by the page cookie (for ``<video src>``)."""
    who = _cookie_principal(request, rt)
    if who is None:
        raise Unauthorized("sign in first")
    if who.role not in PLAY_ROLES:
        raise Forbidden(f"role {who.role!r} may not read evidence content")
    return stream_recording(session, rt, recording_id, request.headers.get("range"), who)
