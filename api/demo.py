"""A small, true city for a first look (``bwc demo``) and for the browser tests.

Two units, five officers carrying five cameras, clips rendered by ffmpeg and taken in by the real ingest
pipeline, actions imported from a CSV: every page then has something real to show. The story it tells:

- ``DEMO-01`` two cameras film it all: complete;
- ``DEMO-02`` CAM-N03 joins 30 s late (its clock also runs 8 s slow, corrected by its offset) and CAM-N01
  stops for 15 s mid-way: two shortfalls;
- ``DEMO-03`` CAM-S01 recorded without sound: it does not count, so one camera is not enough;
- ``DEMO-04`` a single-device action: the second camera it needs is missing altogether, and CAM-S02's only
  clip that day is an unreadable file (unplayable);
- ``DEMO-05`` yesterday's patrol, whose cameras docked only now: late uploads, and a gap in CAM-N01's file
  numbers (one file never arrived).

Times are relative to now, so verdicts come out the same on any day. Running it again adds nothing new:
imports report the rows as unchanged and ingest sees the same bytes again.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from api.auth import create_token
from audit.imports import import_actions, import_assignments, import_devices, import_officers
from config.errors import BwcError
from config.settings import Settings
from ingest.pipeline import ingest_file
from storage.basics import utcnow
from storage.db import transaction
from storage.init import initialize
from storage.runtime import Runtime, build_runtime

ACTOR = "demo"
STATION = "ST-DEMO"
ANCHOR = "scenes.txt"
WIDTH, HEIGHT, FPS = 320, 180, 10

DEVICES_CSV = """serial,model,unit,clock_offset_seconds
CAM-N01,DSJ-A8,NORTH,0
CAM-N02,DSJ-A8,NORTH,0
CAM-N03,DSJ-A8,NORTH,8
CAM-S01,DSJ-V7,SOUTH,0
CAM-S02,DSJ-V7,SOUTH,0
"""
OFFICERS_CSV = """code,name,unit,certified
P1001,王伟,NORTH,true
P1002,李娜,NORTH,true
P1003,张强,NORTH,true
P2001,刘洋,SOUTH,true
P2002,陈静,SOUTH,true
"""
ASSIGNMENTS = (("CAM-N01", "P1001"), ("CAM-N02", "P1002"), ("CAM-N03", "P1003"), ("CAM-S01", "P2001"))


@dataclass(frozen=True)
class Clip:
    """One camera file: its device, when its own clock says it started (offset from the scene), how long."""

    device: str
    officer: str
    start: float  # seconds after the scene's start, on the device's own clock
    seconds: float
    sequence: int
    audio: bool = True
    readable: bool = True
    scene: str = "today"


@dataclass(frozen=True)
class DemoAction:
    action_id: str
    case_number: str
    unit: str
    start: float  # seconds after the scene's start
    seconds: float
    officers: str
    devices: str
    location: str
    kind: str
    scene: str = "today"


ACTIONS = (
    DemoAction("DEMO-01", "CASE-DEMO-001", "NORTH", 0, 60, "P1001;P1002", "", "人民路 12 号", "traffic stop"),
    DemoAction("DEMO-02", "CASE-DEMO-002", "NORTH", 300, 90, "P1001;P1003", "", "解放路与中山路口", "arrest"),
    DemoAction("DEMO-03", "CASE-DEMO-003", "SOUTH", 600, 60, "", "CAM-S01;CAM-S02", "滨江公园", "inspection"),
    DemoAction("DEMO-04", "CASE-DEMO-004", "SOUTH", 900, 60, "", "CAM-S02", "南站广场", "inspection"),
    DemoAction("DEMO-05", "CASE-DEMO-005", "NORTH", 0, 60, "P1001;P1002", "", "北环路", "patrol", "yesterday"),
)
CLIPS = (
    Clip("CAM-N01", "P1001", -5, 70, 1),
    Clip("CAM-N02", "P1002", -3, 66, 1),
    # DEMO-02: N01 stops 40 s in and starts again 15 s later; N03's clock runs 8 s slow, it joins 30 s late
    Clip("CAM-N01", "P1001", 295, 45, 2),
    Clip("CAM-N01", "P1001", 355, 40, 3),
    Clip("CAM-N03", "P1003", 322, 70, 1),
    # DEMO-03: S01 films it all, but without sound; S02 films it all
    Clip("CAM-S01", "P2001", 595, 70, 1, audio=False),
    Clip("CAM-S02", "P2002", 595, 70, 1),
    # DEMO-04: S02's file from that scene cannot be read
    Clip("CAM-S02", "P2002", 905, 50, 2, readable=False),
    # DEMO-05, yesterday: N01's file 0005 never arrived (0004 and 0006 did)
    Clip("CAM-N01", "P1001", -2, 64, 4, scene="yesterday"),
    Clip("CAM-N01", "P1001", 300, 20, 6, scene="yesterday"),
    Clip("CAM-N02", "P1002", -4, 66, 2, scene="yesterday"),
)


@dataclass(frozen=True)
class DemoCity:
    """What ``fill`` made: the reviewer's sign-in secret and when each scene began (UTC)."""

    token: str
    scenes: dict[str, datetime]
    actions: tuple[str, ...]
    recordings: int


class DemoError(BwcError):
    code = "demo_failed"
    http_status = 500
    exit_code = 1


def scenes(now: datetime) -> dict[str, datetime]:
    """Today's scene began two hours ago (within the upload deadline), yesterday's 30 hours ago (past it)."""
    return _scenes_from(now.replace(second=0, microsecond=0) - timedelta(hours=2))


def _scenes_from(today: datetime) -> dict[str, datetime]:
    return {"today": today, "yesterday": today - timedelta(hours=28)}


def fill(settings: Settings, *, now: datetime | None = None) -> DemoCity:
    """Initialise ``settings.home`` and fill it with the demo city; returns a new reviewer token.

    The first run writes when its scenes began to ``demo-card/scenes.txt``; a later run keeps those times,
    so running it again adds nothing however much later it runs (a minute boundary used to move the clips).
    """
    for _line in initialize(settings):
        pass
    at = _anchor(settings.home / "demo-card" / ANCHOR, now or utcnow())
    rt = build_runtime(settings)
    try:
        _registry(rt, at)
        count = _ingest(rt, at, settings.home / "demo-card")
        _actions(rt, at)
        with transaction(rt.sessions) as s:
            # the demo reviewer sees both units (SPEC §15), so every page has something to show
            _token, secret = create_token(
                s, role="reviewer", name=f"demo-reviewer-{utcnow():%H%M%S}", units=["NORTH", "SOUTH"], actor=ACTOR
            )
    finally:
        rt.close()
    return DemoCity(secret, at, tuple(a.action_id for a in ACTIONS), count)


def _anchor(path: Path, now: datetime) -> dict[str, datetime]:
    """The scenes of the first run, kept beside its clips; a new city's scenes when there is none yet."""
    try:
        kept = datetime.fromisoformat(path.read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        at = scenes(now)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(at["today"].isoformat() + "\n", encoding="utf-8")
        return at
    except ValueError as exc:
        raise DemoError(f"{path} does not hold a time ({exc}); remove it to start a new demo city") from exc
    return _scenes_from(kept)


def _check(report: object, what: str) -> None:
    errors = getattr(report, "errors", None)
    if errors:
        raise DemoError(f"the demo's {what} did not import: {errors}")


def _registry(rt: Runtime, at: dict[str, datetime]) -> None:
    since = (at["yesterday"] - timedelta(days=30)).astimezone(rt.settings.tz).strftime("%Y-%m-%d")
    assignments = "device,officer,from,to\n" + "".join(f"{d},{o},{since},\n" for d, o in ASSIGNMENTS)
    with transaction(rt.sessions) as s:
        _check(import_devices(s, rt.settings, DEVICES_CSV.encode(), ACTOR, "demo-devices.csv"), "devices")
        _check(import_officers(s, rt.settings, OFFICERS_CSV.encode(), ACTOR, "demo-officers.csv"), "officers")
        _check(import_assignments(s, rt.settings, assignments.encode(), ACTOR, "demo-assignments.csv"), "assignments")


def _ingest(rt: Runtime, at: dict[str, datetime], card: Path) -> int:
    """Render every clip into a docking station's folder and take each in through the real pipeline."""
    card.mkdir(parents=True, exist_ok=True)
    stored = 0
    for clip in CLIPS:
        start = (at[clip.scene] + timedelta(seconds=clip.start)).astimezone(rt.settings.tz)
        name = f"{clip.device}_{clip.officer}_{start:%Y%m%d%H%M%S}_{clip.sequence:04d}.mp4"
        path = card / clip.device / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if clip.readable:
            render(path, clip.seconds, audio=clip.audio, label=name)
        else:
            path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\xde\xad\xbe\xef" * 4096)  # a truncated, broken file
        outcome = ingest_file(rt, card, path, STATION, ACTOR)
        if outcome.status not in ("stored", "duplicate", "skipped_seen"):
            raise DemoError(f"the demo clip {name} was not stored: {outcome.status}")
        stored += 1
    return stored


def _actions(rt: Runtime, at: dict[str, datetime]) -> None:
    lines = ["action_id,case_number,unit,started_at,ended_at,officers,devices,location,kind"]
    for a in ACTIONS:
        start = at[a.scene] + timedelta(seconds=a.start)
        end = start + timedelta(seconds=a.seconds)
        lines.append(
            f"{a.action_id},{a.case_number},{a.unit},{start.isoformat()},{end.isoformat()},"
            f"{a.officers},{a.devices},{a.location},{a.kind}"
        )
    with transaction(rt.sessions) as s:
        report = import_actions(s, rt.settings, ("\n".join(lines) + "\n").encode(), ACTOR, "demo-actions.csv")
        _check(report, "actions")


def render(dest: Path, seconds: float, *, audio: bool = True, label: str = "") -> Path:
    """An H.264/AAC MP4 a browser plays: a test pattern with the running time burnt in, and a tone."""
    if shutil.which("ffmpeg") is None:
        raise DemoError("ffmpeg is needed to make the demo's clips: install it (make setup does)")
    video = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds}"
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=8000"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(FPS)]
    if audio:
        args += ["-c:a", "aac", "-b:a", "32k"]
    args += ["-movflags", "+faststart", "-metadata", f"title={label}", str(dest)]
    subprocess.run(args, check=True)
    return dest
