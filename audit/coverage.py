"""Coverage of an enforcement action as pure functions over intervals (SPEC §6): values in, values out.

Intervals are ``(start, end)`` pairs of float seconds. :func:`evaluate` measures them from the action's start,
so that sub-second precision survives whatever the epoch; the interval algebra itself does not care.

Decisions the SPEC leaves open, made here:

- A *usable* recording is verified, ``status == "ok"``, has a video stream (the rule asks for 影音资料, sound
  AND picture; an audio-only file is context, not coverage), has an audio stream when ``require_audio``,
  has not failed a fixity check, and has a start and an end. Its interval is the device's clock plus the
  device's clock offset.
- The devices counted are the action's devices plus the devices of recordings linked to it by hand (a
  reviewer's link says that recording belongs to the action). Recordings with no known device cover nothing.
- Blocking reasons (the verdict is not ``complete``): ``shortfall``, ``no_footage``, ``too_few_devices``,
  ``uncertified`` and ``integrity``: each means the action does not satisfy the rule. ``no_audio``,
  ``no_video`` and ``unplayable`` only explain why a recording did not count; the shortfall they cause is
  what blocks.
- ``pending`` is for what a late docking camera can still fix: only when every blocking reason is a
  ``shortfall`` or ``no_footage`` and ``now < ended_at + upload_grace_hours``. Too few devices, an
  uncertified crew or a failed fixity check will not be fixed by waiting, so those are ``incomplete`` at once.
- ``uncertified`` is raised when the action has officers and every one of them is known to be auxiliary
  staff (``certified is False``); an officer whose certification is unknown (``None``) is given the benefit
  of the doubt rather than failing every action before administrators have entered certifications.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storage.basics import iso

Interval = tuple[float, float]

COMPLETE, PENDING, INCOMPLETE = "complete", "pending", "incomplete"
# Every reason code coverage gives (SPEC §6); audit/labels.py words each one in every language.
REASON_CODES = (
    "too_few_devices",
    "no_footage",
    "shortfall",
    "no_audio",
    "no_video",
    "unplayable",
    "uncertified",
    "integrity",
)
BLOCKING = frozenset({"shortfall", "no_footage", "too_few_devices", "uncertified", "integrity"})
WAITABLE = frozenset({"shortfall", "no_footage"})


@dataclass(frozen=True)
class Policy:
    """The coverage rule's parameters (defaults in ``Settings``)."""

    min_devices: int = 2
    max_gap_seconds: float = 3.0
    require_audio: bool = True
    upload_grace_hours: float = 24.0
    link_margin_seconds: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> Policy:
        return cls(
            min_devices=settings.min_devices,
            max_gap_seconds=settings.max_gap_seconds,
            require_audio=settings.require_audio,
            upload_grace_hours=settings.upload_grace_hours,
            link_margin_seconds=settings.link_margin_seconds,
        )


@dataclass(frozen=True, slots=True)
class RecordingFacts:
    """What coverage needs of one linked recording; times are the device's clock, before its offset."""

    id: int
    device: str | None
    started_at: datetime | None
    ended_at: datetime | None
    status: str = "ok"
    has_video: bool = True
    has_audio: bool = True
    verified: bool = True
    fixity_ok: bool | None = None
    clock_offset_seconds: float = 0.0


@dataclass(frozen=True)
class ActionFacts:
    """An action's window, its devices (serials), its linked recordings and its officers' certification."""

    action_id: str
    started_at: datetime
    ended_at: datetime
    devices: Sequence[str] = ()
    recordings: Sequence[RecordingFacts] = ()
    officers_certified: Sequence[bool | None] = ()


@dataclass(frozen=True)
class Shortfall:
    """A maximal part of the window with too few devices; ``devices_recording`` cover all of it."""

    start: float
    end: float
    devices_recording: tuple[str, ...]
    devices_partly: tuple[str, ...] = ()


@dataclass(frozen=True)
class Segment:
    """A stretch of time over which the same devices are recording."""

    start: float
    end: float
    devices: frozenset[str]

    @property
    def depth(self) -> int:
        return len(self.devices)


@dataclass(frozen=True)
class CoverageResult:
    verdict: str
    reasons: list[dict[str, Any]]
    pending_until: datetime | None
    shortfalls: list[Shortfall] = field(default_factory=list)


def merge(intervals: Iterable[Interval], max_gap_seconds: float) -> list[Interval]:
    """Sorted, disjoint intervals covering the same time, with gaps of at most ``max_gap_seconds`` bridged."""
    result: list[Interval] = []
    if not intervals:  # a device named on the action with no footage: the common case of an import
        return result
    for start, end in sorted(iv for iv in intervals if iv[1] > iv[0]):
        if result and start - result[-1][1] <= max_gap_seconds:
            if end > result[-1][1]:
                result[-1] = (result[-1][0], end)
        else:
            result.append((start, end))
    return result


def depth(per_device: Mapping[str, Sequence[Interval]], window: Interval) -> list[Segment]:
    """Sweep the devices' (merged) intervals across ``window``: consecutive segments tiling it exactly."""
    w_start, w_end = window
    if w_end <= w_start:
        return []
    edges: list[tuple[float, int, str]] = []
    for device, intervals in per_device.items():
        for start, end in intervals:
            start, end = max(start, w_start), min(end, w_end)
            if end > start:
                edges.append((start, 1, device))
                edges.append((end, -1, device))
    edges.sort(key=lambda e: e[0])
    counts: dict[str, int] = {}
    segments: list[Segment] = []
    cursor, i = w_start, 0
    while i < len(edges):
        t = edges[i][0]
        if t > cursor:
            segments.append(Segment(cursor, t, frozenset(d for d, c in counts.items() if c > 0)))
            cursor = t
        while i < len(edges) and edges[i][0] == t:
            _, delta, device = edges[i]
            counts[device] = counts.get(device, 0) + delta
            i += 1
    if cursor < w_end:
        segments.append(Segment(cursor, w_end, frozenset(d for d, c in counts.items() if c > 0)))
    return _coalesce(segments)


def _coalesce(segments: list[Segment]) -> list[Segment]:
    result: list[Segment] = []
    for seg in segments:
        if result and result[-1].devices == seg.devices and result[-1].end == seg.start:
            result[-1] = Segment(result[-1].start, seg.end, seg.devices)
        else:
            result.append(seg)
    return result


def shortfalls(
    window: Interval,
    per_device_intervals: Mapping[str, Sequence[Interval]],
    min_devices: int,
    max_gap_seconds: float,
) -> list[Shortfall]:
    """Maximal parts of ``window`` where fewer than ``min_devices`` devices record, longer than the max gap."""
    merged = {device: merge(intervals, max_gap_seconds) for device, intervals in per_device_intervals.items()}
    result: list[Shortfall] = []
    run: list[Segment] = []
    for seg in [*depth(merged, window), None]:
        if seg is not None and seg.depth < min_devices:
            run.append(seg)
            continue
        if run and run[-1].end - run[0].start > max_gap_seconds:
            throughout = frozenset.intersection(*(s.devices for s in run))
            partly = frozenset().union(*(s.devices for s in run)) - throughout
            result.append(Shortfall(run[0].start, run[-1].end, tuple(sorted(throughout)), tuple(sorted(partly))))
        run = []
    return result


def usable_problem(rec: RecordingFacts, require_audio: bool) -> str | None:
    """Why a linked recording does not count as coverage (a reason code), or None when it does."""
    if rec.fixity_ok is False:
        return "integrity"
    if rec.status != "ok":
        return "unplayable"
    if not rec.has_video:
        return "no_video"
    if require_audio and not rec.has_audio:
        return "no_audio"
    if not rec.verified or rec.device is None or rec.started_at is None or rec.ended_at is None:
        return "unusable"
    return None


def evaluate(action: ActionFacts, policy: Policy, now: datetime) -> CoverageResult:
    """The verdict and its reasons for one action at ``now``."""
    origin = action.started_at
    window = (0.0, (action.ended_at - origin).total_seconds())
    devices = set(action.devices) | {r.device for r in action.recordings if r.device is not None}
    per_device: dict[str, list[Interval]] = {d: [] for d in devices}
    recording_reasons: list[dict[str, Any]] = []
    for rec in sorted(action.recordings, key=lambda r: (r.device or "", r.id)):
        problem = usable_problem(rec, policy.require_audio)
        if problem is None:
            assert rec.device is not None and rec.started_at is not None and rec.ended_at is not None
            shift = rec.clock_offset_seconds
            per_device[rec.device].append(
                ((rec.started_at - origin).total_seconds() + shift, (rec.ended_at - origin).total_seconds() + shift)
            )
            continue
        if problem == "integrity":
            recording_reasons.append({"code": "integrity", "device": rec.device, "recording": rec.id})
        elif problem != "unusable":
            recording_reasons.append({"code": problem, "device": rec.device, "recording": rec.id})

    reasons: list[dict[str, Any]] = []
    if len(devices) < policy.min_devices:
        reasons.append({"code": "too_few_devices", "devices": len(devices), "min_devices": policy.min_devices})
    if not any(per_device.values()):
        reasons.append({"code": "no_footage"})
    gaps = shortfalls(window, per_device, policy.min_devices, policy.max_gap_seconds)
    for gap in gaps:
        reason: dict[str, Any] = {
            "code": "shortfall",
            "from": iso(origin + timedelta(seconds=gap.start)),
            "to": iso(origin + timedelta(seconds=gap.end)),
            "devices_recording": list(gap.devices_recording),
        }
        if gap.devices_partly:
            reason["devices_partly"] = list(gap.devices_partly)
        reasons.append(reason)
    reasons.extend(recording_reasons)
    if action.officers_certified and all(c is False for c in action.officers_certified):
        reasons.append({"code": "uncertified", "officers": len(action.officers_certified)})
    verdict, pending_until = verdict_for(reasons, action.ended_at, policy, now)
    return CoverageResult(verdict, reasons, pending_until, gaps)


def verdict_for(
    reasons: Sequence[Mapping[str, Any]], ended_at: datetime, policy: Policy, now: datetime
) -> tuple[str, datetime | None]:
    """The verdict the reasons lead to at ``now``, and until when a pending verdict stays pending."""
    codes = {r["code"] for r in reasons} & BLOCKING
    if not codes:
        return COMPLETE, None
    grace_end = ended_at + timedelta(hours=policy.upload_grace_hours)
    if codes <= WAITABLE and now < grace_end:
        return PENDING, grace_end
    return INCOMPLETE, None
