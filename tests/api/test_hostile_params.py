"""Hostile values in every parameter of every route: a NUL byte, integers past 32 and 64 bits. Each is a 4xx
with SPEC §8's JSON error (or, for an in-range value, an ordinary answer), never a 500 — on both databases."""

from __future__ import annotations

import hashlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select

from api.app import create_app
from config.settings import Settings
from storage.basics import INT32_MAX, INT64_MAX
from storage.models import Recording
from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens
from tests.api.web_client import use_session
from tests.fixtures.media import MediaFactory

NUL = "%00"
BIG_INTS = (2**31, 2**63, 2**64, 10**30)  # past PostgreSQL integer, past 64 bits (SQLite, bigint), far past


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["path", "query"]
    is_int: bool
    choices: tuple[str, ...] = ()  # a Literal's values


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    params: tuple[Param, ...]


def _choices(annotation: Any) -> tuple[str, ...]:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is Literal:
            return tuple(str(a) for a in typing.get_args(arg))
    return ()


def _is_int(annotation: Any) -> bool:
    return annotation is int or int in typing.get_args(annotation)


def _params(dependant: Any) -> list[Param]:
    kinds: tuple[tuple[Literal["path", "query"], Any], ...] = (
        ("path", dependant.path_params),
        ("query", dependant.query_params),
    )
    found = [
        Param(p.alias, where, _is_int(p.field_info.annotation), _choices(p.field_info.annotation))
        for where, params in kinds
        for p in params
    ]
    for sub in dependant.dependencies:
        found += _params(sub)
    return found


def routes() -> list[Route]:
    """Every API and web route of the app, with its path and query parameters (dependencies' too)."""
    app = create_app(Settings(home="/nonexistent-bwc-home"))  # builds nothing until its lifespan starts
    found = []
    for ctx in iter_route_contexts(app.routes):
        if not isinstance(ctx.route, APIRoute):
            continue
        params = {(p.name, p.where): p for p in _params(ctx.route.dependant)}
        for method in sorted(ctx.methods or ()):
            if method != "HEAD":
                found.append(Route(method, str(ctx.path), tuple(params.values())))
    return found


ROUTES = routes()


def _sample(param: Param) -> str:
    if param.choices:
        return param.choices[0]
    return "1" if param.is_int else "SAMPLE"


def _request(client: TestClient, route: Route, hostile: Param, value: str) -> Response:
    path, query = route.path, []
    for p in route.params:
        text = value if p == hostile else _sample(p)
        if p.where == "path":
            path = path.replace("{" + p.name + "}", text).replace("{" + p.name + ":path}", text)
        else:
            query.append(f"{p.name}={text}")
    url = path + ("?" + "&".join(query) if query else "")
    response: Response = client.request(route.method, url)
    return response


def _assert_clean_error(response: Response, where: str) -> None:
    assert 400 <= response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
    if response.headers.get("content-type", "").startswith("text/html"):  # a web page answers with a page
        assert not response.request.url.path.startswith("/api/") and 'role="alert"' in response.text, where
        return
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"], where


@pytest.fixture
def admin(client: TestClient, runtime: Runtime, tokens: Tokens, recording: Ingested) -> TestClient:
    """The client as an admin (bearer and web cookie), so that every check past access is reached."""
    client.headers.update(tokens.headers("admin"))
    use_session(client, runtime, tokens.secrets["admin"])
    return client


def test_the_walk_sees_every_kind_of_parameter() -> None:
    params = {(r.path, p.name) for r in ROUTES for p in r.params}
    assert ("/api/v1/recordings/{recording_id}", "recording_id") in params
    assert ("/api/v1/audit/events", "after") in params
    assert ("/api/v1/recordings", "offset") in params
    assert ("/cases/{case_number:path}", "case_number") in params
    assert sum(p.is_int for r in ROUTES for p in r.params) >= 8


def test_a_nul_byte_in_any_parameter_is_a_4xx_json_error(admin: TestClient) -> None:
    for route in ROUTES:
        for param in route.params:
            response = _request(admin, route, param, f"a{NUL}b")
            _assert_clean_error(response, f"{route.method} {route.path} {param.name}=NUL")
            assert response.json()["error"]["code"] == "nul_byte"
        # and in a query parameter no route declares
        _assert_clean_error(admin.request(route.method, f"{_fill(route)}?x={NUL}"), f"{route.path} ?x=NUL")


def _fill(route: Route) -> str:
    path = route.path
    for p in route.params:
        if p.where == "path":
            path = path.replace("{" + p.name + "}", _sample(p)).replace("{" + p.name + ":path}", _sample(p))
    return path


def test_integers_past_their_column_are_refused_not_a_500(admin: TestClient) -> None:
    checked = 0
    for route in ROUTES:
        for param in (p for p in route.params if p.is_int):
            for value in BIG_INTS:
                response = _request(admin, route, param, str(value))
                where = f"{route.method} {route.path} {param.name}={value}"
                assert response.status_code < 500, f"{where}: {response.status_code} {response.text[:300]}"
                if response.status_code >= 400:
                    _assert_clean_error(response, where)
                checked += 1
    assert checked >= 8 * len(BIG_INTS)


def test_ids_are_bounded_to_their_columns(admin: TestClient, recording: Ingested) -> None:
    assert admin.get(f"/api/v1/recordings/{recording.id}").status_code == 200
    assert admin.get(f"/api/v1/recordings/{INT32_MAX}").status_code == 404  # in range: just not there
    assert admin.get(f"/api/v1/recordings/{INT32_MAX + 1}").json()["error"]["code"] == "bad_input"
    assert admin.get(f"/api/v1/audit/events?after={2**31}").status_code == 200  # seq is 64-bit
    assert admin.get(f"/api/v1/audit/events?after={INT64_MAX}").status_code == 200
    assert admin.get(f"/api/v1/audit/events?after={INT64_MAX + 1}").status_code == 422
    assert admin.get(f"/api/v1/recordings?offset={INT64_MAX}").json()["recordings"] == []


def test_huge_numbers_in_a_range_header_are_not_a_500(admin: TestClient, recording: Ingested) -> None:
    for header in (f"bytes={2**64}-", f"bytes=0-{2**64}", f"bytes=-{2**64}", f"bytes={10**30}-{10**31}"):
        response = admin.get(f"/api/v1/recordings/{recording.id}/content", headers={"Range": header})
        assert response.status_code < 500, (header, response.status_code)


def test_nul_in_upload_headers_stores_nothing(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    good = {"X-Device-Id": "DEV-1", "X-Filename": "clip.mp4", "X-Content-SHA256": "0" * 64}
    for name, value in (("X-Device-Id", "DEV%00-1"), ("X-Filename", "cl%00ip.mp4"), ("X-Filename", "a\x01b.mp4")):
        headers = {**tokens.headers("station"), **good, name: value}
        response = client.post("/api/v1/recordings", headers=headers, content=b"bytes")
        _assert_clean_error(response, f"{name}={value!r}")
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Recording)) == 0


def test_nul_in_a_json_body_is_a_422(client: TestClient, tokens: Tokens) -> None:
    action = {"action_id": "A\x00", "started_at": "2024-05-01 08:00", "ended_at": "2024-05-01 09:00"}
    response = client.post("/api/v1/actions", headers=tokens.headers("admin"), json=action)
    _assert_clean_error(response, "POST /actions with NUL")
    listed = {**action, "action_id": "A1", "devices": ["D1", "D\x002"]}
    _assert_clean_error(client.post("/api/v1/actions", headers=tokens.headers("admin"), json=listed), "NUL in list")


def test_a_file_name_with_a_sequence_past_32_bits_uploads(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    clip = media.make(tmp_path / "clip.mp4", seconds=1)
    data = clip.read_bytes()
    headers = {
        **tokens.headers("station"),
        "X-Device-Id": "DEV-1",
        "X-Filename": f"DEV-1_P1_20240501083000_{2**40}.mp4",  # PostgreSQL's integer ends at 2**31 - 1
        "X-Content-SHA256": hashlib.sha256(data).hexdigest(),
    }
    response = client.post("/api/v1/recordings", headers=headers, content=data)
    assert response.status_code == 201, response.text
    with runtime.sessions() as s:
        [rec] = s.scalars(select(Recording))
    assert rec.sequence is None and rec.started_at is not None  # the rest of the name still counts
