"""What the browser tests do on every page: look for accessibility violations with axe-core, keep a screenshot."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import AXE_JS

SERIOUS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol, which the pages' CSP (script-src 'self') does not govern:
        # the pages themselves are tested under their real CSP, and no inline script is let in for axe
        page.evaluate(AXE_JS.read_text(encoding="utf-8") + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [v for v in result["violations"] if v.get("impact") in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:3]]}" for v in violations
    )


# resolves once every <video>/<audio> that is fetching has its metadata or has failed: a screenshot taken while
# Chromium is still setting up a media element's first frame can fail in the compositor ("Unable to capture
# screenshot"). An element with no source (the action page's players before Play) fetches nothing and is not
# waited for; the deadline only bounds a fetch that never ends, and the screenshot is then tried as it is.
MEDIA_SETTLED_JS = """() => Promise.race([
    Promise.all([...document.querySelectorAll('video, audio')]
        .filter(m => m.networkState === HTMLMediaElement.NETWORK_LOADING && m.readyState < 1 && !m.error)
        .map(m => new Promise(done => {
            m.addEventListener('loadedmetadata', done, {once: true});
            m.addEventListener('error', done, {once: true});
        }))),
    new Promise(done => setTimeout(done, 15000)),
])"""
CAPTURE_FAILED = "Unable to capture screenshot"
ATTEMPTS = 3


def shoot(page: Any, folder: Path, name: str) -> Path:
    """A full-page screenshot for a person to look at; its path is printed (``pytest -s`` shows it).

    The screenshot is for reading, not an assertion, and headless Chromium's compositor now and then has no frame
    to give on a loaded 2-core machine: that one protocol error is tried again; any other error fails the test."""
    path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".png")
    page.evaluate(MEDIA_SETTLED_JS)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            page.screenshot(path=str(path), full_page=True)
            break
        except PlaywrightError as error:
            if CAPTURE_FAILED not in str(error) or attempt == ATTEMPTS:
                raise
    print(f"screenshot: {path}")
    return path


def check_page(page: Any, folder: Path, name: str) -> None:
    """Screenshot first (so a failing page can still be looked at), then no serious accessibility violation."""
    shoot(page, folder, name)
    found = axe_violations(page)
    assert not found, f"{name}: {describe(found)}"
