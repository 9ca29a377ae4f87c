"""The action timeline as a person sees it: a lane per required device, shortfalls shaded where they are and
labelled, reasons in words, and a click on a bar opening the player at that moment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.demo import ACTIONS, CLIPS
from api.routes.web_timeline import CONTEXT_SHARE, LABEL_WIDTH, PLOT_RIGHT, WIDTH
from tests.browser.conftest import BOTH_DATABASES, Server
from tests.browser.pages import shoot

PX = 1.5  # a box may be off by rounding and the stroke, never by a second of the scale


def action_seconds(action_id: str) -> float:
    [action] = [a for a in ACTIONS if a.action_id == action_id]
    return action.seconds


def expected_left(page_box: dict[str, float], share: float) -> float:
    """Where a moment ``share`` of the way across the view falls on the page, from the SVG's own box."""
    scale = page_box["width"] / WIDTH
    plot_left = page_box["x"] + LABEL_WIDTH * scale
    plot_width = (WIDTH - LABEL_WIDTH - PLOT_RIGHT) * scale
    return plot_left + share * plot_width


def share_of(action_id: str, second: float) -> float:
    """A moment ``second`` after the action's start as a share of the view (its window plus context)."""
    length = action_seconds(action_id)
    pad = length * CONTEXT_SHARE
    return (second + pad) / (length + 2 * pad)


def test_single_device_action_shows_its_missing_camera(reviewer: Any, server: Server, screenshots: Path) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-04?lang=en")
    lanes = reviewer.locator("svg.timeline g.lane")
    assert lanes.count() == 2
    assert lanes.nth(0).get_attribute("data-device") == "CAM-S02"
    missing = reviewer.locator("svg.timeline g.lane-missing")
    assert missing.count() == 1 and missing.is_visible()
    assert "no device on record" in (missing.text_content() or "")
    # the unreadable file's grey bar says why in words, not only on hover
    assert reviewer.locator("svg.timeline .bar-bad").count() == 1
    assert "recording cannot be played" in (reviewer.locator("svg.timeline .bar-reason").text_content() or "")
    story = reviewer.inner_text("ul.story")
    assert "(1:00): missing CAM-S02, a device not on record" in story
    assert "the rule needs 2" in story
    shoot(reviewer, screenshots, "timeline-DEMO-04-missing-camera")


def test_shortfalls_are_shaded_where_they_are_and_labelled(reviewer: Any, server: Server) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-02?lang=en")
    svg = reviewer.locator("svg.timeline").bounding_box()
    assert svg is not None
    bands = reviewer.locator("svg.timeline rect.shortfall")
    assert bands.count() == 2
    # DEMO-02: CAM-N03 joins 30 s late (its slow clock corrected), CAM-N01 pauses from 40 s to 55 s
    for index, (start, end) in enumerate(((0, 30), (40, 55))):
        box = bands.nth(index).bounding_box()
        assert box is not None
        left = expected_left(svg, share_of("DEMO-02", start))
        right = expected_left(svg, share_of("DEMO-02", end))
        assert box["x"] == pytest.approx(left, abs=PX) and box["x"] + box["width"] == pytest.approx(right, abs=PX)
    labels = reviewer.locator("svg.timeline .shortfall-label").all_text_contents()
    assert labels == ["0:30", "0:15"]
    story = reviewer.locator("ul.story li.story-shortfall").all_inner_texts()
    assert "(0:30): missing CAM-N03; recording: CAM-N01" in story[0]
    assert "(0:15): missing CAM-N01; recording: CAM-N03" in story[1]
    # CAM-N03's bar starts where its corrected clock says: 22 s on its own clock + 8 s offset = 30 s
    n03 = reviewer.locator("svg.timeline g.lane[data-device='CAM-N03'] rect.bar").bounding_box()
    assert n03 is not None and n03["x"] == pytest.approx(expected_left(svg, share_of("DEMO-02", 30)), abs=PX)


def test_a_muted_camera_says_why_it_does_not_count(reviewer: Any, server: Server) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-03?lang=zh")
    lane = reviewer.locator("svg.timeline g.lane[data-device='CAM-S01']")
    assert lane.locator("rect.bar-bad").count() == 1
    assert lane.locator(".bar-reason").text_content() == "录像无声音"
    assert "不计入覆盖" in reviewer.inner_text("ul.story")


@pytest.mark.parametrize("server", BOTH_DATABASES, indirect=True)
def test_clicking_a_bar_opens_the_player_at_that_moment(reviewer: Any, server: Server, screenshots: Path) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-01?lang=en")
    bar = reviewer.locator("svg.timeline g.lane[data-device='CAM-N02'] rect.bar")
    box = bar.bounding_box()
    assert box is not None
    [clip] = [c for c in CLIPS if c.device == "CAM-N02" and c.scene == "today"]
    with reviewer.expect_navigation():
        bar.click(position={"x": box["width"] * 0.75, "y": box["height"] / 2})
    assert "/play" in reviewer.url
    wanted = clip.seconds * 0.75
    video = reviewer.locator(".player video")
    reviewer.wait_for_function(
        "want => { const v = document.querySelector('.player video'); return v.readyState >= 2 && !v.seeking"
        " && Math.abs(v.currentTime - want) < 1; }",
        arg=wanted,
    )
    assert video.evaluate("v => v.currentTime") == pytest.approx(wanted, abs=1.0)
    # and it plays: time moves on
    start = video.evaluate("v => v.play().then(() => v.currentTime)")
    reviewer.wait_for_function("t => document.querySelector('.player video').currentTime > t + 0.5", arg=start)
    # a seek lands where it was asked (over HTTP Range)
    video.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true}); v.currentTime = 10; })"
    )
    assert video.evaluate("v => v.currentTime") == pytest.approx(10, abs=0.5)
    shoot(reviewer, screenshots, "player-from-timeline-click")


def test_an_unplayable_recording_says_so(reviewer: Any, server: Server, screenshots: Path) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-04?lang=en")
    with reviewer.expect_navigation():
        reviewer.click("table a[href*='/play']")
    assert reviewer.locator(".player video, .player audio").count() == 0
    assert "could not be read as video or audio" in reviewer.inner_text(".unplayable")
    shoot(reviewer, screenshots, "player-unplayable")
