"""The findings ledger in Chromium (SPEC §13): the ledger and a finding's page in both languages with no serious
accessibility violation, an overdue finding said in words, and an auditor crossing a finding off by the form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from audit.findings import open_by_hand
from config.settings import Settings
from storage.basics import utcnow
from storage.db import transaction
from storage.runtime import build_runtime
from tests.browser.conftest import Server
from tests.browser.pages import check_page

LANG_ATTR = {"en": "en", "zh": "zh-CN"}
OVERDUE = {"en": "OVERDUE since", "zh": "已超期"}


@dataclass(frozen=True)
class Opened:
    overdue: int  # opened 40 days ago: past its 15-day deadline
    fresh: int  # opened now, for the auditor to close


@pytest.fixture(scope="module")
def opened(server: Server) -> Opened:
    """Two findings by hand in the server's own database, one of them opened in the past (no sleeping)."""
    home = server.home
    settings = Settings(home=home, database_url=SecretStr(f"sqlite:///{home / 'bwc.db'}"))
    rt = build_runtime(settings)
    try:
        with transaction(rt.sessions) as s:
            now, days = utcnow(), settings.finding_due_days
            old = open_by_hand(s, "action:DEMO-01", "uniform", "no cap worn", "test", now - timedelta(days=40), days)
            new = open_by_hand(s, "action:DEMO-02", "language", "rude words at 00:42", "test", now, days)
            return Opened(old.id, new.id)
    finally:
        rt.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_ledger_and_finding_pages_in_both_languages(
    auditor: Any, server: Server, opened: Opened, screenshots: Path, lang: str
) -> None:
    response = auditor.goto(f"{server.url}/findings?lang={lang}")
    assert response is not None and response.status == 200
    assert auditor.get_attribute("html", "lang") == LANG_ATTR[lang]
    row = auditor.locator("table.findings tr", has=auditor.locator(f"a[href^='/findings/{opened.overdue}?']"))
    assert OVERDUE[lang] in row.inner_text()  # in words, not only in colour
    assert auditor.locator("table.tallies tr.total").is_visible()
    check_page(auditor, screenshots, f"{lang}-findings")
    auditor.click(f"a[href^='/findings/{opened.overdue}?']")
    assert auditor.get_attribute("html", "lang") == LANG_ATTR[lang]
    text = auditor.inner_text("main")
    assert OVERDUE[lang] in text and "no cap worn" in text
    assert auditor.locator("a[href^='/actions/DEMO-01']").count() == 1  # the subject, linked
    check_page(auditor, screenshots, f"{lang}-finding-{opened.overdue}")


def test_a_reviewer_reads_the_ledger_from_the_nav(reviewer: Any, server: Server, opened: Opened) -> None:
    reviewer.goto(f"{server.url}/?lang=en")
    assert reviewer.locator("header.top a[href^='/reports/period']").count() == 0  # auditors' report
    reviewer.click("header.top a[href^='/findings']")
    assert reviewer.locator(f"a[href^='/findings/{opened.fresh}?']").count() == 1
    assert reviewer.locator("form[action^='/findings/new']").count() == 0  # reviewers read, auditors change


def test_an_auditor_closes_a_finding_and_sees_it_closed(auditor: Any, server: Server, opened: Opened) -> None:
    auditor.goto(f"{server.url}/findings/{opened.fresh}?lang=en")
    assert auditor.locator("header.top a[href^='/reports/period']").count() == 1
    auditor.fill("#close-text", "")
    with auditor.expect_navigation():
        auditor.click("form[action*='/close'] button")
    assert "Write a note first." in auditor.inner_text("main")  # refused in words, nothing changed
    auditor.fill("#close-text", "Spoken to; retrained on 2026-12-01")
    with auditor.expect_navigation():
        auditor.click("form[action*='/close'] button")
    main = auditor.inner_text("main")
    assert "The finding was closed." in main and auditor.inner_text("strong.status") == "closed"
    last = auditor.locator("table.history tbody tr").last.inner_text()
    assert "closed by hand" in last and "Spoken to; retrained" in last and "browser-auditor" in last
    assert auditor.locator("form[action*='/close']").count() == 0


def test_an_auditor_names_the_owner_with_a_note(auditor: Any, server: Server, opened: Opened) -> None:
    auditor.goto(f"{server.url}/findings/{opened.overdue}?lang=zh")
    auditor.fill("#note-text", "交给城南中队整改")
    auditor.fill("#note-owner", "王中队长")
    with auditor.expect_navigation():
        auditor.click("form[aria-labelledby='h-note'] button")
    assert "王中队长" in auditor.inner_text("dl.facts")  # the page shows who owns it now
    assert auditor.input_value("#note-owner") == "王中队长"  # and offers it again, unchanged if left
    assert "交给城南中队整改" in auditor.locator("table.history tbody tr").last.inner_text()
