"""The rough edges as a person meets them: a recording's own audit trail (one viewing, one event, naming the
viewer, in words in both languages), the case's export button, an auditor on a play link, sign-in from a deep
link, the language kept across sign-out, and errors as HTML pages in the page's language."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest

from audit.labels import EVENTS
from tests.browser.conftest import Server, sign_in
from tests.browser.pages import check_page

LANG_ATTR = {"en": "en", "zh-CN": "zh-CN", "zh": "zh-CN"}
LATIN = re.compile(r"[A-Za-z]")


def play_url(page: Any, server: Server, action: str, device: str) -> str:
    """The play link of ``device``'s recording on an action's page (as a reviewer sees it)."""
    page.goto(f"{server.url}/actions/{action}?lang=en")
    url: str = page.eval_on_selector_all(
        "table tbody tr",
        """(rows, device) => rows.filter(r => r.cells[1] && r.cells[1].textContent.trim() === device)
            .map(r => r.querySelector("a[href*='/play']")).filter(a => a)[0].href""",
        device,
    )
    return url


def trail(page: Any) -> list[dict[str, str]]:
    """The play page's audit trail, row by row: who, the event as shown, and its kind's code."""
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "table.trail tbody tr",
        """rows => rows.map(r => ({actor: r.cells[1].textContent.trim(), event: r.cells[2].textContent.trim(),
            kind: r.cells[2].dataset.kind}))""",
    )
    return rows


def wait_for_metadata(page: Any) -> None:
    page.wait_for_function(
        "() => { const v = document.querySelector('.player video'); return v && v.readyState >= 1; }"
    )


def test_the_play_page_shows_one_viewing_one_event_naming_the_viewer(
    reviewer: Any, server: Server, screenshots: Path
) -> None:
    url = play_url(reviewer, server, "DEMO-01", "CAM-N02")
    reviewer.goto(url)
    first = trail(reviewer)
    # rendered before this page's own video asked for a byte: taken in by the demo, viewed by nobody yet
    assert [e["kind"] for e in first] == ["recording.ingested"] and first[0]["event"] == "recording taken in"
    wait_for_metadata(reviewer)
    # seeking asks for more byte ranges of the same viewing: still one event
    video = reviewer.locator(".player video")
    video.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true}); v.currentTime = 40; })"
    )
    reviewer.reload()
    viewed = [e for e in trail(reviewer) if e["kind"] == "evidence.read"]
    assert len(viewed) == 1, trail(reviewer)
    assert viewed[0]["event"].startswith("evidence viewed") and viewed[0]["actor"].startswith("token:demo-reviewer-")
    wait_for_metadata(reviewer)  # the reload is a second viewing
    reviewer.goto(url.replace("lang=en", "lang=zh"))
    rows = trail(reviewer)
    assert [e["kind"] for e in rows].count("evidence.read") == 2
    # no English on the Chinese trail: every event in Chinese words, no kind code or English name shown
    for row in rows:
        assert not LATIN.search(row["event"]), row
    text = reviewer.inner_text("table.trail")
    for kind, words in EVENTS["en"].items():
        assert kind not in text and words not in text, kind
    assert "查看证据" in text and "录像入库" in text
    check_page(reviewer, screenshots, "zh-play-audit-trail")


def test_the_case_export_button_downloads_the_bag(reviewer: Any, server: Server) -> None:
    reviewer.goto(f"{server.url}/cases/CASE-DEMO-001?lang=en")
    rows = reviewer.eval_on_selector_all(
        "table.case-recordings tbody tr", "rows => rows.map(r => [r.cells[0].textContent, r.cells[4].textContent])"
    )
    files = {f"{rid.strip()}-{name.strip()}" for rid, name in rows}  # the bag names each by id and file name
    assert len(files) == 2
    with reviewer.expect_download() as download:
        reviewer.click("a.export")
    with zipfile.ZipFile(download.value.path()) as bag:
        names = bag.namelist()
        assert any(n.endswith("bagit.txt") for n in names) and any(n.endswith("VERIFY.txt") for n in names)
        assert {n.split("/data/recordings/", 1)[-1] for n in names} >= files  # both recordings travel along
        case_json = next(n for n in names if n.endswith("case.json"))
        assert "DEMO-01" in bag.read(case_json).decode()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_auditor_on_a_play_link_is_told_their_role_may_not_play(
    auditor: Any, server: Server, screenshots: Path, lang: str
) -> None:
    auditor.goto(f"{server.url}/recordings?lang={lang}")
    assert auditor.locator("main a[href*='/play']").count() == 0  # no play link is offered to an auditor
    first_id = auditor.locator("main table tbody tr td").first.inner_text().strip()
    response = auditor.goto(f"{server.url}/recordings/{first_id}/play?lang={lang}")
    assert response is not None and response.status == 403
    assert auditor.get_attribute("html", "lang") == LANG_ATTR[lang]
    said = auditor.inner_text("main")
    assert ("您的角色无权播放证据录像" if lang == "zh" else "Your role may not play evidence") in said
    assert auditor.locator("input[name=token]").count() == 0  # not the sign-in form: they are signed in
    assert auditor.locator("video").count() == 0
    assert ("审计员" if lang == "zh" else "auditor") in auditor.inner_text("header .who")
    check_page(auditor, screenshots, f"{lang}-auditor-may-not-play")


def test_signing_in_from_a_deep_link_returns_to_it(anonymous: Any, server: Server) -> None:
    anonymous.goto(f"{server.url}/cases/CASE-DEMO-002?lang=zh")
    assert "/login?" in anonymous.url and anonymous.get_attribute("html", "lang") == "zh-CN"
    anonymous.fill("input[name=token]", server.token)
    with anonymous.expect_navigation():
        anonymous.press("input[name=token]", "Enter")
    assert anonymous.url == f"{server.url}/cases/CASE-DEMO-002?lang=zh"
    assert anonymous.get_attribute("html", "lang") == "zh-CN" and "CASE-DEMO-002" in anonymous.inner_text("h1")


def test_the_language_choice_survives_sign_out(anonymous: Any, server: Server) -> None:
    sign_in(anonymous, server, server.token, lang="en")
    anonymous.click("header.top a[hreflang]")  # to Chinese
    assert anonymous.get_attribute("html", "lang") == "zh-CN"
    with anonymous.expect_navigation():
        anonymous.click("header.top form[action='/logout'] button")
    assert anonymous.get_attribute("html", "lang") == "zh-CN"
    assert anonymous.inner_text("main h1") == "登录" and anonymous.locator("input[name=token]").is_visible()
    # signing in again from that form stays in Chinese
    anonymous.fill("input[name=token]", server.token)
    with anonymous.expect_navigation():
        anonymous.press("input[name=token]", "Enter")
    assert anonymous.get_attribute("html", "lang") == "zh-CN" and "当前用户" in anonymous.inner_text("header")


BAD_ADDRESSES = {
    "bad id": (
        "/recordings/not-a-number/play",
        422,
        {"en": "cannot use (recording_id)", "zh": "无法使用的值（录像编号）"},
    ),
    "bad date": ("/recordings?from=2024-02-30", 422, {"en": "A date is not valid", "zh": "日期无效"}),
    "too long a query": ("/cases?q=" + "9" * 300, 422, {"en": "cannot use (q)", "zh": "无法使用的值（查询内容）"}),
    "unknown action": (
        "/actions/NO-SUCH-ACTION",
        404,
        {"en": "There is no action NO-SUCH-ACTION", "zh": "不存在执法行动"},
    ),
}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("case", sorted(BAD_ADDRESSES))
def test_an_error_is_a_page_in_the_pages_language(
    reviewer: Any, server: Server, screenshots: Path, lang: str, case: str
) -> None:
    path, status, words = BAD_ADDRESSES[case]
    sep = "&" if "?" in path else "?"
    response = reviewer.goto(f"{server.url}{path}{sep}lang={lang}")
    assert response is not None and response.status == status
    assert response.headers["content-type"].startswith("text/html")
    assert reviewer.get_attribute("html", "lang") == LANG_ATTR[lang]
    said = reviewer.inner_text("main .error")
    assert words[lang] in said and "--" not in said and "{" not in said
    assert reviewer.locator("header .who").count() == 1  # still signed in, with the pages' own header
    check_page(reviewer, screenshots, f"{lang}-error-{case}")


def test_a_chinese_period_report_refuses_a_bad_date_in_chinese(auditor: Any, server: Server) -> None:
    response = auditor.goto(f"{server.url}/reports/period?from=2024-13-01&to=2024-12-31&lang=zh")
    assert response is not None and response.status == 400
    said = auditor.inner_text("main .error")
    assert "日期无效" in said and "not a date" not in said and "--" not in said
