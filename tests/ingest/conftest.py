"""Ingest fixtures: an inbox under the runtime's home and helpers to look at what got stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import AuditEvent, IngestFailure, Recording, Sidecar, Sighting
from storage.runtime import Runtime
from tests.fixtures.cli import Invoke as Invoke  # re-exported: ingest tests import it from here; ``cli`` is shared


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
