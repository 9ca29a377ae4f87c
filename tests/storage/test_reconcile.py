"""``bwc storage reconcile``: objects no recording or sidecar names are listed, with --apply recorded, never
deleted — on the local store and on S3, on both databases."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli.main import app
from config.settings import Settings, get_settings
from ingest.pipeline import ingest_file
from storage.db import transaction
from storage.events import event_details
from storage.local_store import LocalStore
from storage.models import AuditEvent
from storage.reconcile import EVENT_KIND, reconcile
from storage.runtime import Runtime, build_runtime
from tests.fixtures.media import MediaFactory

NAME = "DSJ-A001_001_20240501083000_0001.mp4"


def _events(rt: Runtime) -> list[AuditEvent]:
    with rt.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.kind == EVENT_KIND).order_by(AuditEvent.seq)))


def _reconcile(rt: Runtime, apply: bool) -> dict[str, object]:
    with transaction(rt.sessions) as s:
        return reconcile(s, rt.store, apply=apply, actor="test").json()


def _changed_mid_read(rt: Runtime, media: MediaFactory) -> str:
    """A file that grows while it is read: its first bytes plus one get stored, the commit is refused."""
    path = media.make(rt.settings.inbox_path / "DSJ-A001_001_20240501090000_0002.mp4", seconds=1, tone=700)
    original = path.read_bytes()
    grown: list[int] = []

    def append(_n: int) -> None:
        if not grown:
            with open(path, "ab") as f:
                grown.append(f.write(b"still copying"))

    outcome = ingest_file(rt, rt.settings.inbox_path, path, "ST-1", on_chunk=append)
    assert outcome.reason == "changed_while_reading"
    return hashlib.sha256(original + b"s").hexdigest()  # what was read: size + 1 bytes


def test_local_store_lists_then_records_orphans_and_keeps_them(runtime: Runtime, media: MediaFactory) -> None:
    inbox = runtime.settings.inbox_path
    kept = ingest_file(runtime, inbox, media.make(inbox / NAME), "ST-1")
    assert kept.status == "stored"
    orphan = _changed_mid_read(runtime, media)
    store = runtime.store
    assert isinstance(store, LocalStore)
    stray = store.root / "sha256" / "zz" / "zz" / "not-a-digest"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"who put this here")

    listed = _reconcile(runtime, apply=False)

    assert listed["objects_checked"] == 3
    entries = listed["unreferenced"]
    assert isinstance(entries, list)
    assert {(e["sha256"], e["recorded"]) for e in entries} == {(orphan, False), (None, False)}
    assert _events(runtime) == []  # listing alone records nothing

    applied = _reconcile(runtime, apply=True)

    assert applied["recorded_now"] == 2
    events = _events(runtime)
    assert {e.subject for e in events} == {f"object:{orphan}", "object-key:sha256/zz/zz/not-a-digest"}
    assert all(event_details(e)["size"] > 0 for e in events)
    assert store.verify(orphan) and stray.exists()  # write-once: recorded, never deleted
    again = _reconcile(runtime, apply=True)
    assert again["recorded_now"] == 0 and len(_events(runtime)) == 2
    entries = again["unreferenced"]
    assert isinstance(entries, list) and all(e["recorded"] for e in entries)


def test_a_clean_store_has_nothing_to_report(runtime: Runtime, media: MediaFactory) -> None:
    path = media.make(runtime.settings.inbox_path / NAME)
    side = path.with_suffix(".gps")
    side.write_text("$GPGGA,083000\n")
    outcome = ingest_file(runtime, runtime.settings.inbox_path, path, "ST-1")
    assert outcome.status == "stored" and [s.status for s in outcome.sidecars] == ["stored"]

    result = _reconcile(runtime, apply=True)

    assert (result["objects_checked"], result["unreferenced_count"], result["recorded_now"]) == (2, 0, 0)


@pytest.fixture
def s3_runtime(settings: Settings, s3_bucket_url: str) -> Iterator[Runtime]:
    url = s3_bucket_url.replace("?", "/some/prefix?", 1)  # keys live under a prefix; the listing strips it
    rt = build_runtime(Settings(home=settings.home, database_url=settings.database_url, storage_url=url))
    rt.store.ensure_ready()
    rt.settings.inbox_path.mkdir(parents=True, exist_ok=True)
    yield rt
    rt.close()


def test_s3_store_lists_and_records_orphans(s3_runtime: Runtime, media: MediaFactory) -> None:
    inbox = s3_runtime.settings.inbox_path
    kept = ingest_file(s3_runtime, inbox, media.make(inbox / NAME), "ST-1")
    assert kept.status == "stored"
    orphan = s3_runtime.store.put(io.BytesIO(b"a partial prefix nobody committed"))

    listed = _reconcile(s3_runtime, apply=False)
    assert listed["objects_checked"] == 2
    assert listed["unreferenced"] == [{"key": orphan.key.split("some/prefix/", 1)[1], "sha256": orphan.sha256,
                                       "size": orphan.size, "recorded": False}]  # fmt: skip

    applied = _reconcile(s3_runtime, apply=True)
    assert applied["recorded_now"] == 1 and [e.subject for e in _events(s3_runtime)] == [f"object:{orphan.sha256}"]
    assert s3_runtime.store.verify(orphan.sha256)


def test_the_command_prints_json_and_exits_0_with_orphans(
    runtime: Runtime, media: MediaFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = _changed_mid_read(runtime, media)
    for name in ("BWC_HOME", "BWC_DATABASE_URL", "BWC_CONFIG", "BWC_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BWC_HOME", str(runtime.settings.home))
    monkeypatch.setenv("BWC_DATABASE_URL", runtime.settings.db_url)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        listed = runner.invoke(app, ["storage", "reconcile", "--format", "json"])
        applied = runner.invoke(app, ["storage", "reconcile", "--apply"])
    finally:
        get_settings.cache_clear()

    assert listed.exit_code == 0, listed.output  # a report, not a failure
    doc = json.loads(listed.stdout)
    assert [u["sha256"] for u in doc["unreferenced"]] == [orphan] and doc["applied"] is False
    assert applied.exit_code == 0 and "1 newly recorded" in applied.stdout
    assert len(_events(runtime)) == 1
