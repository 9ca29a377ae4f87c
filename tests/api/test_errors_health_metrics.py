"""One error shape for everything; health without a token; Prometheus metrics for auditors."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event

from api.app import create_app
from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens
from tests.fixtures.s3 import free_port


def test_unknown_route_and_method_use_the_error_shape(client: TestClient, tokens: Tokens) -> None:
    missing = client.get("/api/v1/no-such-thing", headers=tokens.headers("admin"))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = client.delete("/api/v1/recordings", headers=tokens.headers("admin"))
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


def test_unexpected_error_is_a_logged_500_without_a_stack(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(runtime.settings)

    def boom() -> None:
        raise RuntimeError("secret internals /srv/db password=hunter2")

    app.add_api_route("/api/v1/test-boom", boom)
    with (
        caplog.at_level(logging.ERROR, logger="api.errors"),
        TestClient(app, raise_server_exceptions=False) as client,
    ):
        response = client.get("/api/v1/test-boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal", "message": "internal error; it has been logged"}}
    assert "hunter2" not in response.text
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)


def test_healthz(client: TestClient) -> None:
    response = client.get("/api/v1/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "store": "ok"}


def test_healthz_asks_the_database_one_statement(client: TestClient) -> None:
    # load balancers call it every few seconds: a SELECT 1 in autocommit, no transaction around it
    engine = client.app.state.runtime.engine  # type: ignore[attr-defined]
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        assert client.get("/api/v1/healthz").status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", before)
    assert seen == ["SELECT 1"]


def test_healthz_reports_an_unreachable_database(runtime: Runtime) -> None:
    dead = SecretStr(f"postgresql+psycopg://bwc:hunter2-api-pw@127.0.0.1:{free_port()}/bwc")
    settings = runtime.settings.model_copy(update={"database_url": dead})
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable", "store": "ok"}


def test_healthz_reports_an_unreachable_store(runtime: Runtime) -> None:
    # an S3 endpoint where nothing listens: the store cannot answer
    dead = SecretStr("s3://bucket?endpoint_url=http://127.0.0.1:9&aws_access_key_id=x&aws_secret_access_key=y")
    settings = runtime.settings.model_copy(update={"storage_url": dead})
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/healthz")
    assert response.status_code == 503
    assert response.json()["store"] == "unreachable" and response.json()["database"] == "ok"


def test_metrics(client: TestClient, tokens: Tokens, recording: Ingested) -> None:
    client.get("/api/v1/healthz")
    response = client.get("/api/v1/metrics", headers=tokens.headers("auditor"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "bwc_recordings_stored 1.0" in text
    assert f"bwc_recordings_bytes {float(recording.size)}" in text
    assert "bwc_ingest_failures_open 0.0" in text
    assert 'bwc_http_requests_total{method="GET",route="/api/v1/healthz",status="200"} 1.0' in text


def test_unreachable_database_is_a_503_naming_no_password(runtime: Runtime) -> None:
    dead = SecretStr(f"postgresql+psycopg://bwc:hunter2-api-pw@127.0.0.1:{free_port()}/bwc")
    settings = runtime.settings.model_copy(update={"database_url": dead})
    with TestClient(create_app(settings)) as client:
        response = client.get("/api/v1/recordings", headers={"Authorization": "Bearer bwc_whatever"})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "database_unavailable"
    assert "bwc:***@127.0.0.1" in error["message"] and "hunter2" not in response.text
