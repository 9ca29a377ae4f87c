"""Where a page request comes from: its origin (for CSRF), its client address (for throttling), and whether
it reached us over TLS (for ``Secure`` cookies) — believing forwarded headers only from trusted proxies.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import Request

from api.web_sessions import same_secret
from config.settings import Settings


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _from_trusted_proxy(request: Request) -> bool:
    peer = request.client.host if request.client else None
    return peer is not None and peer in _settings(request).trusted_proxies


def scheme(request: Request) -> str:
    """``https`` when the browser's connection is TLS: ours, or a trusted proxy's (X-Forwarded-Proto)."""
    if _from_trusted_proxy(request):
        forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return request.url.scheme


def cookie_is_secure(request: Request) -> bool:
    """Cookies are ``Secure`` when the public address is https or the request came over TLS."""
    public = _settings(request).public_url
    return (public is not None and public.startswith("https://")) or scheme(request) == "https"


def client_address(request: Request) -> str:
    """The browser's address: the peer, or the last hop a trusted proxy appended to X-Forwarded-For."""
    peer = request.client.host if request.client else "unknown"
    if _from_trusted_proxy(request):
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
        if hops:
            return hops[-1][:64]
    return peer[:64]


def expected_origin(request: Request) -> str:
    public = _settings(request).public_url
    if public:
        parts = urlsplit(public)
        return f"{parts.scheme}://{parts.netloc}".lower()
    host = request.headers.get("host", request.url.netloc)
    return f"{scheme(request)}://{host}".lower()


def origin_is_ours(request: Request) -> bool:
    """A state-changing form must come from our own pages: a foreign Origin (or fetch site) is refused.

    Browsers send ``Origin`` on every POST; a request without one (a script, an old browser) still needs
    the CSRF token, which only our pages know.
    """
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin.lower() == expected_origin(request)


def form_is_ours(request: Request, given: str | None, expected: str | None) -> bool:
    """Origin check plus the CSRF token: both must hold."""
    return origin_is_ours(request) and same_secret(given, expected)
