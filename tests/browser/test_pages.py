"""Every page, in English and in Chinese, as a signed-in reviewer sees it: no serious accessibility violation,
the right ``lang``, a screenshot of each; and the report's downloads."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import BOTH_DATABASES, Server, sign_in
from tests.browser.pages import check_page

ACTIONS = ("DEMO-01", "DEMO-02", "DEMO-03", "DEMO-04", "DEMO-05")
LANG_ATTR = {"en": "en", "zh": "zh-CN"}


def play_links(page: Any, server: Server, action: str) -> list[str]:
    page.goto(f"{server.url}/actions/{action}?lang=en")
    hrefs: list[str] = page.eval_on_selector_all("table a[href*='/play']", "els => els.map(e => e.href)")
    return hrefs


@pytest.mark.parametrize("server", BOTH_DATABASES, indirect=True)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_page_is_accessible_in_both_languages(
    reviewer: Any, server: Server, screenshots: Path, lang: str
) -> None:
    paths = [
        "/",
        "/cases",
        "/cases?q=demo-0",
        "/cases/CASE-DEMO-002",
        *(f"/actions/{a}" for a in ACTIONS),
        "/reports/missing",
        "/recordings",
    ]
    plays = play_links(reviewer, server, "DEMO-02")[:1] + play_links(reviewer, server, "DEMO-04")
    assert len(plays) == 2, plays
    for path in paths:
        sep = "&" if "?" in path else "?"
        response = reviewer.goto(f"{server.url}{path}{sep}lang={lang}")
        assert response is not None and response.status == 200, path
        assert reviewer.get_attribute("html", "lang") == LANG_ATTR[lang]
        check_page(reviewer, screenshots, f"{lang}{path}" if path != "/" else f"{lang}-recordings")
    for url in plays:
        reviewer.goto(url.replace("lang=en", f"lang={lang}"))
        assert reviewer.get_attribute("html", "lang") == LANG_ATTR[lang]
        check_page(reviewer, screenshots, f"{lang}-play-{url.rsplit('/recordings/', 1)[1].split('/')[0]}")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_sign_in_page_is_accessible(anonymous: Any, server: Server, screenshots: Path, lang: str) -> None:
    anonymous.goto(f"{server.url}/login?lang={lang}")
    assert anonymous.get_attribute("html", "lang") == LANG_ATTR[lang]
    check_page(anonymous, screenshots, f"{lang}-login")


def test_a_wrong_token_is_refused_on_the_form(anonymous: Any, server: Server) -> None:
    sign_in(anonymous, server, "bwc_not-a-real-token")
    assert anonymous.locator(".error").first.is_visible()
    assert anonymous.get_attribute("html", "lang") == "en"
    assert anonymous.locator("input[name=token]").is_visible() and anonymous.locator("nav .who").count() == 0


def test_the_language_link_switches_every_word(reviewer: Any, server: Server) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-02?lang=en")
    assert "What is missing, and why" in reviewer.inner_text("main")
    reviewer.click("header.top a[hreflang]")
    assert reviewer.get_attribute("html", "lang") == "zh-CN"
    text = reviewer.inner_text("main")
    assert "缺失内容及原因" in text and "缺少 CAM-N03" in text and "What is missing" not in text
    # the links on the Chinese page keep the language
    reviewer.click("a[href^='/cases/CASE-DEMO-002']")
    assert reviewer.get_attribute("html", "lang") == "zh-CN"


def test_report_downloads_csv_and_xlsx(reviewer: Any, server: Server) -> None:
    reviewer.goto(f"{server.url}/reports/missing?lang=en")
    lacking = reviewer.inner_text("main")
    assert "DEMO-02" in lacking and "DEMO-04" in lacking and "DEMO-01" not in lacking.split("Late uploads")[0]
    with reviewer.expect_download() as csv_download:
        reviewer.click("a[href*='/reports/missing.csv']")
    text = Path(csv_download.value.path()).read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    ids = {cell for row in rows for cell in row}
    assert {"DEMO-02", "DEMO-03", "DEMO-04"} <= ids and "DEMO-01" not in ids
    with reviewer.expect_download() as xlsx_download:
        reviewer.click("a[href*='/reports/missing.xlsx']")
    data = Path(xlsx_download.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        sheets = " ".join(book.read(n).decode() for n in book.namelist() if n.startswith("xl/"))
    assert "DEMO-04" in sheets
