"""The recordings page and the period report as people use them: filters typed into the form narrow the rows,
the pager walks through every row once, the auditor's report opens, downloads, jumps between spans and drills
down to a unit's actions. Both pages in English and Chinese, with axe-core and a screenshot."""

from __future__ import annotations

import io
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from api.demo import ACTIONS, CLIPS, Clip
from api.routes.web_period import presets
from tests.browser.conftest import Server, sign_in
from tests.browser.pages import check_page

LANG_ATTR = {"en": "en", "zh": "zh-CN"}
YESTERDAY_HOURS = 28  # api.demo: yesterday's scene began 28 hours before today's


def scenes(server: Server) -> dict[str, datetime]:
    """When the demo's scenes began (UTC, the demo's zone), as its first run wrote them down."""
    today = datetime.fromisoformat((server.home / "demo-card" / "scenes.txt").read_text(encoding="utf-8").strip())
    return {"today": today, "yesterday": today - timedelta(hours=YESTERDAY_HOURS)}


def clip_name(clip: Clip, at: dict[str, datetime]) -> str:
    """The file name the demo gave a clip (device, officer, its own clock's start, sequence)."""
    start = at[clip.scene] + timedelta(seconds=clip.start)
    return f"{clip.device}_{clip.officer}_{start:%Y%m%d%H%M%S}_{clip.sequence:04d}.mp4"


def names(page: Any) -> list[str]:
    """The file names in the recordings table, top to bottom (the third column)."""
    found: list[str] = page.eval_on_selector_all(
        "main table tbody tr", "rows => rows.map(r => r.cells[2].textContent.trim())"
    )
    return found


def filter_by(page: Any, **fields: str) -> None:
    """Fill the filter form as a person would and press its button."""
    for name, value in fields.items():
        if name == "status":
            page.select_option("form.filters select[name=status]", value)
        else:
            page.fill(f"form.filters input[name={name}]", value)
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")


def test_filters_narrow_the_recordings_a_reviewer_sees(reviewer: Any, server: Server) -> None:
    at = scenes(server)
    every = {clip_name(c, at) for c in CLIPS}
    reviewer.goto(f"{server.url}/recordings?lang=en")
    assert set(names(reviewer)) == every and len(every) == len(CLIPS)
    filter_by(reviewer, device="CAM-N01")
    assert set(names(reviewer)) == {clip_name(c, at) for c in CLIPS if c.device == "CAM-N01"}
    assert reviewer.input_value("input[name=device]") == "CAM-N01"  # the form shows what it filters by
    filter_by(reviewer, device="", officer="P2002")
    assert set(names(reviewer)) == {clip_name(c, at) for c in CLIPS if c.officer == "P2002"}
    filter_by(reviewer, officer="", status="unplayable")
    assert names(reviewer) == [clip_name(c, at) for c in CLIPS if not c.readable]
    filter_by(reviewer, status="", station="ST-DEMO")
    assert set(names(reviewer)) == every
    filter_by(reviewer, station="ST-ELSEWHERE")
    assert names(reviewer) == [] and "No recording matches these filters." in reviewer.inner_text("main")
    # one day: yesterday's patrol (each clip counts on the days it overlaps, by its own clock)
    day = at["yesterday"].date()
    lo = datetime(day.year, day.month, day.day, tzinfo=at["today"].tzinfo)
    hi = lo + timedelta(days=1)

    def on_that_day(c: Clip) -> bool:
        start = at[c.scene] + timedelta(seconds=c.start)
        return start < hi and start + timedelta(seconds=c.seconds) >= lo

    filter_by(reviewer, station="", **{"from": day.isoformat(), "to": day.isoformat()})
    wanted = {clip_name(c, at) for c in CLIPS if on_that_day(c)}
    assert wanted and set(names(reviewer)) == wanted
    filter_by(reviewer, device="CAM-N02")
    assert set(names(reviewer)) == {n for n in wanted if n.startswith("CAM-N02_")}


def test_the_pager_walks_through_every_recording_once(reviewer: Any, server: Server) -> None:
    at = scenes(server)
    reviewer.goto(f"{server.url}/recordings?per_page=4&lang=en")
    pages = [names(reviewer)]
    assert reviewer.locator("nav.pager a[rel=prev]").count() == 0
    while reviewer.locator("nav.pager a[rel=next]").count():
        with reviewer.expect_navigation():
            reviewer.click("nav.pager a[rel=next]")
        pages.append(names(reviewer))
    assert [len(p) for p in pages] == [4, 4, 3]
    seen = [n for p in pages for n in p]
    assert len(seen) == len(set(seen)) == len(CLIPS) and set(seen) == {clip_name(c, at) for c in CLIPS}
    assert "Page 3" in reviewer.inner_text("main")
    with reviewer.expect_navigation():
        reviewer.click("nav.pager a[rel=prev]")
    assert names(reviewer) == pages[1]
    # a filter typed on a small page keeps the size and pages through the filtered rows only
    filter_by(reviewer, device="CAM-N01")
    n01 = names(reviewer)
    with reviewer.expect_navigation():
        reviewer.click("nav.pager a[rel=next]")
    n01 += names(reviewer)
    assert "device=CAM-N01" in reviewer.url and "per_page=4" in reviewer.url
    assert sorted(n01) == sorted(clip_name(c, at) for c in CLIPS if c.device == "CAM-N01")


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_recordings_page_is_accessible_in_both_languages(
    reviewer: Any, server: Server, screenshots: Path, lang: str
) -> None:
    reviewer.goto(f"{server.url}/recordings?per_page=4&page=2&lang={lang}")
    assert reviewer.get_attribute("html", "lang") == LANG_ATTR[lang]
    assert len(names(reviewer)) == 4
    check_page(reviewer, screenshots, f"{lang}-recordings-page-2")
    filter_by(reviewer, status="unplayable")
    assert ("无法播放" if lang == "zh" else "unplayable") in reviewer.inner_text("main table tbody")
    check_page(reviewer, screenshots, f"{lang}-recordings-unplayable")


def demo_span(server: Server) -> tuple[date, date]:
    """A span holding both of the demo's scenes, with a day to spare either side."""
    at = scenes(server)
    return at["yesterday"].date() - timedelta(days=1), at["today"].date() + timedelta(days=1)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_period_report_is_accessible_in_both_languages(
    auditor: Any, server: Server, screenshots: Path, lang: str
) -> None:
    start, end = demo_span(server)
    response = auditor.goto(f"{server.url}/reports/period?from={start}&to={end}&lang={lang}")
    assert response is not None and response.status == 200
    assert auditor.get_attribute("html", "lang") == LANG_ATTR[lang]
    title = "执法记录仪使用情况书面报告" if lang == "zh" else "Periodic report on body-worn camera use"
    assert auditor.inner_text("main h1") == title
    units = auditor.locator("main a.drill").all_inner_texts()
    assert units == ["NORTH", "SOUTH"]
    # the per-unit table's seventeen columns fit a 1280-pixel window: nothing hidden to the right of its frame
    frame = auditor.locator("main div.scroll").first
    assert frame.evaluate("el => el.scrollWidth <= el.clientWidth"), "the per-unit table runs off the page"
    check_page(auditor, screenshots, f"{lang}-period-report")
    with auditor.expect_navigation():
        auditor.click("main a.drill:text-is('SOUTH')")
    check_page(auditor, screenshots, f"{lang}-period-report-SOUTH")


def test_period_report_downloads_hold_the_units(auditor: Any, server: Server) -> None:
    start, end = demo_span(server)
    auditor.goto(f"{server.url}/reports/period?from={start}&to={end}&lang=en")
    with auditor.expect_download() as xlsx_download:
        auditor.click("a[href^='/reports/period.xlsx']")
    book = load_workbook(io.BytesIO(Path(xlsx_download.value.path()).read_bytes()), read_only=True)
    cells = {str(v) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row if v}
    assert {"NORTH", "SOUTH"} <= cells
    with auditor.expect_download() as pdf_download:
        auditor.click("a[href^='/reports/period.pdf']")
    pdf = Path(pdf_download.value.path())
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "NORTH" in text and "SOUTH" in text


def shown_span(page: Any) -> tuple[str, str]:
    return page.input_value("form.filters input[name=from]"), page.input_value("form.filters input[name=to]")


@pytest.mark.parametrize("preset", ["week", "month", "half_year"])
def test_a_preset_link_changes_the_dates_shown(auditor: Any, server: Server, preset: str) -> None:
    start, end = demo_span(server)
    auditor.goto(f"{server.url}/reports/period?from={start}&to={end}&lang=en")
    assert shown_span(auditor) == (str(start), str(end))
    before = datetime.now(UTC).date()
    with auditor.expect_navigation():
        auditor.click(f"a.preset[data-preset={preset}]")
    # the server's today, in its zone (UTC for the demo); either side of a midnight passing during the click
    wanted = {tuple(map(str, presets(day)[preset])) for day in (before, datetime.now(UTC).date())}
    assert shown_span(auditor) in wanted
    first, last = shown_span(auditor)
    assert f"{first} – {last}" in auditor.inner_text("main")


def test_a_unit_name_drills_down_to_its_actions(auditor: Any, server: Server) -> None:
    start, end = demo_span(server)
    auditor.goto(f"{server.url}/reports/period?from={start}&to={end}&lang=en")
    assert auditor.locator("#actions ~ div table").count() == 0  # no unit chosen: no list
    with auditor.expect_navigation():
        auditor.click("main a.drill:text-is('NORTH')")
    assert "unit=NORTH" in auditor.url
    listed = auditor.eval_on_selector_all(
        "#actions + div table tbody tr", "rows => rows.map(r => r.cells[0].textContent.trim())"
    )
    assert sorted(listed) == sorted(a.action_id for a in ACTIONS if a.unit == "NORTH")
    with auditor.expect_navigation():
        auditor.click("#actions + div table a:text-is('DEMO-02')")
    assert "/actions/DEMO-02" in auditor.url and "CAM-N03" in auditor.inner_text("main")


@pytest.mark.parametrize(("lang", "locale"), [("en", "en-US"), ("zh", "zh-CN"), ("en", "de-DE")])
def test_dates_are_typed_and_shown_as_iso_whatever_the_browser_locale(
    browser: Any, server: Server, screenshots: Path, lang: str, locale: str
) -> None:
    """A browser set to another locale (month first, day first) still shows and takes YYYY-MM-DD, keystroke by
    keystroke, and refuses another shape with the page's own hint before the server sees it."""
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        sign_in(page, server, server.auditor, lang)
        start, end = demo_span(server)
        page.goto(f"{server.url}/reports/period?from={start}&to={end}&lang={lang}")
        assert shown_span(page) == (str(start), str(end))
        check_page(page, screenshots, f"{lang}-{locale}-period-dates")
        field = "form.filters input[name=from]"
        page.fill(field, "")
        page.click(field)
        page.keyboard.type(f"{start + timedelta(days=1)}")  # as a person types it, not set by script
        assert page.input_value(field) == str(start + timedelta(days=1))
        with page.expect_navigation():
            page.click("form.filters button[type=submit]")
        assert f"from={start + timedelta(days=1)}" in page.url
        assert shown_span(page) == (str(start + timedelta(days=1)), str(end))
        page.fill(field, f"{start:%d.%m.%Y}")
        assert page.eval_on_selector(field, "e => e.validity.patternMismatch") is True
        assert page.eval_on_selector("form.filters", "f => f.checkValidity()") is False  # no submission
        hint = "日期格式为 YYYY-MM-DD，例如 2024-05-01" if lang == "zh" else "A date as YYYY-MM-DD, e.g. 2024-05-01"
        assert page.get_attribute(field, "title") == hint  # what Chromium's refusal bubble adds to its own words
        assert page.get_attribute(field, "placeholder") == "YYYY-MM-DD"
    finally:
        context.close()
