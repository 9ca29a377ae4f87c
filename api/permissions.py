"""The one permission table (SPEC §8, §15): who may use each capability, and whether unit scope applies.

Both the API's dependency (``api.deps.require``) and the web pages' guard (``api.routes.web_common.guard``)
decide through ``decide`` below, so a page and its API twin can never disagree. Every route names one
capability: API routes through ``require(capability)``, pages through ``PAGES`` (keyed by the route's path).
``tests/api/test_auth.py`` walks the route table and proves that no route goes without one.

``scoped`` means that a reviewer sees only the evidence of their token's units plus the cases they were
granted (``audit.access``); admin and auditor tokens see everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import Principal
from audit.access import UNSCOPED_ROLES
from config.errors import Forbidden

ADMIN = "admin"
__all__ = ["PAGES", "RULES", "UNSCOPED_ROLES", "Rule", "allowed", "decide", "page_capability", "rule"]


@dataclass(frozen=True)
class Rule:
    """Roles admitted besides admin, and whether a reviewer's unit scope filters what they get."""

    roles: frozenset[str]
    scoped: bool = False

    def admits(self, role: str) -> bool:
        return role == ADMIN or role in self.roles


def _rule(*roles: str, scoped: bool = False) -> Rule:
    return Rule(frozenset(roles), scoped)


RULES: dict[str, Rule] = {
    # evidence: scoped for reviewers
    "recordings.read": _rule("reviewer", "auditor", scoped=True),
    "recordings.content": _rule("reviewer", scoped=True),
    "actions.read": _rule("reviewer", "auditor", scoped=True),
    "actions.link": _rule("reviewer", scoped=True),
    "cases.read": _rule("reviewer", "auditor", scoped=True),
    "cases.export": _rule("reviewer", scoped=True),
    # the missing report: auditors see every unit, a reviewer their own units' rows (web and API alike)
    "reports.missing": _rule("reviewer", "auditor", scoped=True),
    # the rectification ledger (SPEC §13): auditors change findings, a reviewer reads their units' findings
    "findings.read": _rule("reviewer", "auditor", scoped=True),
    "findings.write": _rule("auditor"),
    # the periodic written report (SPEC §14), for the auditors who write it
    "reports.period": _rule("auditor"),
    # operations and the audit log
    "ingest.upload": _rule("station"),
    "ingest.failures": _rule("auditor"),
    "audit.read": _rule("auditor"),
    "metrics.read": _rule("auditor"),
    # administration
    "actions.write": _rule(),
    "cases.hold": _rule(),
    "access.admin": _rule(),
    "admin.pages": _rule(),  # devices, officers, assignments and tokens on the web
    # the pages' landing page: every person's role may sign in and see it
    "pages.browse": _rule("reviewer", "auditor", scoped=True),
}

# Web pages by route path (as FastAPI spells it) -> capability. The guard looks the page up here.
PAGES: dict[str, str] = {
    "/": "pages.browse",
    "/recordings/{recording_id}/play": "recordings.content",
    "/recordings/{recording_id}/content": "recordings.content",
    "/cases": "cases.read",
    "/cases/{case_number:path}": "cases.read",
    "/actions/{action_id:path}": "actions.read",
    "/exports/{case_number:path}": "cases.export",
    "/reports/missing": "reports.missing",
    "/reports/missing.{fmt}": "reports.missing",
    "/recordings": "recordings.read",
    "/admin": "admin.pages",
    "/admin/{section}": "admin.pages",
    "/admin/devices": "admin.pages",
    "/admin/officers": "admin.pages",
    "/admin/assignments": "admin.pages",
    "/admin/{section}/import": "admin.pages",
    "/admin/tokens": "admin.pages",
    "/admin/tokens/{token_id}/revoke": "admin.pages",
    # the access grants page (SPEC §15): the same capability as /api/v1/access/grants
    "/admin/access": "access.admin",
    "/admin/access/{grant_id}/revoke": "access.admin",
    "/reports/period": "reports.period",
    "/reports/period.{fmt}": "reports.period",
    "/findings": "findings.read",
    "/findings.{fmt}": "findings.read",
    "/findings/{finding_id}": "findings.read",
    "/findings/new": "findings.write",
    "/findings/{finding_id}/notes": "findings.write",
    "/findings/{finding_id}/close": "findings.write",
    "/findings/{finding_id}/waive": "findings.write",
}


def rule(capability: str) -> Rule:
    """The rule of a capability; an unknown name is a programming error, caught at import or in tests."""
    try:
        return RULES[capability]
    except KeyError:
        raise KeyError(f"capability {capability!r} is not in api.permissions.RULES") from None


def allowed(role: str, capability: str) -> bool:
    return rule(capability).admits(role)


def decide(principal: Principal, capability: str) -> Rule:
    """Admit ``principal`` to ``capability`` or raise 403; the rule tells the caller whether scope applies."""
    found = rule(capability)
    if not found.admits(principal.role):
        needs = " or ".join(sorted(found.roles | {ADMIN}))
        raise Forbidden(f"role {principal.role!r} may not use {capability}; needs {needs}")
    return found


def page_capability(path: str) -> str:
    """The capability of a page by its route path; a page missing from ``PAGES`` is refused to everyone."""
    try:
        return PAGES[path]
    except KeyError:
        raise KeyError(f"page {path!r} is not in api.permissions.PAGES") from None
