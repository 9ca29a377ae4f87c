"""API fixtures: the app on the parametrized database, a token per role, recordings ingested for real."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import ROLES, create_token
from ingest.pipeline import ingest_file
from storage.db import transaction
from storage.models import AuditEvent, Recording
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory

STATION = "ST-API"
REVIEWER_UNITS = {"reviewer": ("U1",)}


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    """The real app (its own runtime, built in the lifespan) on the test's settings."""
    with TestClient(create_app(runtime.settings)) as c:
        yield c


@dataclass
class Tokens:
    secrets: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[role]}"}


def make_tokens(runtime: Runtime) -> Tokens:
    """One live token per role, named ``<role>-1``; the station token belongs to station ST-API, the reviewer
    to unit U1 (the unit of the evidence fixtures' actions)."""
    secrets: dict[str, str] = {}
    with transaction(runtime.sessions) as s:
        for role in ROLES:
            station = STATION if role == "station" else None
            _token, secret = create_token(
                s, role=role, name=f"{role}-1", station_code=station, units=REVIEWER_UNITS.get(role, ()), actor="test"
            )
            secrets[role] = secret
    return Tokens(secrets)


@pytest.fixture
def tokens(runtime: Runtime) -> Tokens:
    return make_tokens(runtime)


@dataclass
class Ingested:
    id: int
    path: Path
    sha256: str
    size: int


def ingest(runtime: Runtime, path: Path) -> Ingested:
    """Put a real file through the ingest pipeline, as the watcher would."""
    outcome = ingest_file(runtime, path.parent, path, "ST-INBOX")
    assert outcome.status == "stored", outcome
    assert outcome.recording_id is not None and outcome.sha256 is not None
    return Ingested(outcome.recording_id, path, outcome.sha256, path.stat().st_size)


@pytest.fixture
def recording(runtime: Runtime, media: MediaFactory, tmp_path: Path) -> Ingested:
    """A real 2-second MP4 from device DEV-7, stored through the pipeline."""
    path = media.make(tmp_path / "cam" / "DEV-7_P100_20240501080000_0001.mp4", seconds=2)
    return ingest(runtime, path)


def events(rt: Runtime, kind: str) -> list[AuditEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.seq)))


def recordings(rt: Runtime) -> list[Recording]:
    with rt.sessions() as s:
        return list(s.scalars(select(Recording).order_by(Recording.id)))
