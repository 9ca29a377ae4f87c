"""An action's timeline as plain geometry for an inline SVG: one lane per device, bars, shortfall bands.

Values in, values out: the template draws what :func:`build_timeline` returns, so the layout can be tested
without a browser. Times are aware datetimes; x positions are SVG user units on a fixed-width canvas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from storage.models import Recording

WIDTH = 1000.0
LABEL_WIDTH = 150.0
PLOT_RIGHT = 10.0
LANE_HEIGHT = 30.0
BAR_HEIGHT = 18.0
TOP = 6.0
AXIS_HEIGHT = 26.0
MAX_TICKS = 8
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
CONTEXT_SHARE = 0.05  # context shown on each side of the window, as a share of its length


@dataclass(frozen=True)
class BarIn:
    """A recording on the action's clock (the device's clock offset already applied)."""

    recording_id: int
    device: str
    start: datetime
    end: datetime | None
    problem: str | None = None  # a reason code when the recording does not count as coverage


@dataclass(frozen=True)
class Bar:
    recording_id: int
    x: float
    width: float
    y: float
    problem: str | None
    start: datetime
    end: datetime | None
    clipped: bool


@dataclass(frozen=True)
class Lane:
    """A device's row; ``device`` is None for a device the rule requires that no record names (a missing camera)."""

    device: str | None
    y: float
    bars: list[Bar] = field(default_factory=list)

    @property
    def recorded_nothing(self) -> bool:
        return not self.bars


@dataclass(frozen=True)
class Band:
    """A shaded stretch (a shortfall) across every lane."""

    x: float
    width: float
    start: datetime
    end: datetime
    devices_recording: tuple[str, ...]
    devices_missing: tuple[str, ...] = ()  # the lanes' devices not recording then
    unnamed_missing: int = 0  # required devices that no record names, missing as well

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    width: float
    height: float
    plot_x: float
    plot_width: float
    lanes_top: float
    lanes_bottom: float
    window_x: float
    window_width: float
    lanes: list[Lane]
    bands: list[Band]
    ticks: list[Tick]
    view_start: datetime
    view_end: datetime
    lane_height: float = LANE_HEIGHT
    bar_height: float = BAR_HEIGHT


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.seconds = max((end - start).total_seconds(), 1e-6)
        self.plot_width = WIDTH - LABEL_WIDTH - PLOT_RIGHT

    def x(self, at: datetime) -> float:
        share = (at - self.start).total_seconds() / self.seconds
        return LABEL_WIDTH + min(max(share, 0.0), 1.0) * self.plot_width

    def span(self, start: datetime, end: datetime) -> tuple[float, float]:
        left, right = self.x(start), self.x(end)
        return round(left, 2), round(max(right - left, 0.0), 2)


def view_bounds(start: datetime, end: datetime, margin_seconds: float) -> tuple[datetime, datetime]:
    """The window widened by the link margin, or by a little context when the margin is smaller."""
    pad = max(margin_seconds, (end - start).total_seconds() * CONTEXT_SHARE)
    return start - timedelta(seconds=pad), end + timedelta(seconds=pad)


def tick_step(seconds: float) -> int:
    """The smallest round step giving at most ``MAX_TICKS`` ticks across ``seconds``."""
    for step in TICK_STEPS:
        if seconds / step <= MAX_TICKS:
            return step
    return math.ceil(seconds / MAX_TICKS / 86400) * 86400


def ticks(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, str]]:
    """Round local wall-clock times between ``start`` and ``end``, labelled ``HH:MM`` (``:SS`` below a minute)."""
    step = tick_step((end - start).total_seconds())
    local = start.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    since = (local - midnight).total_seconds()
    at = midnight + timedelta(seconds=math.ceil(since / step) * step)
    fmt = "%H:%M" if step >= 60 else "%H:%M:%S"
    result = []
    while at <= end:
        result.append((at, at.astimezone(tz).strftime(fmt)))
        at += timedelta(seconds=step)
    return result


def build_timeline(
    started_at: datetime,
    ended_at: datetime,
    devices: Sequence[str],
    bars: Sequence[BarIn],
    shortfalls: Sequence[tuple[datetime, datetime, tuple[str, ...]]],
    tz: ZoneInfo,
    margin_seconds: float = 0.0,
    required: int = 0,
) -> Timeline:
    """Lay out one lane per device (in the order given) with its bars, and a band per shortfall.

    When fewer devices than ``required`` are on record, empty lanes without a name stand for the missing
    ones: an auditor sees the second camera that should have been there, not a lone lane that looks fine.
    """
    view_start, view_end = view_bounds(started_at, ended_at, margin_seconds)
    scale = _Scale(view_start, view_end)
    rows: list[str | None] = [*devices, *([None] * max(required - len(devices), 0))]
    lanes: list[Lane] = []
    for index, device in enumerate(rows):
        y = TOP + index * LANE_HEIGHT
        lane = Lane(device, y)
        for bar in sorted((b for b in bars if b.device == device), key=lambda b: (b.start, b.recording_id)):
            lane.bars.append(_bar(scale, bar, y + (LANE_HEIGHT - BAR_HEIGHT) / 2))
        lanes.append(lane)
    bottom = TOP + len(rows) * LANE_HEIGHT
    unnamed = len(rows) - len(devices)
    bands = []
    for start, end, recording in shortfalls:
        x, width = scale.span(start, end)
        missing = tuple(d for d in devices if d not in recording)
        bands.append(Band(x, width, start, end, recording, missing, unnamed))
    window_x, window_width = scale.span(started_at, ended_at)
    return Timeline(
        width=WIDTH,
        height=bottom + AXIS_HEIGHT,
        plot_x=LABEL_WIDTH,
        plot_width=scale.plot_width,
        lanes_top=TOP,
        lanes_bottom=bottom,
        window_x=window_x,
        window_width=window_width,
        lanes=lanes,
        bands=bands,
        ticks=[Tick(round(scale.x(at), 2), label) for at, label in ticks(view_start, view_end, tz)],
        view_start=view_start,
        view_end=view_end,
    )


def length_label(seconds: float) -> str:
    """A stretch's length as ``m:ss`` (``h:mm:ss`` from an hour), rounded to the second."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def seek_seconds(bar_start: datetime, at: datetime) -> float:
    """Where in a recording the moment ``at`` falls (0 when it is before the recording began)."""
    return round(max((at - bar_start).total_seconds(), 0.0), 2)


def _bar(scale: _Scale, bar: BarIn, y: float) -> Bar:
    # A recording without an end (unplayable, no duration) is drawn as a thin mark at its start.
    end = bar.end if bar.end is not None and bar.end > bar.start else bar.start
    x, width = scale.span(bar.start, end)
    clipped = bar.start < scale.start or end > scale.end
    return Bar(bar.recording_id, x, max(width, 2.0), y, bar.problem, bar.start, bar.end, clipped)


def sync_cameras(timeline: Timeline, recordings: Sequence[Recording]) -> list[dict[str, Any]]:
    """Per named lane, its playable clips on the action's clock (epoch ms, offsets applied), for ``sync.js``.

    A clip that does not play (unreadable, failed fixity, neither picture nor sound) is left out: the lane
    then shows "not recording" over that stretch, as the timeline shows it grey.
    """
    playable = {
        r.id for r in recordings if r.status == "ok" and (r.has_video or r.has_audio) and r.fixity_ok is not False
    }
    cameras = []
    for lane in timeline.lanes:
        if lane.device is None:
            continue
        clips = [
            {
                "id": bar.recording_id,
                "start": round(bar.start.timestamp() * 1000),
                "end": round(bar.end.timestamp() * 1000),
                "src": f"/recordings/{bar.recording_id}/content",
            }
            for bar in lane.bars
            if bar.recording_id in playable and bar.end is not None and bar.end > bar.start
        ]
        cameras.append({"device": lane.device, "clips": clips})
    return cameras
