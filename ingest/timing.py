"""When a recording started and ended by the device's clock (SPEC §4), from untrusted candidates in order.

The order is: the file name's timestamp (read in the deployment's time zone), the container's
``creation_time``, then the file's mtime minus the duration. A candidate before the camera could have existed
or in the future is ignored and the next one is used. The per-device clock offset is applied later, by the
caller: these are raw device-clock times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SOURCE_FILENAME = "filename"
SOURCE_METADATA = "metadata"
SOURCE_MTIME = "mtime"


@dataclass(frozen=True)
class RecordingTimes:
    started_at: datetime | None  # aware UTC, device clock (no clock offset applied)
    ended_at: datetime | None
    time_source: str | None  # "filename" | "metadata" | "mtime"


NO_TIMES = RecordingTimes(started_at=None, ended_at=None, time_source=None)


def choose_times(
    *,
    name_start_local: datetime | None,
    creation_time: datetime | None,
    mtime: datetime,
    duration_seconds: float | None,
    tz: ZoneInfo,
    now: datetime,
    earliest: datetime,
    future_tolerance_seconds: float,
    media_kind: str | None = None,
) -> RecordingTimes:
    """Pick the first plausible start time and derive the end from the duration.

    Naive ``creation_time``, ``mtime``, ``now`` and ``earliest`` are taken as UTC. The end is the start plus
    the duration; without a (positive) duration the recording is an instant (a photo) and ends when it
    starts, unless ``media_kind`` says it is a video or audio recording, whose end is then unknown (None).
    If no candidate is plausible every field is None.
    """
    duration = _duration(duration_seconds)
    lowest = _as_utc(earliest)
    highest = _as_utc(now) + timedelta(seconds=max(0.0, future_tolerance_seconds))
    candidates = (
        (SOURCE_FILENAME, _local_to_utc(name_start_local, tz)),
        (SOURCE_METADATA, _untrusted_utc(creation_time)),
        (SOURCE_MTIME, _minus(_as_utc(mtime), duration)),
    )
    for source, start in candidates:
        if start is None or not lowest <= start <= highest:
            continue
        return RecordingTimes(started_at=start, ended_at=_end(start, duration, media_kind), time_source=source)
    return NO_TIMES


def _duration(value: float | None) -> timedelta | None:
    """A usable duration, or None for a missing, negative, non-finite or absurd one."""
    if value is None or not math.isfinite(value) or value < 0:
        return None
    try:
        return timedelta(seconds=value)
    except OverflowError:
        return None


def _end(start: datetime, duration: timedelta | None, media_kind: str | None) -> datetime | None:
    if duration is None or not duration:
        return None if duration is None and media_kind in ("video", "audio") else start
    try:
        return start + duration
    except OverflowError:
        return None


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _untrusted_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return _as_utc(value)
    except (OverflowError, ValueError):
        return None


def _local_to_utc(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A wall-clock time in ``tz`` as UTC; a time skipped or repeated by DST resolves as ``fold=0`` does."""
    if value is None:
        return None
    try:
        local = value.replace(tzinfo=tz) if value.tzinfo is None else value
        return local.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _minus(value: datetime, duration: timedelta | None) -> datetime | None:
    if duration is None:
        return value
    try:
        return value - duration
    except OverflowError:
        return None
