"""Shared fixtures: every database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from config.settings import Settings
from storage.objects import ObjectStore
from storage.runtime import Runtime, build_runtime

# The one CLI fixture (``cli``, and ``bare_cli`` without a database), shared by every test area.
from tests.fixtures.cli import bare_cli, cli  # noqa: F401
from tests.fixtures.databases import PgDatabase, SqliteTemplate, pg_available, pg_session_database

# A small real case (three cameras, one action) on the local store and on S3, for fixity, holds and exports.
from tests.fixtures.evidence import case, evidence_runtime  # noqa: F401
from tests.fixtures.media import MediaFactory

# S3 fixtures (moto's standalone server, one per session): registered here so every test area can use them.
from tests.fixtures.rgw import rgw  # noqa: F401
from tests.fixtures.s3 import s3_bucket_url, s3_client, s3_endpoint, s3_locked_bucket_url  # noqa: F401


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (``make test`` runs a worker a core): a module's tests stay on
    one worker, so its module fixtures are made once; all browser tests share one worker, so the demo cities and
    Chromium are made once. Runs before xdist reads the marks (``tryfirst``)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            path = item.nodeid.split("::", 1)[0]
            item.add_marker(pytest.mark.xdist_group("browser" if path.startswith("tests/browser/") else path))


def pytest_report_header() -> str:
    reason = pg_available()
    return "postgresql: available" if reason is None else f"postgresql: NOT reachable, its tests skip ({reason})"


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFactory:
    return MediaFactory(tmp_path_factory.mktemp("media-cache"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> SqliteTemplate:
    return SqliteTemplate(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[PgDatabase | None]:
    yield from pg_session_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    _sqlite_template: SqliteTemplate,
    _pg_database: PgDatabase | None,
) -> str:
    """A clean, migrated database: each test that takes it runs once per backend."""
    if request.param == "sqlite":
        return _sqlite_template.fresh(tmp_path / "bwc.db")
    if _pg_database is None:
        pytest.skip("PostgreSQL not reachable at 127.0.0.1:5432")
    return _pg_database.fresh()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for an embedded service under ``tmp_path`` on the parametrized database."""
    home = tmp_path / "home"
    return Settings(home=home, database_url=database_url, stable_seconds=0)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    rt = build_runtime(settings)
    rt.store.ensure_ready()
    settings.inbox_path.mkdir(parents=True, exist_ok=True)
    yield rt
    rt.close()


@pytest.fixture
def store(runtime: Runtime) -> ObjectStore:
    return runtime.store


# Property tests judge behaviour, never speed: no per-example deadline (a loaded CI machine is slow), and
# under CI the same examples on every run so that a failure can be reproduced.
hypothesis_settings.register_profile("bwc", deadline=None, derandomize=os.environ.get("CI") == "true")
hypothesis_settings.load_profile("bwc")
