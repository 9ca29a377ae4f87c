"""The two long lists an auditor and an administrator page through, in Chromium: the findings ledger and the
access grants, each with more rows than a page holds, walked forward and back in both languages (no serious
accessibility violation, a screenshot of each second page), and a finding's owner field as the note form
offers it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from api.auth import create_token
from api.routes import web_access, web_findings
from audit.access import grant_access
from audit.findings import open_by_hand
from config.settings import Settings
from storage.basics import utcnow
from storage.db import transaction
from storage.runtime import build_runtime
from tests.browser.conftest import Server
from tests.browser.pages import check_page

LANG_ATTR = {"en": "en", "zh": "zh-CN"}
PAGE_WORDS = {"en": ("← Previous page", "Next page →"), "zh": ("← 上一页", "下一页 →")}


@dataclass(frozen=True)
class Crowd:
    findings: int  # opened here; the demo's own findings come on top
    grants: int
    owned: int  # a finding with an owner named


@pytest.fixture(scope="module")
def crowd(server: Server) -> Crowd:
    """More findings and grants than a page holds, written in the server's own database before it is asked."""
    home = server.home
    settings = Settings(home=home, database_url=SecretStr(f"sqlite:///{home / 'bwc.db'}"))
    rt = build_runtime(settings)
    findings, grants = web_findings.PAGE_SIZE + 5, web_access.PAGE_SIZE + 3
    try:
        with transaction(rt.sessions) as s:
            now, days = utcnow(), settings.finding_due_days
            create_token(s, role="reviewer", name="pager-reviewer", units=["NORTH"])
            owned = 0
            for i in range(findings):
                subject = "action:DEMO-01" if i % 2 else "action:DEMO-02"
                owner = "王中队长" if i == 0 else None
                f = open_by_hand(s, subject, f"c{i:02d}", f"note {i}", "test", now - timedelta(hours=i), days, owner)
                owned = owned or f.id
            for i in range(grants):
                grant_access(
                    s,
                    holder="pager-reviewer",
                    case_number="CASE-DEMO-003",
                    approver="南区所长",
                    reason=f"联合审查 {i}",
                    hours=2,
                    actor="test",
                    now=now,
                )
        return Crowd(findings, grants, owned)
    finally:
        rt.close()


def _walk(page: Any, lang: str, rows: str) -> tuple[list[str], list[str]]:
    """The first column of the ``rows`` on page one and, after the pager's next link, on page two."""
    prev_words, next_words = PAGE_WORDS[lang]
    assert page.locator("nav.pager a[rel=prev]").count() == 0
    assert page.inner_text("nav.pager a[rel=next]") == next_words
    one = page.eval_on_selector_all(rows, "found => found.map(r => r.cells[0].textContent.trim())")
    with page.expect_navigation():
        page.click("nav.pager a[rel=next]")
    assert page.inner_text("nav.pager a[rel=prev]") == prev_words
    two = page.eval_on_selector_all(rows, "found => found.map(r => r.cells[0].textContent.trim())")
    return one, two


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_ledger_pages_through_every_finding_once(
    auditor: Any, server: Server, crowd: Crowd, screenshots: Path, lang: str
) -> None:
    auditor.goto(f"{server.url}/findings?lang={lang}")
    assert auditor.get_attribute("html", "lang") == LANG_ATTR[lang]
    intro = {"en": "crossed off in time. Times in UTC.", "zh": "以及是否按期销号。时区：协调世界时（UTC）。"}
    assert auditor.inner_text("main h1 + p.muted").endswith(intro[lang])  # each language's own full stop
    one, two = _walk(auditor, lang, "table.findings tbody tr")
    assert len(one) == web_findings.PAGE_SIZE and len(two) >= crowd.findings - web_findings.PAGE_SIZE
    assert not set(one) & set(two)
    assert f"lang={lang}" in auditor.url  # the pager keeps the page's language
    check_page(auditor, screenshots, f"{lang}-findings-page-2")
    with auditor.expect_navigation():
        auditor.click("nav.pager a[rel=prev]")
    assert auditor.eval_on_selector_all("table.findings tbody tr", "found => found.length") == len(one)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_grants_page_through_every_grant_once(
    admin: Any, server: Server, crowd: Crowd, screenshots: Path, lang: str
) -> None:
    admin.goto(f"{server.url}/admin/access?lang={lang}")
    one, two = _walk(admin, lang, "table.admin-access tbody tr")
    assert len(one) == web_access.PAGE_SIZE and len(two) >= crowd.grants - web_access.PAGE_SIZE
    assert not set(one) & set(two)
    assert admin.get_attribute("html", "lang") == LANG_ATTR[lang]  # the pager keeps the page's language
    check_page(admin, screenshots, f"{lang}-admin-access-page-2")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_owner_field_offers_the_owner_named(
    auditor: Any, server: Server, crowd: Crowd, screenshots: Path, lang: str
) -> None:
    auditor.goto(f"{server.url}/findings/{crowd.owned}?lang={lang}")
    assert auditor.input_value("#note-owner") == "王中队长"
    opened = auditor.locator("dl.facts dd").nth(7).inner_text()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", opened), opened  # its zone is said once, above
    zone = "时区 协调世界时（UTC）" if lang == "zh" else "Times in UTC"
    assert auditor.locator("main p.muted").first.inner_text() == zone
    check_page(auditor, screenshots, f"{lang}-finding-owner")
