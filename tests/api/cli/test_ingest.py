"""``bwc watch``, ``bwc ingest FILE…`` and ``bwc ingest status`` (api/cli/cmd_ingest.py) as a user runs them."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from storage.events import event_details
from storage.runtime import Runtime
from tests.fixtures.cli import Invoke
from tests.fixtures.media import MediaFactory
from tests.ingest.conftest import Db

NAME = "DSJ-A001_001_20240501083000_0001.mp4"


def test_ingest_files_stores_them_and_says_so_in_json(
    runtime: Runtime, media: MediaFactory, cli: Invoke, db: Db, tmp_path: Path
) -> None:
    a = media.make(tmp_path / "card" / NAME)
    b = media.make(tmp_path / "card" / "DSJ-A001_001_20240501083500_0002.mp4", tone=600)

    result = cli("ingest", str(a), str(b), "--station", "ST-9", "--format", "json")

    assert result.exit_code == 0, result.output
    outcomes = json.loads(result.stdout)
    assert [(o["path"], o["status"]) for o in outcomes] == [(a.name, "stored"), (b.name, "stored")]
    assert {r.station.code for r in db.recordings() if r.station} == {"ST-9"}
    # the explicit subcommand name works too, and a second time it is already seen
    again = cli("ingest", "files", str(a), "--station", "ST-9", "--format", "json")
    assert again.exit_code == 0 and json.loads(again.stdout)[0]["status"] == "skipped_seen"
    # from another station the same bytes are a duplicate sighting, not a second recording
    other = cli("ingest", str(a), "--format", "json")
    assert json.loads(other.stdout)[0]["status"] == "duplicate" and db.count_recordings() == 2


def test_ingest_a_file_in_the_inbox_keeps_its_folder(
    runtime: Runtime, inbox: Path, media: MediaFactory, cli: Invoke, db: Db
) -> None:
    path = media.make(inbox / "DSJ-A001" / NAME)

    result = cli("ingest", "--station", "default", str(path))  # options may come first

    assert result.exit_code == 0, result.output
    [rec] = db.recordings()
    assert rec.source_path == f"DSJ-A001/{NAME}" and rec.station is not None and rec.station.code == "default"
    assert "stored" in result.stdout


def test_ingest_exits_1_and_names_the_failed_file(runtime: Runtime, inbox: Path, cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "secret.mp4").write_bytes(b"not yours")
    (inbox / "link.mp4").symlink_to(tmp_path / "secret.mp4")

    result = cli("ingest", str(inbox / "link.mp4"))

    assert result.exit_code == 1
    assert "link.mp4" in result.stderr and "unsafe_path" in result.stderr


def test_ingest_a_missing_file_is_bad_usage(runtime: Runtime, cli: Invoke, tmp_path: Path) -> None:
    result = cli("ingest", str(tmp_path / "nope.mp4"))
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_ingest_status_lists_open_failures(runtime: Runtime, inbox: Path, cli: Invoke, tmp_path: Path) -> None:
    assert cli("ingest", "status", "--format", "json").stdout.strip() == "[]"
    (tmp_path / "secret.mp4").write_bytes(b"not yours")
    (inbox / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    cli("ingest", str(inbox / "link.mp4"))
    cli("ingest", str(inbox / "link.mp4"))

    result = cli("ingest", "status", "--format", "json")

    assert result.exit_code == 0
    [failure] = json.loads(result.stdout)
    assert (failure["station"], failure["path"], failure["reason"], failure["attempts"]) == (
        "default",
        "link.mp4",
        "unsafe_path",
        2,
    )
    assert failure["next_attempt_at"] > failure["last_failed_at"]
    table = cli("ingest", "status")
    assert table.exit_code == 0 and "unsafe_path" in table.stdout


def test_watch_once_ingests_the_backlog_and_exits(
    runtime: Runtime, inbox: Path, media: MediaFactory, cli: Invoke, db: Db
) -> None:
    media.make(inbox / "DSJ-A001" / NAME)
    media.make(inbox / "DSJ-A002" / "DSJ-A002_002_20240501083000_0001.mp4", tone=700)

    result = cli("watch", str(inbox), "--once", "--station", "ST-3", "--format", "json")

    assert result.exit_code == 0, result.output
    assert sorted(o["status"] for o in json.loads(result.stdout)) == ["stored", "stored"]
    assert db.count_recordings() == 2
    quiet = cli("watch", str(inbox), "--once", "--station", "ST-3")
    assert quiet.exit_code == 0 and "2 skipped_seen" in quiet.stdout


def test_watch_once_exits_1_when_a_file_failed(
    runtime: Runtime, inbox: Path, media: MediaFactory, cli: Invoke, db: Db, tmp_path: Path
) -> None:
    media.make(inbox / NAME)
    (tmp_path / "secret.mp4").write_bytes(b"not yours")
    (inbox / "escape.mp4").symlink_to(tmp_path / "secret.mp4")

    result = cli("watch", str(inbox), "--once")

    assert result.exit_code == 1
    assert "escape.mp4" in result.stderr and db.count_recordings() == 1


def test_watch_a_missing_folder_is_bad_usage(runtime: Runtime, cli: Invoke, tmp_path: Path) -> None:
    assert cli("watch", str(tmp_path / "nowhere"), "--once").exit_code == 2


def test_messages_on_a_pipe_are_never_wrapped(runtime: Runtime, cli: Invoke, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / ("e" * 100)
    result = cli("ingest", str(deep / "nope.mp4"))
    assert len(str(deep)) > 200
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line == f"error: {deep / 'nope.mp4'}: no such file"


def test_watch_starts_by_removing_old_leftovers_and_status_shows_it(
    runtime: Runtime, inbox: Path, cli: Invoke, db: Db
) -> None:
    part = runtime.settings.home / "objects" / ".incoming" / "crashed.part"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"x" * 321)
    old = time.time() - 2 * 3600
    os.utime(part, (old, old))

    result = cli("watch", str(inbox), "--once")

    assert result.exit_code == 0, result.output
    assert not part.exists()
    [event] = db.events("storage.leftovers_removed")
    assert event_details(event)["counts"] == {"part": 1}
    status = cli("ingest", "status")
    assert status.exit_code == 0 and "last leftovers clean-up" in status.stdout
    assert "1 part (321 bytes)" in status.stdout
