"""``POST /recordings``: a station uploads a file; new → 201, same bytes again → 200, wrong digest → 422."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, MutableMapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from api.arrival_hash import ArrivalHashes
from api.auth import create_token
from config.settings import Settings
from storage.basics import utcnow
from storage.db import transaction
from storage.leftovers import clean_leftovers
from storage.models import Sidecar
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


# -- resumable uploads (tus 1.0) ---------------------------------------------------------------------------------

TUS = {"Tus-Resumable": "1.0.0"}


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _create(client: TestClient, tokens: Tokens, name: str, data: bytes, sha256: str | None = None) -> str:
    sha = sha256 or hashlib.sha256(data).hexdigest()
    headers = {**tokens.headers("station"), **TUS, "Upload-Length": str(len(data))}
    response = client.post("/api/v1/uploads", headers={**headers, "Upload-Metadata": _meta(filename=name, sha256=sha)})
    assert response.status_code == 201, response.text
    assert response.headers["Upload-Offset"] == "0" and response.headers["Tus-Resumable"] == "1.0.0"
    return str(response.headers["Location"])


def _patch(client: TestClient, tokens: Tokens, url: str, offset: int, data: bytes) -> Any:
    headers = {
        **tokens.headers("station"),
        **TUS,
        "Upload-Offset": str(offset),
        "Content-Type": "application/offset+octet-stream",
    }
    return client.patch(url, headers=headers, content=data)


def _head(client: TestClient, tokens: Tokens, url: str, role: str = "station") -> Any:
    return client.head(url, headers={**tokens.headers(role), **TUS})


def _parts(runtime: Runtime) -> list[Path]:
    folder = runtime.settings.home / "uploads"
    return sorted(folder.iterdir()) if folder.exists() else []


def test_tus_upload_in_pieces_with_a_resume(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    path = media.make(tmp_path / "DEV-5_P5_20240501100000_0003.mp4", seconds=2)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    url = _create(client, tokens, "DEV-5/" + path.name, data)

    first = _patch(client, tokens, url, 0, data[:1000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "1000"
    assert "X-Ingest-Status" not in first.headers
    # A station that lost its answer asks where to go on; a PATCH from elsewhere is refused with 409.
    head = _head(client, tokens, url)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "1000"
    assert head.headers["Upload-Length"] == str(len(data)) and head.headers["Cache-Control"] == "no-store"
    assert _patch(client, tokens, url, 0, data[:10]).status_code == 409
    assert recordings(runtime) == []

    last = _patch(client, tokens, url, 1000, data[1000:])
    assert last.status_code == 204, last.text
    assert last.headers["X-Ingest-Status"] == "stored" and last.headers["X-Content-SHA256"] == sha
    [recording] = recordings(runtime)
    assert recording.sha256 == sha and str(recording.id) == last.headers["X-Recording-Id"]
    assert recording.status == "ok" and recording.officer_code == "P5"  # probed, named like a watched file
    assert _parts(runtime) == []  # the part file went once committed
    again = _head(client, tokens, url)  # the outcome stays readable for a station that missed the answer
    assert again.headers["X-Ingest-Status"] == "stored" and again.headers["Upload-Offset"] == str(len(data))

    # The same bytes again through another upload: a duplicate sighting, the same recording.
    url2 = _create(client, tokens, "DEV-5/copy.mp4", data)
    dup = _patch(client, tokens, url2, 0, data)
    assert dup.headers["X-Ingest-Status"] == "duplicate" and dup.headers["X-Recording-Id"] == str(recording.id)
    assert len(recordings(runtime)) == 1 and len(events(runtime, "recording.duplicate")) == 1


@pytest.mark.parametrize("restarted", [False, True], ids=["same-process", "hash-state-lost"])
def test_tus_resume_hashes_only_the_durable_bytes(
    client: TestClient, tokens: Tokens, runtime: Runtime, restarted: bool
) -> None:
    # The server hashes on arrival and keeps the state at each durable offset. Bytes a dead request wrote
    # after its last sync (here: appended to the part file by hand) are cut off and never hashed; a service
    # that lost the state (a restart, another worker) rebuilds it from the part file's durable prefix.
    data = bytes(range(256)) * 4096  # 1 MiB
    sha = hashlib.sha256(data).hexdigest()
    url = _create(client, tokens, "DEV-5/resumed.mp4", data)
    first = _patch(client, tokens, url, 0, data[:300_000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "300000"
    [part] = _parts(runtime)
    with open(part, "ab") as f:
        f.write(b"never synced, never recorded" * 1000)
    if restarted:
        client.app.state.arrival_hashes = ArrivalHashes()  # type: ignore[attr-defined]
    last = _patch(client, tokens, url, 300_000, data[300_000:])
    assert last.status_code == 204, last.text
    assert last.headers["X-Ingest-Status"] == "stored" and last.headers["X-Content-SHA256"] == sha
    assert b"".join(runtime.store.read(sha)) == data and runtime.store.verify(sha)
    assert _parts(runtime) == []


def test_tus_lying_claim_is_422_after_a_resume_too(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    data = b"resumed bytes that are not what was claimed" * 5000
    claimed = "ab" * 32
    url = _create(client, tokens, "clip.mp4", data, sha256=claimed)
    assert _patch(client, tokens, url, 0, data[:1000]).status_code == 204
    response = _patch(client, tokens, url, 1000, data[1000:])
    assert response.status_code == 422 and response.json()["error"]["code"] == "digest_mismatch"
    assert runtime.store.head(hashlib.sha256(data).hexdigest()) is None and runtime.store.head(claimed) is None
    assert recordings(runtime) == [] and _parts(runtime) == []


def test_tus_wrong_digest_is_422_and_nothing_is_kept(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    data = b"these are not the bytes the station hashed" * 1000
    claimed = "cd" * 32
    url = _create(client, tokens, "clip.mp4", data, sha256=claimed)
    response = _patch(client, tokens, url, 0, data)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "digest_mismatch"
    assert runtime.store.head(hashlib.sha256(data).hexdigest()) is None and runtime.store.head(claimed) is None
    assert recordings(runtime) == [] and _parts(runtime) == []
    assert _head(client, tokens, url).status_code == 404  # the upload is gone too


def test_tus_refuses_bad_requests_before_storing(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    station = {**tokens.headers("station"), **TUS}
    sha = "ab" * 32
    cases = [
        ({**tokens.headers("station"), "Upload-Length": "5"}, 412),  # no Tus-Resumable
        ({**station}, 422),  # no Upload-Length
        ({**station, "Upload-Length": "-1"}, 422),
        ({**station, "Upload-Length": "5", "Upload-Metadata": _meta(filename="x.mp4")}, 422),  # no sha256
        ({**station, "Upload-Length": "5", "Upload-Metadata": _meta(filename="x.mp4", sha256="nothex")}, 422),
        ({**station, "Upload-Length": "5", "Upload-Metadata": _meta(filename="../x.mp4", sha256=sha)}, 422),
        ({**station, "Upload-Length": "5", "Upload-Metadata": _meta(filename="x.docx", sha256=sha)}, 422),
        ({**station, "Upload-Length": "5", "Upload-Metadata": "filename !!!"}, 422),
    ]
    for headers, status in cases:
        response = client.post("/api/v1/uploads", headers=headers)
        assert response.status_code == status, (headers, response.text)
        assert response.json()["error"]["code"]
    url = _create(client, tokens, "x.mp4", b"12345")
    too_long = _patch(client, tokens, url, 0, b"123456")
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "upload_too_long"
    plain = client.patch(url, headers={**station, "Upload-Offset": "0", "Content-Type": "text/plain"}, content=b"1")
    assert plain.status_code == 415
    assert _head(client, tokens, url).headers["Upload-Offset"] == "0"  # nothing of those counted
    assert _head(client, tokens, "/api/v1/uploads/" + "0" * 32).status_code == 404
    assert recordings(runtime) == []


def test_tus_upload_belongs_to_its_token_and_head_checks_roles(
    client: TestClient, tokens: Tokens, runtime: Runtime
) -> None:
    url = _create(client, tokens, "x.mp4", b"12345")
    assert client.head(url, headers=TUS).status_code == 401
    assert _head(client, tokens, url, role="reviewer").status_code == 403
    other = make_tokens_named(runtime, "station-2")
    assert client.head(url, headers={**other, **TUS}).status_code == 404  # another station's upload is not seen


def make_tokens_named(runtime: Runtime, name: str) -> dict[str, str]:
    with transaction(runtime.sessions) as s:
        _token, secret = create_token(s, role="station", name=name, station_code="ST-OTHER", actor="test")
    return {"Authorization": f"Bearer {secret}"}


def test_tus_discovery_and_termination(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    options = client.options("/api/v1/uploads", headers=tokens.headers("station"))
    assert options.status_code == 204
    assert options.headers["Tus-Version"] == "1.0.0"
    assert set(options.headers["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    url = _create(client, tokens, "x.mp4", b"12345")
    assert _patch(client, tokens, url, 0, b"12").status_code == 204
    assert len(_parts(runtime)) == 1
    gone = client.delete(url, headers={**tokens.headers("station"), **TUS})
    assert gone.status_code == 204
    assert _parts(runtime) == [] and _head(client, tokens, url).status_code == 404


def test_nearly_full_disk_is_507_with_retry_after(runtime: Runtime, tokens: Tokens) -> None:
    full = runtime.settings.model_copy(update={"upload_min_free_mb": 1e12})  # more than any disk has
    with TestClient(create_app(full)) as c:
        headers = {**tokens.headers("station"), **TUS, "Upload-Length": "5"}
        response = c.post(
            "/api/v1/uploads", headers={**headers, "Upload-Metadata": _meta(filename="x.mp4", sha256="ab" * 32)}
        )
    assert response.status_code == 507
    assert response.json()["error"]["code"] == "insufficient_storage"
    assert int(response.headers["Retry-After"]) > 0
    assert _parts(runtime) == []


def test_uploads_never_resumed_expire_at_start_up(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    url = _create(client, tokens, "x.mp4", b"1234567890")
    assert _patch(client, tokens, url, 0, b"12345").status_code == 204
    fresh = clean_leftovers(runtime)  # not yet expired: left alone
    assert "upload" not in fresh.counts() and len(_parts(runtime)) == 1
    later = utcnow() + timedelta(hours=runtime.settings.upload_expiry_hours + 1)
    cleanup = clean_leftovers(runtime, now=later)
    assert cleanup.counts()["upload"] == 1 and cleanup.bytes >= 5
    assert _parts(runtime) == [] and _head(client, tokens, url).status_code == 404
    assert len(events(runtime, "storage.leftovers_removed")) == 1


def test_a_sidecar_uploads_and_links_to_its_recording(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    clip = media.make(tmp_path / "DEV-9_P9_20240501090000_0011.mp4", seconds=1)
    media_up = client.post("/api/v1/recordings", content=clip.read_bytes(), headers=_headers(tokens, clip))
    assert media_up.status_code == 201, media_up.text
    gps = tmp_path / "DEV-9_P9_20240501090000_0011.gps"
    gps.write_text("$GPGGA,090000,3957.0,N,11624.0,E\n")
    response = client.post("/api/v1/recordings", content=gps.read_bytes(), headers=_headers(tokens, gps))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "sidecar" and body["recording_id"] == media_up.json()["id"]
    with runtime.sessions() as s:
        [sidecar] = s.query(Sidecar).all()
        assert sidecar.recording_id == media_up.json()["id"] and sidecar.original_name == gps.name
    assert runtime.store.verify(body["sha256"])
