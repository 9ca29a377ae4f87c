"""All of an action's cameras on one clock: two cameras play, a seek moves both, each keeps its own offset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server
from tests.browser.pages import shoot

TRACK = 0.5  # seconds a camera may be off the clock (sync.js puts it back past 0.35 s)

# For every camera tile showing a clip: its currentTime and where the one clock says it should be.
POSITIONS = """() => {
  const clock = window.bwcSync.now();
  return Array.from(document.querySelectorAll('.sync-tile video')).filter(v => v.dataset.recording).map(v => ({
    device: v.closest('.sync-tile').dataset.device, at: v.currentTime, want: (clock - v.dataset.clipStart) / 1000,
    paused: v.paused, ready: v.readyState, clock: clock}));
}"""
ALL_PLAYING = """n => {
  const vs = Array.from(document.querySelectorAll('.sync-tile video')).filter(v => v.dataset.recording);
  return vs.length === n && vs.every(v => !v.paused && !v.seeking && v.readyState >= 3); }"""


def seek_with_slider(page: Any, at_ms: int) -> None:
    page.eval_on_selector(
        ".sync-seek", "(s, at) => { s.value = at; s.dispatchEvent(new Event('input', {bubbles: true})); }", at_ms
    )


def test_two_cameras_play_on_one_clock_and_seek_together(reviewer: Any, server: Server, screenshots: Path) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-01?lang=en")
    section = reviewer.locator("section.sync")
    start = int(section.get_attribute("data-action-start") or 0)
    assert reviewer.locator(".sync-tile").count() == 2
    # looking at the action fetches no evidence: nothing loads until someone presses play
    assert reviewer.evaluate("Array.from(document.querySelectorAll('.sync-tile video')).map(v => v.src)") == ["", ""]
    reviewer.click(".sync-play")
    reviewer.wait_for_function(ALL_PLAYING, arg=2)
    seek_with_slider(reviewer, start + 30_000)
    reviewer.wait_for_function(ALL_PLAYING, arg=2)
    # the clock has moved on from the seek while both played: each camera is where the clock says
    reviewer.wait_for_function(f"() => window.bwcSync.now() > {start + 31_000}")
    positions = reviewer.evaluate(POSITIONS)
    assert {p["device"] for p in positions} == {"CAM-N01", "CAM-N02"}
    for p in positions:
        assert p["at"] == pytest.approx(p["want"], abs=TRACK), positions
    # the cameras started at different moments (N01 5 s, N02 3 s before the action): different file times
    by_device = {p["device"]: p["at"] for p in positions}
    assert by_device["CAM-N01"] - by_device["CAM-N02"] == pytest.approx(2.0, abs=2 * TRACK)
    assert reviewer.inner_text(".sync-clock").count(":") == 2
    shoot(reviewer, screenshots, "sync-DEMO-01")


def test_a_shortfall_link_seeks_every_camera_to_it(reviewer: Any, server: Server, screenshots: Path) -> None:
    reviewer.goto(f"{server.url}/actions/DEMO-02?lang=en")
    second = reviewer.locator("ul.story a.seek-link").nth(1)
    at = int(second.get_attribute("data-at") or 0)
    second.click()
    assert reviewer.evaluate("window.bwcSync.now()") == pytest.approx(at, abs=1)
    # during CAM-N01's pause it shows "not recording"; CAM-N03 (offset applied) is at its file's right time
    n01 = reviewer.locator(".sync-tile[data-device='CAM-N01']")
    assert "not recording" in n01.inner_text()
    reviewer.wait_for_function(
        "() => { const v = document.querySelector(\".sync-tile[data-device='CAM-N03'] video\");"
        " return v.readyState >= 1 && !v.seeking; }"
    )
    [p] = reviewer.evaluate(POSITIONS)
    assert p["device"] == "CAM-N03" and p["at"] == pytest.approx(p["want"], abs=TRACK)
    # 40 s into the action; N03's file starts at 22 s on its own clock, 30 s on the true one: 10 s in
    assert p["at"] == pytest.approx(10.0, abs=TRACK)
    shoot(reviewer, screenshots, "sync-DEMO-02-shortfall")
