"""The browser harness: Debian's Chromium driven by Playwright against a live ``bwc run`` over the demo city.

One demo city per session and database (``bwc demo``: real ffmpeg clips, real ingest), copied for each module's
own server (``bwc run`` on a free loopback port, its own BWC_HOME and database), one browser per session, a fresh
context per test. The server runs on SQLite (the embedded default); a test that names
``@pytest.mark.parametrize("server", BOTH_DATABASES, indirect=True)`` runs on PostgreSQL as well, where the
module's database is a ``CREATE DATABASE … TEMPLATE`` copy of the session's demo database (no second ffmpeg run
per module).
Playwright never downloads a browser here: it launches ``/usr/bin/chromium``. Where Chromium or axe-core is
missing the tests skip with a plain message; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.fixtures.cli import run_bwc
from tests.fixtures.databases import PG_ADMIN_URL, pg_available
from tests.fixtures.s3 import free_port

CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = Path(__file__).resolve().parent / "fixtures" / "axe.min.js"
BWC = Path(sys.executable).with_name("bwc")
# The flags that work on this machine's closed network (no background fetches, no sandbox as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# For ``@pytest.mark.parametrize("server", BOTH_DATABASES, indirect=True)``: the test runs on each.
BOTH_DATABASES = ["sqlite", "postgresql"]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (required under CI=true)")
    pytest.skip(reason)


@dataclass
class Demo:
    home: Path
    token: str  # the demo's reviewer (both units)
    auditor: str  # an auditor's token made for the browser tests
    database_url: str = ""  # empty: the embedded SQLite file inside ``home``


@dataclass
class Server:
    url: str
    home: Path
    token: str
    auditor: str = ""
    database: str = "sqlite"


def _fill_demo(home: Path, database_url: str = "") -> Demo:
    env = {"BWC_HOME": str(home)} | ({"BWC_DATABASE_URL": database_url} if database_url else {})
    done = run_bwc("demo", env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    made = run_bwc("token", "create", "--role", "auditor", "--name", "browser-auditor", env=env)
    assert made.returncode == 0, made.stderr
    return Demo(home, done.stdout.strip(), made.stdout.strip(), database_url)


@pytest.fixture(scope="session")
def demo_city(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """``bwc demo`` in a fresh home: the same city a newcomer gets, made once per session."""
    return _fill_demo(tmp_path_factory.mktemp("demo-city") / "home")


def _pg_admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def pg_demo_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The same demo city in its own PostgreSQL database, made once per session and dropped after it."""
    reason = pg_available()
    if reason is not None:
        _unavailable(f"PostgreSQL is not reachable at 127.0.0.1:5432 ({reason})")
    name = f"bwc_browser_demo_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        yield _fill_demo(tmp_path_factory.mktemp("pg-demo-city") / "home", _pg_url(name))
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _wait_until_answering(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bwc run exited with status {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.1)  # polling a process we cannot get an event from
    raise RuntimeError(f"bwc run did not answer at {url} within {timeout} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module", params=["sqlite"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A live ``bwc run`` (uvicorn, API-only) over this module's own copy of the demo city.

    SQLite unless the test parametrizes ``server`` indirectly (``BOTH_DATABASES``): then PostgreSQL too, on a
    database copied from the session's PostgreSQL demo city by ``CREATE DATABASE … TEMPLATE``.
    """
    backend: str = request.param
    demo: Demo = request.getfixturevalue("demo_city" if backend == "sqlite" else "pg_demo_city")
    home = tmp_path_factory.mktemp(f"browser-server-{backend}") / "home"
    shutil.copytree(demo.home, home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")} | {"BWC_HOME": str(home)}
    copy = ""
    if backend == "postgresql":
        copy = f"bwc_browser_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        template = demo.database_url.rsplit("/", 1)[1]
        _pg_admin(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
        env["BWC_DATABASE_URL"] = _pg_url(copy)
    port = free_port()
    log = home.parent / "bwc-run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BWC), "run", "--host", "127.0.0.1", "--port", str(port), "--no-watch"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_answering(url + "/api/v1/healthz", proc, log)
        yield Server(url, home, demo.token, demo.auditor, backend)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if copy:
            _pg_admin(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium for the whole session."""
    if not CHROMIUM.exists():
        _unavailable(f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium)")
    if not AXE_JS.exists():
        _unavailable(f"axe-core is missing at {AXE_JS} (make test fetches it with npm pack)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots of every page: {folder}")
    return folder


@pytest.fixture
def anonymous(browser: Any) -> Iterator[Any]:
    """A page in a fresh context (no cookies): what someone who has not signed in sees."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def reviewer(anonymous: Any, server: Server) -> Any:
    """A page signed in as the demo's reviewer, through the login form as a person would."""
    sign_in(anonymous, server, server.token)
    return anonymous


@pytest.fixture(scope="module")
def admin_token(server: Server) -> str:
    """An admin token for this module's server, made as an operator would: ``bwc token create`` on its home."""
    made = run_bwc("token", "create", "--role", "admin", "--name", "browser-admin", env={"BWC_HOME": str(server.home)})
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture
def admin(anonymous: Any, server: Server, admin_token: str) -> Any:
    """A page signed in as an administrator, through the login form."""
    sign_in(anonymous, server, admin_token)
    return anonymous


@pytest.fixture
def auditor(anonymous: Any, server: Server) -> Any:
    """A page signed in as an auditor (every unit; reports, no playback), through the login form."""
    sign_in(anonymous, server, server.auditor)
    return anonymous


def sign_in(page: Any, server: Server, token: str, lang: str = "en") -> None:
    page.goto(f"{server.url}/login?lang={lang}")
    page.fill("input[name=token]", token)
    with page.expect_navigation():
        page.press("input[name=token]", "Enter")
