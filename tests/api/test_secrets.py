"""Secrets in settings never reach output: a failure that quotes the store's URL reaches ``bwc ingest status``,
``GET /api/v1/ingest/failures``, the audit log and the logs with every password masked."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from api.app import create_app
from config.settings import Settings
from storage.events import event_details
from storage.models import AuditEvent
from storage.runtime import Runtime
from tests.api.conftest import make_tokens
from tests.fixtures.cli import Invoke
from tests.fixtures.media import MediaFactory
from tests.fixtures.s3 import free_port

ENDPOINT_PASSWORD = "endpoint-s3cret-pw"
SECRET_KEY = "SECRETKEY0123456789"
DB_PASSWORD = "db-hunter2-pw"
SECRETS = (ENDPOINT_PASSWORD, SECRET_KEY, DB_PASSWORD)


def with_secrets(settings: Settings) -> Settings:
    """The test's settings, but the store is an S3 endpoint that holds user:secret and refuses connections, and
    the PostgreSQL URL carries a password (the test server trusts any)."""
    endpoint = f"http://minio:{ENDPOINT_PASSWORD}@127.0.0.1:{free_port()}"
    storage = f"s3://ev?endpoint_url={endpoint}&aws_access_key_id=AK1&aws_secret_access_key={SECRET_KEY}&max_attempts=1"
    db_url = settings.db_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    return settings.model_copy(update={"storage_url": SecretStr(storage), "database_url": SecretStr(db_url)})


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


def test_a_store_failure_is_masked_in_status_api_events_and_logs(
    runtime: Runtime,
    cli: Invoke,
    media: MediaFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = with_secrets(runtime.settings)
    monkeypatch.setenv("BWC_STORAGE_URL", secret.store_url)
    monkeypatch.setenv("BWC_DATABASE_URL", secret.db_url)
    clip = media.make(tmp_path / "card" / "DSJ-A001_001_20240501083000_0001.mp4", seconds=1)

    with caplog.at_level(logging.WARNING):
        ingested = cli("ingest", str(clip), "--format", "json")
    assert ingested.exit_code == 1, ingested.output  # a failed file is a finding
    assert_clean(ingested.output + caplog.text)
    assert "minio:***@127.0.0.1" in ingested.stdout  # the store is still named, only its password is hidden

    status = cli("ingest", "status", "--format", "json")
    assert status.exit_code == 0, status.output
    (row,) = json.loads(status.stdout)
    assert row["reason"] == "store_unavailable" and "minio:***@127.0.0.1" in row["last_error"]
    assert_clean(status.output)
    assert_clean(cli("ingest", "status").output)
    shown = cli("config", "show")
    assert "minio:***@" in shown.stdout
    assert_clean(shown.output)

    tokens = make_tokens(runtime)
    with TestClient(create_app(secret)) as client:
        api = client.get("/api/v1/ingest/failures", headers=tokens.headers("auditor"))
    assert api.status_code == 200
    assert [f["last_error"] for f in api.json()["failures"]] == [row["last_error"]]
    assert_clean(api.text)

    with runtime.sessions() as s:
        failed = list(s.scalars(select(AuditEvent).where(AuditEvent.kind == "ingest.failed")))
    assert len(failed) == 1
    assert_clean(json.dumps(event_details(failed[0])))
