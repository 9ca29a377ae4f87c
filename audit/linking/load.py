"""What linking reads from the database, in two flavours: per query (incremental) and all at once (full run).

Both answer the same questions (devices, assignments, recordings of a device near a window) so that the
incremental path and :func:`audit.linking.recompute_all` reach the same links and verdicts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from audit.coverage import RecordingFacts
from storage.models import Device, DeviceAssignment, Recording

# Body cameras split footage into segments of minutes and run for hours on a battery: a recording that
# starts more than this before a window cannot reach into it. Bounding the look-back keeps the
# (device_id, started_at) index range short; both flavours use the same bound so they agree.
LONGEST_RECORDING = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class RecRow:
    """One recording as linking and coverage see it (device clock, before the offset)."""

    id: int
    sha256: str
    device_id: int | None
    started_at: datetime | None
    ended_at: datetime | None
    status: str
    has_video: bool
    has_audio: bool
    verified: bool
    fixity_ok: bool | None

    @property
    def last_instant(self) -> datetime | None:
        return self.ended_at if self.ended_at is not None else self.started_at


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    serial: str
    offset: float


@dataclass(frozen=True, slots=True)
class Assignment:
    device_id: int
    valid_from: datetime
    valid_to: datetime | None


REC_COLUMNS = (
    Recording.id,
    Recording.sha256,
    Recording.device_id,
    Recording.started_at,
    Recording.ended_at,
    Recording.status,
    Recording.has_video,
    Recording.has_audio,
    Recording.verified_at.is_not(None),
    Recording.fixity_ok,
)


def rec_row(row: tuple[object, ...]) -> RecRow:
    rid, sha256, device_id, start, end, status, video, audio, verified, fixity = row
    return RecRow(
        rid,  # type: ignore[arg-type]
        sha256,  # type: ignore[arg-type]
        device_id,  # type: ignore[arg-type]
        start,  # type: ignore[arg-type]
        end,  # type: ignore[arg-type]
        status,  # type: ignore[arg-type]
        bool(video),
        bool(audio),
        bool(verified),
        fixity,  # type: ignore[arg-type]
    )


def facts(rec: RecRow, device: DeviceInfo | None) -> RecordingFacts:
    """The pure-coverage view of a recording."""
    return RecordingFacts(
        id=rec.id,
        device=device.serial if device else None,
        started_at=rec.started_at,
        ended_at=rec.ended_at,
        status=rec.status,
        has_video=rec.has_video,
        has_audio=rec.has_audio,
        verified=rec.verified,
        fixity_ok=rec.fixity_ok,
        clock_offset_seconds=device.offset if device else 0.0,
    )


def overlapping_assignments(assignments: Iterable[Assignment], start: datetime, end: datetime) -> set[int]:
    """Devices whose assignment overlaps [start, end]."""
    return {a.device_id for a in assignments if a.valid_from <= end and (a.valid_to is None or a.valid_to >= start)}


class QueryData:
    """Answers with small indexed queries, caching what it read; for a handful of actions."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._devices: dict[int, DeviceInfo] = {}
        self._recs: dict[int, RecRow] = {}

    def devices(self, ids: Iterable[int]) -> dict[int, DeviceInfo]:
        missing = {i for i in ids if i not in self._devices}
        if missing:
            rows = self.session.execute(
                select(Device.id, Device.serial, Device.clock_offset_seconds).where(Device.id.in_(missing))
            )
            for did, serial, offset in rows:
                self._devices[did] = DeviceInfo(serial, float(offset or 0.0))
        return self._devices

    def assignments(self, officer_ids: Iterable[int]) -> dict[int, list[Assignment]]:
        result: dict[int, list[Assignment]] = defaultdict(list)
        ids = list(officer_ids)
        if ids:
            rows = self.session.execute(
                select(
                    DeviceAssignment.officer_id,
                    DeviceAssignment.device_id,
                    DeviceAssignment.valid_from,
                    DeviceAssignment.valid_to,
                ).where(DeviceAssignment.officer_id.in_(ids))
            )
            for officer_id, device_id, valid_from, valid_to in rows:
                result[officer_id].append(Assignment(device_id, valid_from, valid_to))
        return result

    def near(self, device_id: int, lo: datetime, hi: datetime) -> list[RecRow]:
        """Recordings of a device whose raw interval touches [lo, hi]."""
        rows = self.session.execute(
            select(*REC_COLUMNS).where(
                Recording.device_id == device_id,
                Recording.started_at <= hi,
                Recording.started_at >= lo - LONGEST_RECORDING,
                or_(Recording.ended_at >= lo, and_(Recording.ended_at.is_(None), Recording.started_at >= lo)),
            )
        )
        found = [rec_row(tuple(r)) for r in rows]
        self._recs.update((r.id, r) for r in found)
        return found

    def recordings(self, ids: Iterable[int]) -> dict[int, RecRow]:
        missing = {i for i in ids if i not in self._recs}
        if missing:
            for r in self.session.execute(select(*REC_COLUMNS).where(Recording.id.in_(missing))):
                rec = rec_row(tuple(r))
                self._recs[rec.id] = rec
        return self._recs


class BulkData:
    """Everything loaded once (recordings sorted per device), topped up per batch; for recomputing every action.

    A full recompute commits batch by batch while ingest goes on: :meth:`refresh`, called in each batch's
    transaction, re-reads devices and assignments (small tables) and adds the recordings stored since the
    last read, so that a later batch never unlinks a recording that arrived during the run.
    """

    def __init__(self, session: Session) -> None:
        self._devices: dict[int, DeviceInfo] = {}
        self._assignments: dict[int, list[Assignment]] = defaultdict(list)
        self._recs: dict[int, RecRow] = {}
        self._by_device: dict[int, tuple[list[datetime], list[RecRow], timedelta]] = {}
        self._last_id = 0
        self.refresh(session)

    def refresh(self, session: Session) -> None:
        """Re-read devices and assignments; add the recordings with ids above the last one read."""
        self._devices = {
            did: DeviceInfo(serial, float(offset or 0.0))
            for did, serial, offset in session.execute(select(Device.id, Device.serial, Device.clock_offset_seconds))
        }
        self._assignments = defaultdict(list)
        for officer_id, device_id, valid_from, valid_to in session.execute(
            select(
                DeviceAssignment.officer_id,
                DeviceAssignment.device_id,
                DeviceAssignment.valid_from,
                DeviceAssignment.valid_to,
            )
        ):
            self._assignments[officer_id].append(Assignment(device_id, valid_from, valid_to))
        per_device: dict[int, list[RecRow]] = defaultdict(list)
        # Core, not ORM, execution: a third of the cost per row, and the first read is every recording
        for r in session.connection().execute(select(*REC_COLUMNS).where(Recording.id > self._last_id)):
            rec = rec_row(tuple(r))
            self._recs[rec.id] = rec
            self._last_id = max(self._last_id, rec.id)
            if rec.device_id is not None and rec.started_at is not None:
                per_device[rec.device_id].append(rec)
        for device_id, recs in per_device.items():
            old = self._by_device.get(device_id)
            if old is not None:
                recs.extend(old[1])
            recs.sort(key=lambda r: (r.started_at, r.id))
            starts: list[datetime] = [r.started_at for r in recs]  # type: ignore[misc]
            # looking back as far as this device's longest recording finds the same ones as LONGEST_RECORDING
            longest = max((r.last_instant - r.started_at for r in recs), default=timedelta(0))  # type: ignore[operator]
            self._by_device[device_id] = (starts, recs, min(max(longest, timedelta(0)), LONGEST_RECORDING))

    def devices(self, ids: Iterable[int]) -> dict[int, DeviceInfo]:
        return self._devices

    def assignments(self, officer_ids: Iterable[int]) -> dict[int, list[Assignment]]:
        return self._assignments

    def near(self, device_id: int, lo: datetime, hi: datetime) -> list[RecRow]:
        found = self._by_device.get(device_id)
        if found is None:
            return []
        starts, recs, lookback = found
        first, last = bisect_left(starts, lo - lookback), bisect_right(starts, hi)
        return [r for r in recs[first:last] if r.last_instant is not None and r.last_instant >= lo]

    def recordings(self, ids: Iterable[int]) -> dict[int, RecRow]:
        return self._recs
