"""Manual links over the API and the command line: roles, status codes, exit codes, audit events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from audit import linking
from config.settings import Settings, get_settings
from storage.db import transaction
from storage.models import Recording
from storage.runtime import Runtime
from tests.api.conftest import Tokens, events
from tests.fixtures import coverage_data as cd
from tests.fixtures.media import MediaFactory

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
Scene = tuple[Recording, Recording]


@pytest.fixture
def scene(runtime: Runtime, media: MediaFactory, tmp_path: Path) -> Scene:
    """X1 needs devices A and B; A filmed it, B did not; Z (a borrowed camera) filmed it too."""
    with transaction(runtime.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + timedelta(seconds=8), devices=["A", "B"])
        own = cd.stored_recording(s, runtime.store, media.make(tmp_path / "a.mp4", seconds=10, tone=310), "A", T0)
        lent = cd.stored_recording(s, runtime.store, media.make(tmp_path / "z.mp4", seconds=10, tone=510), "Z", T0)
        linking.on_actions_changed(s, runtime.settings, [act.id], "t")
    return own, lent


def test_link_and_unlink_over_the_api(client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene) -> None:
    own, lent = scene
    h = tokens.headers("reviewer")
    created = client.post(f"/api/v1/actions/X1/links/{lent.id}", headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["changed"] is True
    assert created.json()["action"]["verdict"] == "complete"
    assert created.json()["action"]["recordings_manual"] == [lent.id]
    again = client.post(f"/api/v1/actions/X1/links/{lent.id}", headers=h)
    assert (again.status_code, again.json()["changed"]) == (200, False)
    assert [e.actor for e in events(runtime, "link.added")] == ["token:reviewer-1"]  # one event, naming the holder

    removed = client.delete(f"/api/v1/actions/X1/links/{own.id}", headers=tokens.headers("admin"))
    assert removed.status_code == 200, removed.text
    assert removed.json()["action"]["recordings"] == [lent.id]
    assert removed.json()["action"]["verdict"] != "complete"
    repeat = client.delete(f"/api/v1/actions/X1/links/{own.id}", headers=h)
    assert (repeat.status_code, repeat.json()["changed"]) == (200, False)
    assert [e.actor for e in events(runtime, "link.removed")] == ["token:admin-1"]

    linking.recompute_all(runtime.sessions, runtime.settings, datetime.now(UTC), "t")
    shown = client.get("/api/v1/actions/X1", headers=h).json()
    assert shown["recordings"] == [lent.id] and shown["recordings_manual"] == [lent.id]


def test_link_errors_and_roles(client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene) -> None:
    _own, lent = scene
    h = tokens.headers("reviewer")
    for role in ("auditor", "station"):
        for method in ("POST", "DELETE"):
            denied = client.request(method, f"/api/v1/actions/X1/links/{lent.id}", headers=tokens.headers(role))
            assert denied.status_code == 403, (role, method)
            assert denied.json()["error"]["code"] == "forbidden"
    assert client.post(f"/api/v1/actions/X1/links/{lent.id}").status_code == 401
    cases = [
        ("POST", "/api/v1/actions/NOPE/links/1", "action_not_found"),
        ("POST", "/api/v1/actions/X1/links/999999", "recording_not_found"),
        ("DELETE", "/api/v1/actions/NOPE/links/1", "action_not_found"),
        ("DELETE", f"/api/v1/actions/X1/links/{lent.id}", "not_linked"),
    ]
    for method, path, code in cases:
        response = client.request(method, path, headers=h)
        assert (response.status_code, response.json()["error"]["code"]) == (404, code), path
    assert client.post("/api/v1/actions/X1/links/not-a-number", headers=h).status_code == 422
    assert events(runtime, "link.added") == [] and events(runtime, "link.removed") == []
    spec = client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/actions/{action_id}/links/{recording_id}"]
    assert {"200", "201", "404"} <= set(spec["post"]["responses"])
    assert {"200", "404"} <= set(spec["delete"]["responses"])


@pytest.fixture
def cli(settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("BWC_HOME", str(settings.home))
    monkeypatch.setenv("BWC_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("BWC_STORAGE_URL", settings.store_url)
    get_settings.cache_clear()
    yield runtime
    get_settings.cache_clear()


def test_cli_link_and_unlink(cli: Runtime, scene: Scene) -> None:
    from api.cli.main import app

    own, lent = scene
    runner = CliRunner()
    linked = runner.invoke(app, ["actions", "link", "X1", str(lent.id), "--format", "json"])
    assert linked.exit_code == 0, linked.output
    assert json.loads(linked.stdout)["changed"] is True
    assert json.loads(linked.stdout)["action"]["verdict"] == "complete"
    again = runner.invoke(app, ["actions", "link", "X1", str(lent.id)])
    assert again.exit_code == 0 and "already linked" in again.stdout
    unlinked = runner.invoke(app, ["actions", "unlink", "X1", str(own.id)])
    assert unlinked.exit_code == 0, unlinked.output
    assert f"recording {own.id} unlinked from action X1" in unlinked.stdout
    assert [e.actor.startswith("cli") for e in events(cli, "link.added") + events(cli, "link.removed")] == [True, True]
    for args in (["link", "NOPE", "1"], ["link", "X1", "999999"], ["unlink", "X1", "999999"]):
        failed = runner.invoke(app, ["actions", *args])
        assert failed.exit_code == 2, (args, failed.output)
        assert "no " in failed.stderr
    assert runner.invoke(app, ["actions", "link", "X1", "abc"]).exit_code == 2  # not a number: usage error
