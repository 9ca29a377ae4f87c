"""What linking reads from the database, in two flavours: per query (incremental) and all at once (full run).

Both answer the same questions (devices, assignments, recordings of a device near a window) so that the
incremental path and :func:`audit.linking.recompute_all` reach the same links and verdicts.
"""

from __future__ import annotations

import json
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Boolean, Integer, String, TextualSelect, and_, column, or_, select, text
from sqlalchemy.orm import Session

from audit.coverage import RecordingFacts
from audit.registry import among
from storage.models import Device, DeviceAssignment, Recording
from storage.types import UTCDateTime

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


class Span(Protocol):
    """What :meth:`QueryData.prefetch` needs of an action: its window, devices, officers and links."""

    @property
    def started_at(self) -> datetime: ...
    @property
    def ended_at(self) -> datetime: ...
    @property
    def devices(self) -> Collection[int]: ...
    @property
    def officers(self) -> Collection[int]: ...
    @property
    def links(self) -> Collection[int]: ...


def overlapping_assignments(assignments: Iterable[Assignment], start: datetime, end: datetime) -> set[int]:
    """Devices whose assignment overlaps [start, end]."""
    return {a.device_id for a in assignments if a.valid_from <= end and (a.valid_to is None or a.valid_to >= start)}


class QueryData:
    """Answers with indexed queries, caching what it read; :meth:`prefetch` reads a batch's in a few queries."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._devices: dict[int, DeviceInfo] = {}
        self._recs: dict[int, RecRow] = {}
        self._assignments: dict[int, list[Assignment]] = defaultdict(list)
        self._assigned: set[int] = set()  # officers whose assignments are in ``_assignments``
        self._near: dict[int, tuple[datetime, datetime, list[RecRow]]] = {}  # device → (lo, hi, recordings)

    def devices(self, ids: Iterable[int]) -> dict[int, DeviceInfo]:
        missing = sorted({i for i in ids if i not in self._devices})
        if not missing:  # the usual case after :meth:`prefetch`: asked for each action of a batch
            return self._devices
        for chunk in _chunks(missing):
            rows = self.session.execute(
                select(Device.id, Device.serial, Device.clock_offset_seconds).where(
                    among(self.session, Device.id, chunk)
                )
            )
            for did, serial, offset in rows:
                self._devices[did] = DeviceInfo(serial, float(offset or 0.0))
        return self._devices

    def assignments(self, officer_ids: Iterable[int]) -> dict[int, list[Assignment]]:
        missing = sorted({i for i in officer_ids if i not in self._assigned})
        if not missing:
            return self._assignments
        for chunk in _chunks(missing):
            rows = self.session.execute(
                select(
                    DeviceAssignment.officer_id,
                    DeviceAssignment.device_id,
                    DeviceAssignment.valid_from,
                    DeviceAssignment.valid_to,
                ).where(among(self.session, DeviceAssignment.officer_id, chunk))
            )
            for officer_id, device_id, valid_from, valid_to in rows:
                self._assignments[officer_id].append(Assignment(device_id, valid_from, valid_to))
            self._assigned.update(chunk)
        return self._assignments

    def prefetch(self, spans: Sequence[Span], margin: timedelta) -> None:
        """Read these actions' assignments, devices and candidate recordings in a few chunked queries."""
        self._near = {}  # only this batch's candidates: memory stays flat over a long list of actions
        by_officer = self.assignments({o for s in spans for o in s.officers})
        windows: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
        for s in spans:
            resolved: set[int] = set()
            for officer_id in s.officers:
                resolved |= overlapping_assignments(by_officer.get(officer_id, ()), s.started_at, s.ended_at)
            for device_id in {*s.devices, *resolved}:
                windows[device_id].append((s.started_at, s.ended_at))
        linked = self.recordings({r for s in spans for r in s.links})
        infos = self.devices({*windows, *(r.device_id for r in linked.values() if r.device_id is not None)})
        bounds: dict[int, tuple[datetime, datetime]] = {}
        for device_id, spans_of in windows.items():
            # the same widened, offset-shifted window :func:`audit.linking.sync.relink` asks :meth:`near` for
            offset = timedelta(seconds=infos[device_id].offset if device_id in infos else 0.0)
            lo = min(start for start, _ in spans_of) - margin - offset
            hi = max(end for _, end in spans_of) + margin - offset
            bounds[device_id] = (lo, hi)
        for chunk in _chunks(sorted(bounds), NEAR_CHUNK):
            self._read_near({d: bounds[d] for d in chunk})

    def _read_near(self, bounds: dict[int, tuple[datetime, datetime]]) -> None:
        # One query for the recordings of many devices, each device with its own index range. The windows
        # travel as one JSON parameter joined like a table: an OR of a hundred ranges cost more to build and
        # to key for SQLAlchemy's statement cache (per query, in Python) than the database took to run it.
        conn = self.session.connection()
        dialect = conn.dialect
        process = Recording.started_at.type._cached_bind_processor(dialect)
        windows = [
            {"d": d, "lo": _bound(process, lo - LONGEST_RECORDING), "hi": _bound(process, hi)}
            for d, (lo, hi) in bounds.items()
        ]
        found: dict[int, list[RecRow]] = {d: [] for d in bounds}
        for r in conn.execute(_near_statement(dialect.name), {"windows": json.dumps(windows)}):
            rec = rec_row(tuple(r))
            self._recs[rec.id] = rec
            found[rec.device_id].append(rec)  # type: ignore[index]
        for d, (lo, hi) in bounds.items():
            self._near[d] = (lo, hi, found[d])

    def near(self, device_id: int, lo: datetime, hi: datetime) -> list[RecRow]:
        """Recordings of a device whose raw interval touches [lo, hi]."""
        cached = self._near.get(device_id)
        if cached is not None and cached[0] <= lo and hi <= cached[1]:
            return [r for r in cached[2] if _touches(r, lo, hi)]
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
        missing = sorted({i for i in ids if i not in self._recs})
        if not missing:
            return self._recs
        for chunk in _chunks(missing):
            for r in self.session.connection().execute(
                select(*REC_COLUMNS).where(among(self.session, Recording.id, chunk))
            ):
                rec = rec_row(tuple(r))
                self._recs[rec.id] = rec
        return self._recs


IN_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit
NEAR_CHUNK = 1000  # devices per prefetch query (one JSON parameter): bounds the rows one query returns

_NEAR_COLUMNS = (
    "r.id, r.sha256, r.device_id, r.started_at, r.ended_at, r.status, r.has_video, r.has_audio, "
    "r.verified_at IS NOT NULL AS verified, r.fixity_ok"
)
_NEAR_SQL = {
    # CROSS JOIN makes SQLite walk the windows and probe ix_recordings_device_start for each
    "sqlite": f"SELECT {_NEAR_COLUMNS} FROM json_each(:windows) AS w CROSS JOIN recordings AS r "
    "WHERE r.device_id = json_extract(w.value, '$.d') "
    "AND r.started_at BETWEEN json_extract(w.value, '$.lo') AND json_extract(w.value, '$.hi')",
    "postgresql": f"SELECT {_NEAR_COLUMNS} FROM json_to_recordset(CAST(:windows AS json)) "
    "AS w(d integer, lo timestamptz, hi timestamptz) JOIN recordings AS r "
    "ON r.device_id = w.d AND r.started_at BETWEEN w.lo AND w.hi",
}


@cache
def _near_statement(dialect: str) -> TextualSelect:
    """Recordings in the windows ``[{"d": device id, "lo": …, "hi": …}, ...]`` (JSON), typed as REC_COLUMNS."""
    sql = _NEAR_SQL["postgresql" if dialect == "postgresql" else "sqlite"]
    return text(sql).columns(
        column("id", Integer),
        column("sha256", String),
        column("device_id", Integer),
        column("started_at", UTCDateTime()),
        column("ended_at", UTCDateTime()),
        column("status", String),
        column("has_video", Boolean),
        column("has_audio", Boolean),
        column("verified", Boolean),
        column("fixity_ok", Boolean),
    )


def _bound(process: Callable[[Any], Any] | None, value: datetime) -> Any:
    # a window's end as the column stores it (SQLite: its own text form, compared as text; PostgreSQL: ISO)
    stored = process(value) if process is not None else value
    return stored.isoformat() if isinstance(stored, datetime) else stored


def _chunks(ids: Sequence[int], size: int = IN_CHUNK) -> Iterable[Sequence[int]]:
    return (ids[start : start + size] for start in range(0, len(ids), size))


def _touches(rec: RecRow, lo: datetime, hi: datetime) -> bool:
    # :meth:`QueryData.near`'s WHERE clause, in Python, for recordings already read
    start, end = rec.started_at, rec.ended_at
    if start is None or start > hi or start < lo - LONGEST_RECORDING:
        return False
    return end >= lo if end is not None else start >= lo


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

    def prefetch(self, spans: Sequence[Span], margin: timedelta) -> None:
        """Nothing to do: everything is loaded already."""

    def near(self, device_id: int, lo: datetime, hi: datetime) -> list[RecRow]:
        found = self._by_device.get(device_id)
        if found is None:
            return []
        starts, recs, lookback = found
        first, last = bisect_left(starts, lo - lookback), bisect_right(starts, hi)
        return [r for r in recs[first:last] if r.last_instant is not None and r.last_instant >= lo]

    def recordings(self, ids: Iterable[int]) -> dict[int, RecRow]:
        return self._recs
