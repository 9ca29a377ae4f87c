"""Ingest fixtures: an inbox under the runtime's home and helpers to look at what got stored."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from api.cli.main import app
from config.settings import Settings, get_settings
from storage.models import AuditEvent, IngestFailure, Recording, Sidecar, Sighting
from storage.runtime import Runtime


@pytest.fixture
def inbox(runtime: Runtime) -> Path:
    return runtime.settings.inbox_path


class Db:
    """Small read helpers over the runtime's database, each in its own short session."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def count(self, model: type) -> int:
        with self.rt.sessions() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def count_recordings(self) -> int:
        return self.count(Recording)

    def recordings(self) -> list[Recording]:
        with self.rt.sessions() as s:
            return list(s.scalars(select(Recording).order_by(Recording.id)))

    def sightings(self) -> list[Sighting]:
        with self.rt.sessions() as s:
            return list(s.scalars(select(Sighting).order_by(Sighting.id)))

    def sidecars(self) -> list[Sidecar]:
        with self.rt.sessions() as s:
            return list(s.scalars(select(Sidecar).order_by(Sidecar.id)))

    def failures(self) -> list[IngestFailure]:
        with self.rt.sessions() as s:
            return list(s.scalars(select(IngestFailure).order_by(IngestFailure.id)))

    def events(self, kind: str | None = None) -> list[AuditEvent]:
        with self.rt.sessions() as s:
            query = select(AuditEvent).order_by(AuditEvent.seq)
            if kind is not None:
                query = query.where(AuditEvent.kind == kind)
            return list(s.scalars(query))


@pytest.fixture
def db(runtime: Runtime) -> Db:
    return Db(runtime)


Invoke = Callable[..., Result]


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """Run ``bwc …`` in-process against the test's home and database (settings from the environment)."""
    for name in list(os.environ):
        if name.startswith("BWC_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("BWC_HOME", str(settings.home))
    monkeypatch.setenv("BWC_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("BWC_STABLE_SECONDS", "0")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        get_settings.cache_clear()  # a test may change the environment between calls
        return runner.invoke(app, list(args))

    yield invoke
    get_settings.cache_clear()
