"""The pages' side of unit scope (SPEC §15): a reviewer outside their units gets a page that says an approval
is needed, not a JSON error. The decisions themselves are ``audit.access``'s, the same as the API's."""

from __future__ import annotations

from fastapi import Request, Response

from api.auth import Principal
from api.i18n import TEXT
from api.routes.web_common import page
from audit.access import ApprovalRequired


def approval_page(request: Request, lang: str, who: Principal, exc: ApprovalRequired) -> Response:
    """403 with the reason in the page's language, and the precise message underneath."""
    return page(
        request,
        "message.html",
        lang,
        403,
        who=who,
        message=TEXT[lang]["approval_required"],
        heading=TEXT[lang]["approval_heading"],
        detail=exc.message,
    )
