"""Recording metadata, listing and audited content reads with HTTP Range (SPEC §8, §12)."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens, events, ingest
from tests.fixtures.media import MediaFactory


def test_show_recording_has_the_spec_shape(client: TestClient, tokens: Tokens, recording: Ingested) -> None:
    for role in ("reviewer", "auditor"):
        body = client.get(f"/api/v1/recordings/{recording.id}", headers=tokens.headers(role)).json()
        assert body["id"] == recording.id
        assert body["sha256"] == recording.sha256
        assert body["size"] == recording.size
        assert body["device"] == "DEV-7"
        assert body["officer"] == "P100"
        assert body["original_name"] == recording.path.name
        assert body["started_at"] == "2024-05-01T08:00:00+00:00"
        assert body["time_source"] == "filename"
        assert body["status"] == "ok" and body["has_video"] and body["has_audio"]
        assert abs(body["duration_seconds"] - 2.0) < 0.2


def test_unknown_recording_is_404_in_the_error_shape(client: TestClient, tokens: Tokens) -> None:
    response = client.get("/api/v1/recordings/424242", headers=tokens.headers("reviewer"))
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no recording 424242"}}


def test_list_filters_by_device_and_time(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    a = ingest(runtime, media.make(tmp_path / "a" / "DEV-1_P1_20240501080000_0001.mp4", seconds=2))
    b = ingest(runtime, media.make(tmp_path / "b" / "DEV-2_P2_20240502080000_0001.mp4", seconds=2, tone=500))
    h = tokens.headers("auditor")

    def ids(**params: str) -> list[int]:
        response = client.get("/api/v1/recordings", params=params, headers=h)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["recordings"]]

    assert ids() == [a.id, b.id]
    assert ids(device="DEV-2") == [b.id]
    assert ids(device="NOPE") == []
    assert ids(**{"from": "2024-05-02"}) == [b.id]
    assert ids(to="2024-05-01") == [a.id]  # a date as `to` means that whole day
    assert ids(**{"from": "2024-05-01T08:00:01Z", "to": "2024-05-01T08:00:01Z"}) == [a.id]  # overlaps
    assert ids(**{"from": "2024-05-01T08:00:03Z", "to": "2024-05-01T09:00:00Z"}) == []
    assert ids(limit="1", offset="1") == [b.id]


def test_list_rejects_bad_parameters_with_422(client: TestClient, tokens: Tokens) -> None:
    h = tokens.headers("reviewer")
    for params in ({"from": "yesterday"}, {"limit": "0"}, {"limit": "x"}, {"to": "2024-13-40"}):
        response = client.get("/api/v1/recordings", params=params, headers=h)
        assert response.status_code == 422, params
        assert response.json()["error"]["code"] == "bad_input"
        assert response.json()["error"]["message"]


def test_content_whole_file_is_audited_before_it_is_sent(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    response = client.get(f"/api/v1/recordings/{recording.id}/content", headers=tokens.headers("reviewer"))
    assert response.status_code == 200
    assert response.content == recording.path.read_bytes()
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(recording.size)
    assert response.headers["etag"] == f'"{recording.sha256}"'
    reads = events(runtime, "evidence.read")
    assert len(reads) == 1
    assert reads[0].actor == "token:reviewer-1"
    assert reads[0].subject == f"recording:{recording.id}"
    assert json.loads(reads[0].details)["sha256"] == recording.sha256
    assert "range" not in json.loads(reads[0].details)


def test_content_ranges(client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested) -> None:
    data = recording.path.read_bytes()
    size = len(data)
    url = f"/api/v1/recordings/{recording.id}/content"
    h = tokens.headers("admin")

    r = client.get(url, headers={**h, "Range": "bytes=10-109"})
    assert r.status_code == 206
    assert r.content == data[10:110]
    assert r.headers["content-range"] == f"bytes 10-109/{size}"
    assert r.headers["content-length"] == "100"

    r = client.get(url, headers={**h, "Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == data[-50:]
    assert r.headers["content-range"] == f"bytes {size - 50}-{size - 1}/{size}"

    r = client.get(url, headers={**h, "Range": f"bytes={size - 5}-"})
    assert r.status_code == 206 and r.content == data[-5:]

    r = client.get(url, headers={**h, "Range": f"bytes=0-{size + 1000}"})  # clipped to the object
    assert r.status_code == 206 and r.content == data

    r = client.get(url, headers={**h, "Range": "bytes=0-1,5-9"})  # several ranges: the whole object
    assert r.status_code == 200 and r.content == data

    r = client.get(url, headers={**h, "Range": f"bytes={size}-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{size}"
    assert r.json()["error"]["code"] == "range_not_satisfiable"

    reads = events(runtime, "evidence.read")
    # every read that sent bytes is an event; the unsatisfiable one sent none
    assert len(reads) == 5
    assert json.loads(reads[0].details)["range"] == [10, 109]
    assert {e.actor for e in reads} == {"token:admin-1"}


def test_content_type_follows_the_extension(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    photo = ingest(runtime, media.make(tmp_path / "p" / "DEV-3_P3_20240501080000_0002.jpg"))
    sound = ingest(runtime, media.make(tmp_path / "s" / "DEV-3_P3_20240501080000_0003.wav", video=False))
    h = tokens.headers("reviewer")
    assert client.get(f"/api/v1/recordings/{photo.id}/content", headers=h).headers["content-type"] == "image/jpeg"
    assert client.get(f"/api/v1/recordings/{sound.id}/content", headers=h).headers["content-type"] == "audio/wav"


def test_auditor_reads_metadata_but_not_content(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    h = tokens.headers("auditor")
    assert client.get(f"/api/v1/recordings/{recording.id}", headers=h).status_code == 200
    assert client.get(f"/api/v1/recordings/{recording.id}/content", headers=h).status_code == 403
    assert events(runtime, "evidence.read") == []
