"""Every reason code, each from a situation built out of real media files (issue 3)."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from audit.linking import on_actions_changed
from storage.basics import utcnow
from storage.db import transaction
from storage.models import Action
from storage.runtime import Runtime
from tests.fixtures import coverage_data as cd
from tests.fixtures.media import MediaFactory

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
END = T0 + timedelta(seconds=8)
BEFORE = T0 - timedelta(seconds=1)  # a 10 s file started here covers the whole 8 s action


class Scene:
    """One action and real files for its devices; ``evaluate`` runs the real linking path."""

    def __init__(self, runtime: Runtime, media: MediaFactory, tmp: Path) -> None:
        self.rt, self.media, self.tmp = runtime, media, tmp
        self._tone = 300

    def file(self, name: str, **kw: Any) -> Path:
        self._tone += 7  # distinct bytes for every file
        return self.media.make(self.tmp / name, tone=self._tone, **kw)

    def junk(self, name: str) -> Path:
        path = self.tmp / name
        path.write_bytes(random.Random(name).randbytes(4096))  # the same junk on every run
        return path

    def evaluate(
        self,
        files: list[tuple[str, Path, datetime]],
        devices: tuple[str, ...] = ("A", "B"),
        officers: tuple[tuple[str, bool | None], ...] = (),
        start: datetime = T0,
        end: datetime = END,
        corrupt: str | None = None,
    ) -> Action:
        with transaction(self.rt.sessions) as s:
            act = cd.action(s, "X1", start, end, devices=devices, officers=officers)
            for serial, path, started in files:
                rec = cd.stored_recording(s, self.rt.store, path, serial, started)
                if corrupt == path.name:
                    self._corrupt(rec.sha256)
                    rec.fixity_ok = self.rt.store.verify(rec.sha256)
                    rec.fixity_checked_at = utcnow()
        with transaction(self.rt.sessions) as s:
            on_actions_changed(s, self.rt.settings, [act.id], "test")
        with transaction(self.rt.sessions) as s:
            return s.scalars(select(Action)).one()

    def _corrupt(self, sha256: str) -> None:
        path = Path(self.rt.settings.home / "objects" / f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}")
        os.chmod(path, 0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))


@pytest.fixture
def scene(runtime: Runtime, media: MediaFactory, tmp_path: Path) -> Scene:
    return Scene(runtime, media, tmp_path / "files")


def codes(act: Action) -> list[str]:
    return [r["code"] for r in act.reasons]


def test_two_real_recordings_covering_the_action_are_complete(scene: Scene) -> None:
    act = scene.evaluate(
        [("A", scene.file("a.mp4", seconds=10), BEFORE), ("B", scene.file("b.mp4", seconds=10), BEFORE)]
    )
    assert act.verdict == "complete"
    assert act.reasons == []


def test_too_few_devices(scene: Scene) -> None:
    act = scene.evaluate([("A", scene.file("a.mp4", seconds=10), BEFORE)], devices=("A",))
    assert act.reasons[0] == {"code": "too_few_devices", "devices": 1, "min_devices": 2}
    assert act.verdict == "incomplete"


def test_shortfall_where_the_second_camera_stopped_early(scene: Scene) -> None:
    b = scene.file("b.mp4", seconds=4)
    act = scene.evaluate([("A", scene.file("a.mp4", seconds=10), BEFORE), ("B", b, T0)])
    (reason,) = act.reasons
    assert reason["code"] == "shortfall"
    assert reason["devices_recording"] == ["A"]
    stopped = datetime.fromisoformat(reason["from"])
    # B's real file is about 4 s long: the shortfall starts where its probed duration ends
    assert T0 + timedelta(seconds=3.5) < stopped < T0 + timedelta(seconds=4.5)
    assert reason["to"] == END.isoformat()
    assert act.verdict == "incomplete"


def test_no_audio(scene: Scene) -> None:
    mute = scene.file("b.mp4", seconds=10, audio=False)
    act = scene.evaluate([("A", scene.file("a.mp4", seconds=10), BEFORE), ("B", mute, BEFORE)])
    assert codes(act) == ["shortfall", "no_audio"]
    assert act.reasons[1]["device"] == "B"
    assert act.reasons[0]["devices_recording"] == ["A"]
    assert act.verdict == "incomplete"


def test_no_video_for_an_audio_only_file(scene: Scene) -> None:
    voice = scene.file("b.m4a", seconds=10, video=False)
    act = scene.evaluate([("A", scene.file("a.mp4", seconds=10), BEFORE), ("B", voice, BEFORE)])
    assert codes(act) == ["shortfall", "no_video"]


def test_unplayable(scene: Scene) -> None:
    act = scene.evaluate([("A", scene.file("a.mp4", seconds=10), BEFORE), ("B", scene.junk("b.mp4"), T0)])
    assert "unplayable" in codes(act)
    (unplayable,) = [r for r in act.reasons if r["code"] == "unplayable"]
    assert unplayable["device"] == "B"
    assert act.verdict == "incomplete"


def test_no_footage_when_nothing_linked_is_usable(scene: Scene) -> None:
    act = scene.evaluate([("A", scene.file("a.mp4", seconds=10, audio=False), BEFORE), ("B", scene.junk("b.mp4"), T0)])
    assert codes(act) == ["no_footage", "shortfall", "no_audio", "unplayable"]
    assert act.reasons[1]["devices_recording"] == []
    assert act.verdict == "incomplete"


def test_uncertified_when_only_auxiliary_staff_took_part(scene: Scene) -> None:
    files = [("A", scene.file("a.mp4", seconds=10), BEFORE), ("B", scene.file("b.mp4", seconds=10), BEFORE)]
    act = scene.evaluate(files, officers=(("XG001", False), ("XG002", False)))
    assert codes(act) == ["uncertified"]
    assert act.verdict == "incomplete"


def test_integrity_when_a_linked_recording_fails_fixity(scene: Scene) -> None:
    a, b = scene.file("a.mp4", seconds=10), scene.file("b.mp4", seconds=10)
    act = scene.evaluate([("A", a, BEFORE), ("B", b, BEFORE)], corrupt="b.mp4")
    assert "integrity" in codes(act)
    (integrity,) = [r for r in act.reasons if r["code"] == "integrity"]
    assert integrity["device"] == "B"
    # the damaged recording is not coverage either
    assert [r["devices_recording"] for r in act.reasons if r["code"] == "shortfall"] == [["A"]]
    assert act.verdict == "incomplete"


def test_recent_shortfall_is_pending_until_the_grace_period_ends(scene: Scene) -> None:
    start = utcnow().replace(microsecond=0) - timedelta(minutes=10)
    end = start + timedelta(seconds=8)
    act = scene.evaluate(
        [("A", scene.file("a.mp4", seconds=10), start - timedelta(seconds=1))], start=start, end=end, devices=("A", "B")
    )
    assert act.verdict == "pending"
    assert act.pending_until == end + timedelta(hours=24)
