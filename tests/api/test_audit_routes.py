"""The audit log over HTTP and the command line: what an auditor fetches verifies offline, tampering exits 1."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from audit import merkle, notes
from audit.checkpoints import make_checkpoint
from audit.notes import Signer
from storage.db import transaction
from storage.events import append_event
from storage.runtime import Runtime
from tests.api.conftest import Tokens
from tests.fixtures.audit_log import drop_guards, fill, new_signer, pem, restore_guards, sql

BWC = str(Path(sys.executable).with_name("bwc"))


def test_checkpoint_proof_and_consistency_verify_offline(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    h = tokens.headers("auditor")
    signer = new_signer()
    missing = client.get("/api/v1/audit/checkpoint", headers=h)
    assert missing.status_code == 409 and missing.json()["error"]["code"] == "not_checkpointed"
    fill(runtime, signer, [9])  # after the token events the tokens fixture wrote
    note = client.get("/api/v1/audit/checkpoint", headers=h)
    assert note.status_code == 200 and note.headers["content-type"].startswith("text/plain")
    first = notes.open_checkpoint(note.text, signer.verifier)
    assert first.size > 9
    body = client.get("/api/v1/audit/events/3/proof", headers=h).json()
    assert (body["seq"], body["index"]) == (3, 2)
    leaf = base64.b64decode(body["leaf"])
    assert notes.verify_proof(body["proof"], leaf, signer.verifier) == (2, first)
    assert body["proof"].endswith(note.text)  # the proof's checkpoint is the latest, verbatim
    with transaction(runtime.sessions) as s:
        append_event(s, "test.more", "recording:1")
    assert client.get("/api/v1/audit/events/99/proof", headers=h).status_code == 404
    newer = client.get(f"/api/v1/audit/events/{first.size + 1}/proof", headers=h)
    assert newer.status_code == 409
    with transaction(runtime.sessions) as s:
        second = notes.open_checkpoint(make_checkpoint(s, signer).note, signer.verifier)
    got = client.get("/api/v1/audit/consistency", params={"from": first.size, "to": second.size}, headers=h).json()
    assert (got["from"], got["to"]) == (first.size, second.size)
    proof = [base64.b64decode(p) for p in got["proof"]]
    merkle.verify_consistency(first.size, second.size, first.root, second.root, proof)
    backwards = client.get("/api/v1/audit/consistency", params={"from": 5, "to": 2}, headers=h)
    assert backwards.status_code == 422
    assert client.get("/api/v1/audit/checkpoint", headers=tokens.headers("reviewer")).status_code == 403


def test_events_filter_by_subject(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        for n in range(5):
            append_event(s, "recording.viewed", f"recording:{n % 2}", actor=f"token:r{n}")
    h = tokens.headers("auditor")
    got = client.get("/api/v1/audit/events", params={"subject": "recording:1"}, headers=h).json()
    assert [(e["subject"], e["actor"]) for e in got["events"]] == [
        ("recording:1", "token:r1"),
        ("recording:1", "token:r3"),
    ]
    page = client.get("/api/v1/audit/events", params={"subject": "recording:1", "limit": 1}, headers=h).json()
    after = client.get(
        "/api/v1/audit/events", params={"subject": "recording:1", "after": page["next_after"]}, headers=h
    ).json()
    assert [e["actor"] for e in after["events"]] == ["token:r3"]
    assert client.get("/api/v1/audit/events", params={"subject": ""}, headers=h).status_code == 422


def _bwc(rt: Runtime, signer: Signer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BWC_HOME": str(rt.settings.home),
        "BWC_DATABASE_URL": rt.settings.db_url,
        "BWC_STORAGE_URL": rt.settings.store_url,
        "BWC_SIGNING_KEY": pem(signer),
    }
    env.pop("BWC_CONFIG", None)
    return subprocess.run([BWC, *args], env=env, capture_output=True, text=True, timeout=120)


def test_cli_checkpoint_public_key_verify_and_tamper(runtime: Runtime) -> None:
    signer = new_signer()
    key = _bwc(runtime, signer, "audit", "public-key")
    assert key.returncode == 0 and key.stdout == f"{signer.verifier}\n"
    fill(runtime, signer, [], tail=6)
    made = _bwc(runtime, signer, "audit", "checkpoint")
    assert made.returncode == 0, made.stderr
    assert notes.open_checkpoint(made.stdout, signer.verifier).size == 6
    ok = _bwc(runtime, signer, "audit", "verify")
    assert ok.returncode == 0 and "6 events, 1 checkpoints verified" in ok.stdout, ok.stderr
    try:
        drop_guards(runtime.engine)
        sql(runtime.engine, "UPDATE audit_events SET subject = 'recording:999' WHERE seq = 4")
        bad = _bwc(runtime, signer, "audit", "verify")
        assert bad.returncode == 1 and "first bad seq 4" in bad.stderr, bad.stderr
        as_json = _bwc(runtime, signer, "audit", "verify", "--format", "json")
        assert as_json.returncode == 1 and '"first_bad_seq": 4' in as_json.stdout
        other = _bwc(runtime, new_signer(), "audit", "verify", "--public-key", str(new_signer().verifier))
        assert other.returncode == 1 and "no signature" in other.stderr
        garbled = _bwc(runtime, signer, "audit", "verify", "--public-key", "not-a-key")
        assert garbled.returncode == 2 and "verifier key" in garbled.stderr
    finally:
        restore_guards(runtime.engine)
