"""``POST /recordings``: a station uploads a file; new → 201, same bytes again → 200, wrong digest → 422."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import anyio
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from config.settings import Settings
from storage.runtime import Runtime, build_runtime
from tests.api.conftest import Tokens, events, make_tokens, recordings
from tests.fixtures.media import MediaFactory


def _headers(tokens: Tokens, path: Path, *, device: str = "DEV-9", sha256: str | None = None) -> dict[str, str]:
    return {
        **tokens.headers("station"),
        "X-Device-Id": device,
        "X-Filename": path.name,
        "X-Content-SHA256": sha256 or hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def _chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk


def test_upload_new_then_again(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    path = media.make(tmp_path / "DEV-9_P9_20240501090000_0007.mp4", seconds=2)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    first = client.post("/api/v1/recordings", content=_chunks(path), headers=_headers(tokens, path))
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["sha256"] == sha and body["size"] == path.stat().st_size
    assert body["device"] == "DEV-9"
    assert body["station"] == "ST-API"  # the station the token belongs to
    assert body["officer"] == "P9" and body["started_at"] == "2024-05-01T09:00:00+00:00"
    assert body["status"] == "ok" and body["has_video"] and body["has_audio"]
    assert body["duplicate"] is False
    assert runtime.store.verify(sha)

    again = client.post("/api/v1/recordings", content=path.read_bytes(), headers=_headers(tokens, path))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == body["id"] and again.json()["duplicate"] is True

    assert [r.sha256 for r in recordings(runtime)] == [sha]
    ingested = events(runtime, "recording.ingested")
    assert len(ingested) == 1 and ingested[0].actor == "token:station-1"
    assert len(events(runtime, "recording.duplicate")) == 1
    spool = runtime.settings.home / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


def test_header_device_wins_over_the_file_name(
    client: TestClient, tokens: Tokens, media: MediaFactory, tmp_path: Path
) -> None:
    path = media.make(tmp_path / "clip.mov", seconds=1, creation_time="2024-05-03T10:00:00Z")
    response = client.post(
        "/api/v1/recordings", content=path.read_bytes(), headers=_headers(tokens, path, device="CAM-55")
    )
    assert response.status_code == 201, response.text
    assert response.json()["device"] == "CAM-55"
    assert response.json()["time_source"] == "metadata"


def test_digest_mismatch_stores_nothing(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    path = media.make(tmp_path / "DEV-9_P9_20240501090000_0008.mp4", seconds=1)
    real = hashlib.sha256(path.read_bytes()).hexdigest()
    claimed = "ab" * 32
    response = client.post("/api/v1/recordings", content=_chunks(path), headers=_headers(tokens, path, sha256=claimed))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "digest_mismatch"
    assert runtime.store.head(real) is None and runtime.store.head(claimed) is None
    assert recordings(runtime) == []
    assert events(runtime, "recording.ingested") == []


def test_bad_headers_are_422_before_any_byte_is_stored(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    path = media.make(tmp_path / "DEV-9_P9_20240501090000_0009.mp4", seconds=1)
    good = _headers(tokens, path)
    cases = [
        {k: v for k, v in good.items() if k != "X-Content-SHA256"},
        {k: v for k, v in good.items() if k != "X-Device-Id"},
        {k: v for k, v in good.items() if k != "X-Filename"},
        {**good, "X-Content-SHA256": "not-hex"},
        {**good, "X-Filename": "../../etc/passwd.mp4"},
        {**good, "X-Filename": "notes.docx"},
        {**good, "X-Filename": "clip.mp4.part"},
        {**good, "X-Device-Id": "a/b"},
    ]
    for headers in cases:
        response = client.post("/api/v1/recordings", content=path.read_bytes(), headers=headers)
        assert response.status_code == 422, (headers, response.text)
        assert response.json()["error"]["code"] in ("bad_input", "bad_filename", "not_media")
    assert recordings(runtime) == []
    assert runtime.store.head(good["X-Content-SHA256"]) is None


def test_percent_encoded_chinese_file_name(
    client: TestClient, tokens: Tokens, media: MediaFactory, tmp_path: Path
) -> None:
    path = media.make(tmp_path / "x.mp4", seconds=1)
    headers = {**_headers(tokens, path), "X-Filename": "%E6%89%A7%E6%B3%95_%E4%B8%80.mp4"}
    response = client.post("/api/v1/recordings", content=path.read_bytes(), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["original_name"] == "执法_一.mp4"


def test_unplayable_upload_is_still_evidence(
    client: TestClient, tokens: Tokens, runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"not a video at all" * 100)
    response = client.post("/api/v1/recordings", content=path.read_bytes(), headers=_headers(tokens, path))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "unplayable"
    ingested = events(runtime, "recording.ingested")
    assert json.loads(ingested[0].details)["status"] == "unplayable"


def test_upload_and_ranged_read_on_an_s3_store(
    settings: Settings, s3_bucket_url: str, media: MediaFactory, tmp_path: Path
) -> None:
    s3_settings = settings.model_copy(update={"storage_url": SecretStr(s3_bucket_url)})
    rt = build_runtime(s3_settings)
    rt.store.ensure_ready()
    tokens = make_tokens(rt)
    path = media.make(tmp_path / "DEV-5_P5_20240501080000_0001.mp4", seconds=2)
    data = path.read_bytes()
    with TestClient(create_app(s3_settings)) as client:
        created = client.post("/api/v1/recordings", content=_chunks(path, 4096), headers=_headers(tokens, path))
        assert created.status_code == 201, created.text
        rid = created.json()["id"]
        part = client.get(
            f"/api/v1/recordings/{rid}/content", headers={**tokens.headers("reviewer"), "Range": "bytes=100-199"}
        )
        assert part.status_code == 206 and part.content == data[100:200]
        mismatch = client.post(
            "/api/v1/recordings", content=data + b"x", headers=_headers(tokens, path, sha256="cd" * 32)
        )
        assert mismatch.status_code == 422
    assert rt.store.head(hashlib.sha256(data + b"x").hexdigest()) is None
    rt.close()


def test_a_cut_off_upload_stores_nothing(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    """Speak ASGI to the app directly: one chunk arrives, then the station's connection drops."""
    app = client.app
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"x" * 100_000, "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    headers = {
        **tokens.headers("station"),
        "X-Device-Id": "DEV-1",
        "X-Filename": "a.mp4",
        "X-Content-SHA256": "ab" * 32,
    }
    scope: MutableMapping[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/recordings",
        "raw_path": b"/api/v1/recordings",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "state": {},
    }
    anyio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 422
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert json.loads(body)["error"]["code"] == "incomplete_upload"
    assert recordings(runtime) == []
    incoming = runtime.settings.home / "objects" / ".incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
    spool = runtime.settings.home / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []
