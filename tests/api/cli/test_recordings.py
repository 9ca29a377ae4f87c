"""``bwc recordings list`` (api/cli/cmd_recordings.py): SPEC §12's shape, the device filter and the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.runtime import Runtime
from tests.fixtures.cli import Invoke
from tests.fixtures.media import MediaFactory

NAME = "DSJ-A001_001_20240501083000_0001.mp4"
RECORDING_KEYS = {
    "id", "sha256", "size", "device", "station", "officer", "original_name", "started_at", "ended_at",
    "duration_seconds", "has_video", "has_audio", "status", "time_source", "received_at",
}  # fmt: skip


@pytest.mark.parametrize("device", ["DSJ-A001", None])
def test_recordings_list_has_the_spec_shape_and_filters_by_device(
    runtime: Runtime, inbox: Path, media: MediaFactory, cli: Invoke, device: str | None
) -> None:
    media.make(inbox / NAME)
    media.make(inbox / "DSJ-B002_007_20240501090000_0003.mp4", tone=500)
    assert cli("watch", str(inbox), "--once").exit_code == 0

    args = ["recordings", "list", "--format", "json"] + (["--device", device] if device else [])
    result = cli(*args)

    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert sorted(r["device"] for r in rows) == (["DSJ-A001"] if device else ["DSJ-A001", "DSJ-B002"])
    for row in rows:
        assert set(row) >= RECORDING_KEYS
        assert row["status"] == "ok" and row["time_source"] == "filename"
        for key in ("started_at", "ended_at", "received_at"):
            assert row[key].endswith("+00:00")
    a001 = next(r for r in rows if r["device"] == "DSJ-A001")
    assert (a001["officer"], a001["started_at"], a001["original_name"]) == ("001", "2024-05-01T08:30:00+00:00", NAME)
    table = cli("recordings", "list")
    assert table.exit_code == 0 and "DSJ-A001" in table.stdout
