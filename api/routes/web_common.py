"""What every web page shares: templates and their filters, who is calling, page rendering, errors as pages.

``signed_in_as`` is the one place that turns a request into a principal (the session cookie) and ``refusal``
the one role decision: a page that only reads takes a ``PageReading`` (``PageReader``), which does both in the
page's own reading session, as the API's ``Reading`` does for a token; a form that writes asks ``guard``.
``PageRoute`` gives every page route its security headers and turns any error into an HTML page in the page's
language, never the API's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, RuntimeDep
from api.i18n import (
    TEXT,
    action_kind_words,
    detail_words,
    event_words,
    field_words,
    pick_lang,
    reason_words,
    role_words,
    status_words,
    verdict_words,
    zone_words,
)
from api.permissions import allowed, page_capability
from api.routes.web_forms import form_is_ours
from api.web_sessions import SESSION_COOKIE, SignedIn, signed_in
from audit.access import ApprovalRequired
from config.errors import BwcError
from storage.db import reading
from storage.runtime import Runtime

LangQuery = Annotated[str | None, Query(max_length=8)]
DateQuery = Annotated[str | None, Query(max_length=10)]
UnitQuery = Annotated[str | None, Query(max_length=128)]

# Every page: scripts, styles and media from this origin only, never framed, no referrer sent elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
NO_STORE = "no-store"

templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


def local_time(value: str | datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """An ISO 8601 string or aware datetime as wall-clock time in the deployment's zone ('' for none)."""
    if value is None or value == "":
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(tz).strftime(fmt)


def path_part(value: Any) -> str:
    """One URL path segment: everything but unreserved characters escaped, slashes included."""
    return quote(str(value), safe="")


def _url(lang: str) -> Any:
    def url(path: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v is not None}
        query["lang"] = lang
        return f"{path}?{urlencode(query)}"

    return url


def _other_lang_url(request: Request, lang: str) -> str:
    other = "en" if lang == "zh" else "zh"
    url = request.url.include_query_params(lang=other)
    return f"{url.path}?{url.query}"


templates.env.filters["path_part"] = path_part


def safe_next(value: str | None) -> str | None:
    """A same-site relative path to return to after sign-in, or None (never another site: no open redirect)."""
    if not value or len(value) > 2048 or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 0x20 or c == "\\" for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return None
    return value


def here(request: Request) -> str:
    """This request's path and query, as a ``next`` for the sign-in form."""
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def page(
    request: Request,
    name: str,
    lang: str,
    status: int = 200,
    who: Principal | None = None,
    **context: Any,
) -> Response:
    """Render a template with the words of ``lang`` and the helpers every page uses."""
    tz: ZoneInfo = request.app.state.settings.tz
    web: SignedIn | None = getattr(request.state, "signed_in", None)
    helpers = {
        "lang": lang,
        "t": TEXT[lang],
        "who": who,
        "tz": tz,
        "url": _url(lang),
        "other_lang_url": _other_lang_url(request, lang),
        "local": lambda value, fmt="%Y-%m-%d %H:%M:%S": local_time(value, tz, fmt),
        "verdict_words": lambda verdict: verdict_words(verdict, lang),
        "reason_words": lambda reason: reason_words(reason, lang, lambda v: local_time(v, tz)),
        "role_words": lambda role: role_words(role, lang),
        "status_words": lambda status_: status_words(status_, lang),
        "event_words": lambda kind: event_words(kind, lang),
        "kind_words": lambda kind: action_kind_words(kind, lang),
        "detail_words": lambda value: detail_words(value, lang),
        "zone": zone_words(tz.key, lang),
        "can_browse": who is not None and allowed(who.role, "pages.browse"),
        "can_play": who is not None and allowed(who.role, "recordings.content"),
        "can_admin": who is not None and allowed(who.role, "admin.pages"),
        "can_findings": who is not None and allowed(who.role, "findings.read"),
        "can_period": who is not None and allowed(who.role, "reports.period"),
        "csrf": web.csrf if web is not None and who is not None else "",
    }
    return templates.TemplateResponse(request, name, {**helpers, **context}, status_code=status)


def signed_in_as(request: Request, session: Session, key: str) -> Principal | None:
    """The one place a page learns who is calling: the live server-side session its cookie (``key``) names.

    The session (with its CSRF token) is kept on ``request.state.signed_in`` for the forms the page renders.
    """
    request.state.signed_in = None
    if not key:
        return None
    web = signed_in(session, key)
    request.state.signed_in = web
    return web.principal if web is not None else None


def who_is_calling(request: Request, rt: Runtime) -> Principal | None:
    """``signed_in_as`` in its own short reading transaction, for a page that writes or streams."""
    key = request.cookies.get(SESSION_COOKIE) or ""
    if not key:
        request.state.signed_in = None
        return None
    with reading(rt.sessions) as session:
        return signed_in_as(request, session, key)


def refusal(
    request: Request, who: Principal | None, lang: str, capability: str, denied: str = "forbidden"
) -> Response | None:
    """A redirect to sign in (back here after) or a 403 page, or None when the caller's role may use the page's
    ``capability`` (``api.permissions.PAGES``, by the route's path); ``denied`` names the words that tell a
    refused caller why."""
    if who is None:
        return RedirectResponse(f"/login?{urlencode({'lang': lang, 'next': here(request)})}", status_code=303)
    if not allowed(who.role, capability):
        return message(request, lang, 403, TEXT[lang][denied], who=who, heading=TEXT[lang]["not_allowed"])
    return None


def guard(request: Request, rt: Runtime, lang: str, denied: str = "forbidden") -> Principal | Response:
    """The caller when its role may see the page; else ``refusal``'s answer."""
    who = who_is_calling(request, rt)
    refused = refusal(request, who, lang, page_capability(request.scope["route"].path), denied)
    if refused is not None:
        return refused
    assert who is not None  # refusal answers every caller who is None
    return who


class PageRefused(Exception):
    """A page's caller turned away before the page's work ran; ``PageRoute`` answers ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True)
class PageReading(Reading):
    """``Reading`` for a page that only reads: the cookie's session and the page's role decision (``refusal``)
    in the page's one reading session and one hop to the thread pool, as the API's routes read a token.

    ``secret`` is the cookie's key and ``capability`` the page's (``PAGES``); a refused caller is a
    ``PageRefused`` (the sign-in redirect, or the 403 page in ``lang``), never a JSON error."""

    lang: str

    def admit(self, session: Session) -> Principal:
        who = signed_in_as(self.request, session, self.secret)
        refused = refusal(self.request, who, self.lang, self.capability)
        if refused is not None:
            raise PageRefused(refused)
        assert who is not None  # refusal answers every caller who is None
        return who

    def speaking(self, lang: str) -> PageReading:
        """The same caller, refused (if at all) in ``lang``: for pages whose language defaults otherwise."""
        return replace(self, lang=lang)


async def _page_reading(request: Request, rt: RuntimeDep) -> PageReading:
    # The route's own ``lang`` parameter validates it; here it only picks the words of a refusal.
    lang = pick_lang(request.query_params.get("lang"))
    key = request.cookies.get(SESSION_COOKIE) or ""
    return PageReading(request, rt, key, page_capability(request.scope["route"].path), lang)


PageReader = Annotated[PageReading, Depends(_page_reading)]


def message(
    request: Request, lang: str, status: int, text: str, who: Principal | None = None, heading: str | None = None
) -> Response:
    """A page that says one thing (not found, not allowed, bad input) in the page's language."""
    t = TEXT[lang]
    title = heading or (t["not_found"] if status == 404 else t["not_allowed"] if status == 403 else t["cannot_show"])
    return page(request, "message.html", lang, status, who=who, heading=title, message=text)


def caller(request: Request, rt: Runtime, lang: str | None) -> tuple[str, Principal | Response]:
    """The page's language and who is calling (or the redirect / 403 page that ``guard`` answers)."""
    lang = pick_lang(lang)
    return lang, guard(request, rt, lang)


def form_caller(request: Request, rt: Runtime, lang: str | None, csrf: str) -> tuple[str, Principal | Response]:
    """``caller`` for a form that changes something: also the 403 page when the form is not ours."""
    lang, who = caller(request, rt, lang)
    if isinstance(who, Response):
        return lang, who
    return lang, csrf_refused(request, lang, who, csrf) or who


@dataclass(frozen=True)
class Span:
    """The report pages' filters as typed: ``from`` and ``to`` unparsed (each page reads them its own way), and
    the unit, an empty one meaning none."""

    from_: str | None
    to: str | None
    unit: str | None


def _span(
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: DateQuery = None,
    unit: UnitQuery = None,
) -> Span:
    return Span(from_, to, unit or None)


SpanQuery = Annotated[Span, Depends(_span)]


async def download(reader: PageReading, make: Callable[[Session, Principal], Response]) -> Response:
    """A page's download: the same caller check as the page, then ``make``'s file, or the page that says an
    approval is needed when a reviewer asks outside their units (never a half-written file)."""
    return await reader.run(_made, reader.request, reader.lang, make)


def _made(
    session: Session, who: Principal, request: Request, lang: str, make: Callable[[Session, Principal], Response]
) -> Response:
    try:
        return make(session, who)
    except ApprovalRequired as exc:
        return approval_page(request, lang, who, exc)


def approval_page(request: Request, lang: str, who: Principal, exc: ApprovalRequired) -> Response:
    """403 with the reason in the page's language, and the precise message underneath."""
    t = TEXT[lang]
    return page(
        request,
        "message.html",
        lang,
        403,
        who=who,
        message=t["approval_required"],
        heading=t["approval_heading"],
        detail=exc.message,
    )


def csrf_refused(request: Request, lang: str, who: Principal, csrf: str) -> Response | None:
    """The 403 page when a form is not ours (foreign origin, or no / a wrong CSRF token); None when it is."""
    web: SignedIn | None = request.state.signed_in
    if form_is_ours(request, csrf, web.csrf if web is not None else None):
        return None
    return message(request, lang, 403, TEXT[lang]["csrf_failed"], who=who)


def not_found(request: Request, lang: str, who: Principal, key: str, ident: object) -> Response:
    return message(request, lang, 404, TEXT[lang][key].format(id=ident), who=who)


def _bad_fields(exc: RequestValidationError, lang: str) -> str:
    names: list[str] = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body")]
        if loc and loc[-1] not in names:
            names.append(loc[-1])
    return ("、" if lang == "zh" else ", ").join(field_words(n, lang) for n in names) or "?"


def error_text(exc: Exception, lang: str) -> tuple[int, str]:
    """An error raised while answering a page, as its status and a sentence in the page's language.

    Chinese pages never show the English messages, which may name command-line flags (``--from``).
    """
    t = TEXT[lang]
    if isinstance(exc, RequestValidationError):
        return 422, t["bad_value"].format(fields=_bad_fields(exc, lang))
    assert isinstance(exc, BwcError)
    if lang == "en":
        return exc.status, exc.message.replace("--", "")
    key = {401: "sign_in_first", 403: "forbidden", 404: "not_found_generic"}.get(exc.status, "cannot_do")
    return exc.status, t["bad_input" if exc.code == "bad_input" else key]


def _with_page_headers(response: Response) -> Response:
    for name, value in PAGE_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", NO_STORE)
    return response


class PageRoute(APIRoute):
    """A web page route: security headers on every answer, and errors rendered as HTML pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except PageRefused as refused:
                response = refused.response
            except (RequestValidationError, BwcError) as exc:
                lang = pick_lang(request.query_params.get("lang"))
                status, text = error_text(exc, lang)
                if not hasattr(request.state, "signed_in"):  # refused before the page asked who is calling
                    who_is_calling(request, request.app.state.runtime)
                web: SignedIn | None = request.state.signed_in
                heading = None
                if isinstance(exc, BwcError) and exc.code == "approval_required":  # outside the reviewer's units
                    heading, text = TEXT[lang]["approval_heading"], TEXT[lang]["approval_required"]
                response = message(request, lang, status, text, who=web.principal if web else None, heading=heading)
            return _with_page_headers(response)

        return page_handler


__all__ = [
    "DateQuery",
    "LangQuery",
    "PageReader",
    "PageReading",
    "PageRefused",
    "PageRoute",
    "Span",
    "SpanQuery",
    "UnitQuery",
    "approval_page",
    "csrf_refused",
    "download",
    "error_text",
    "guard",
    "local_time",
    "message",
    "not_found",
    "page",
    "pick_lang",
    "refusal",
    "safe_next",
    "signed_in_as",
    "who_is_calling",
]
