"""Identical bytes under a name claiming another device or start time (SPEC §4): stored once, a
``duplicate_conflict`` finding on the recording, never merged silently; a plain re-sighting is no finding."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import func, select

from ingest.pipeline import ingest_file
from storage.models import Finding, Recording
from storage.runtime import Runtime
from tests.fixtures.media import MediaFactory

CONFLICT = "duplicate_conflict"  # the file is also a late upload (recorded in 2024): a finding of its own


def _ingest(rt: Runtime, path: Path) -> str:
    return ingest_file(rt, path.parent, path, "ST-DUP").status


def test_a_name_claiming_another_camera_is_a_finding(runtime: Runtime, media: MediaFactory, tmp_path: Path) -> None:
    rt = runtime
    first = media.make(tmp_path / "a" / "CAM-1_P1_20240501080000_0001.mp4", seconds=1)
    assert _ingest(rt, first) == "stored"
    same = tmp_path / "b" / "CAM-1_P1_20240501080000_0001.mp4"
    same.parent.mkdir()
    shutil.copy(first, same)
    assert _ingest(rt, same) == "duplicate"
    with rt.sessions() as s:
        assert (
            s.scalar(select(func.count()).select_from(Finding).where(Finding.kind == CONFLICT)) == 0
        )  # the same claim again: no conflict

    for name in ("CAM-2_P1_20240501080000_0001.mp4", "CAM-1_P1_20240502090000_0001.mp4"):
        other = tmp_path / name.split("_")[0] / name.replace(".mp4", "") / name
        other.parent.mkdir(parents=True)
        shutil.copy(first, other)
        assert _ingest(rt, other) == "duplicate"
    with rt.sessions() as s:
        [rec] = s.scalars(select(Recording))
        [finding] = s.scalars(select(Finding).where(Finding.kind == CONFLICT))
    assert rec.device is not None and rec.device.serial == "CAM-1"  # never merged: the stored facts stand
    assert (finding.kind, finding.subject, finding.status) == ("duplicate_conflict", f"recording:{rec.id}", "open")
    assert finding.details["claimed_device"] == "CAM-2" and finding.details["stored_device"] == "CAM-1"
