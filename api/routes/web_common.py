"""What every web page shares: templates and their filters, the cookie login guard, page rendering."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.templating import Jinja2Templates

from api.auth import Principal
from api.deps import TOKEN_COOKIE, resolve_principal
from api.i18n import TEXT, pick_lang, reason_words, verdict_words
from api.permissions import RULES, allowed, page_capability
from storage.runtime import Runtime

# Who may sign in to the pages, and who may play evidence: read from the one permission table.
PAGE_ROLES = RULES["pages.browse"].roles | {"admin"}
PLAY_ROLES = RULES["recordings.content"].roles | {"admin"}

LangQuery = Annotated[str | None, Query(max_length=8)]

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
        "can_browse": who is not None and allowed(who.role, "pages.browse"),
        "can_play": who is not None and allowed(who.role, "recordings.content"),
    }
    return templates.TemplateResponse(request, name, {**helpers, **context}, status_code=status)


def guard(request: Request, rt: Runtime, lang: str) -> Principal | Response:
    """The cookie's principal when its role may see the page; else a redirect to sign in, or a 403 page.

    Which roles may see a page is decided by ``api.permissions`` (``PAGES``, by the route's path)."""
    who = resolve_principal(rt, request.cookies.get(TOKEN_COOKIE))
    if who is None:
        return RedirectResponse(f"/login?lang={lang}", status_code=303)
    if not allowed(who.role, page_capability(request.scope["route"].path)):
        return page(request, "login.html", lang, 403, who=who, message=TEXT[lang]["forbidden"])
    return who


def not_found(request: Request, lang: str, who: Principal, key: str, ident: object) -> Response:
    return page(request, "message.html", lang, 404, who=who, message=TEXT[lang][key].format(id=ident))


__all__ = ["PAGE_ROLES", "PLAY_ROLES", "LangQuery", "guard", "local_time", "not_found", "page", "pick_lang"]
