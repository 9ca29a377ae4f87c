"""The periodic written report (书面报告, SPEC §14) as a value: pure rules from rows to figures.

Decisions, in one place:
- An action belongs to the period of its local start date, to its own unit; its verdict is the effective one
  (a pending action past its grace counts as incomplete, as in the missing report).
- Coverage rate = complete / actions (None for no actions); the trend compares it with the period of equal
  length that ends the day before this one starts.
- A recording is late when received more than the upload deadline after it ended. Its unit is its device's;
  a device without a unit is attributed through an action that claims the recording, else through the
  officer who carried the device (assignment) — the report counts how many were attributed each way, so
  that filtering by unit never silently drops them.
- Officers are the people who carried the action's cameras (device assignments overlapping the action);
  an action none of whose cameras was assigned counts under "no assignment" (None).
- Findings come from elsewhere (the ledger, SPEC §13); without them the report says "no findings data".
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

Via = Literal["device", "action", "assignment"]
VERDICT_KEYS = ("complete", "pending", "incomplete", "unjudged")
TOP_REASONS = 5


@dataclass(slots=True)  # not frozen: a year holds some 100,000 of them, and frozen construction is slower
class ActionLine:
    """One action as the report needs it (times in UTC, verdict effective); treat as read-only."""

    id: int
    action_id: str
    unit: str | None
    started_at: datetime
    verdict: str  # complete | pending | incomplete | unjudged
    reasons: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    carriers: tuple[str, ...] = ()
    location: str | None = None


@dataclass(frozen=True)
class UploadLine:
    """``count`` recordings of the period of one device, unit, attribution and lateness (the loader groups
    a unit's own devices' recordings in SQL; those of devices without a unit come one by one)."""

    device: str | None
    unit: str | None
    via: Via | None
    late: bool
    count: int = 1


@dataclass(frozen=True)
class Tally:
    actions: int = 0
    complete: int = 0
    pending: int = 0
    incomplete: int = 0
    unjudged: int = 0

    @property
    def rate(self) -> float | None:
        return round(self.complete / self.actions, 4) if self.actions else None


@dataclass(frozen=True)
class FindingsCounts:
    opened: int = 0
    closed_in_time: int = 0
    closed_late: int = 0
    overdue: int = 0


@dataclass(frozen=True)
class Uploads:
    recordings: int = 0
    late: int = 0

    @property
    def late_rate(self) -> float | None:
        return round(self.late / self.recordings, 4) if self.recordings else None


@dataclass(frozen=True)
class UnitSection:
    unit: str | None  # None: actions without a unit; in ``PeriodReport.total``: every unit
    current: Tally
    previous: Tally
    uploads: Uploads
    reasons: tuple[tuple[str, int], ...]
    findings: FindingsCounts | None

    @property
    def change(self) -> float | None:
        """Rate now minus rate before, in points of 1 (None when either side has no actions)."""
        now, before = self.current.rate, self.previous.rate
        return None if now is None or before is None else round(now - before, 4)


@dataclass(frozen=True)
class Breakdown:
    """Per device or per officer: the actions they were on and (devices) their uploads."""

    key: str | None
    current: Tally
    uploads: Uploads = Uploads()


@dataclass(frozen=True)
class Attribution:
    """Late uploads of devices without a unit, and how each was given one (SPEC §14's weak spot)."""

    late_without_unit: int = 0
    via_action: int = 0
    via_assignment: int = 0
    unattributed: int = 0


@dataclass(frozen=True)
class Period:
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of equal length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)


@dataclass(frozen=True)
class PeriodReport:
    period: Period
    previous: Period
    unit: str | None
    timezone: str
    generated_at: datetime
    units: tuple[UnitSection, ...]
    total: UnitSection
    devices: tuple[Breakdown, ...]
    officers: tuple[Breakdown, ...]
    attribution: Attribution
    findings_available: bool
    actions: tuple[ActionLine, ...] = field(default=())  # the period's, for the drill-down


_SLOT = {key: i for i, key in enumerate(VERDICT_KEYS)}


def tallies(pairs: Iterable[tuple[str | None, ActionLine]]) -> dict[str | None, Tally]:
    """Per key, the actions by verdict, in one pass (a year's actions cross every device and officer)."""
    counts: dict[str | None, list[int]] = {}
    for key, a in pairs:
        c = counts.get(key)
        if c is None:
            c = counts[key] = [0, 0, 0, 0]
        c[_SLOT.get(a.verdict, 3)] += 1
    return {key: Tally(sum(c), *c) for key, c in counts.items()}


def tally(actions: Iterable[ActionLine]) -> Tally:
    return tallies((None, a) for a in actions).get(None, Tally())


def top_reasons(actions: Iterable[ActionLine], n: int = TOP_REASONS) -> tuple[tuple[str, int], ...]:
    """Reason codes of non-complete actions, each counted once per action, most frequent first."""
    counts = Counter(code for a in actions if a.verdict != "complete" for code in set(a.reasons))
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def is_late(ended_at: datetime, received_at: datetime, deadline: timedelta) -> bool:
    """Received more than ``deadline`` after it ended (the loader's SQL says the same for grouped rows)."""
    return received_at > ended_at + deadline


def uploads_of(uploads: Iterable[UploadLine]) -> Uploads:
    rows = list(uploads)
    return Uploads(sum(u.count for u in rows), sum(u.count for u in rows if u.late))


def attribution(uploads: Iterable[UploadLine]) -> Attribution:
    via: Counter[str | None] = Counter()
    for u in uploads:
        if u.via != "device" and u.late:
            via[u.via] += u.count
    return Attribution(sum(via.values()), via["action"], via["assignment"], via[None])


def _by(items: Iterable[tuple[str | None, ActionLine]]) -> dict[str | None, list[ActionLine]]:
    grouped: dict[str | None, list[ActionLine]] = defaultdict(list)
    for key, a in items:
        grouped[key].append(a)
    return grouped


def _order(keys: Iterable[str | None]) -> list[str | None]:
    return sorted(set(keys), key=lambda k: (k is None, k or ""))


def _sum_findings(values: Iterable[FindingsCounts]) -> FindingsCounts:
    rows = list(values)
    return FindingsCounts(*(sum(getattr(f, k) for f in rows) for k in FindingsCounts.__dataclass_fields__))


def _sum_tallies(values: Iterable[Tally]) -> Tally:
    rows = list(values)
    return Tally(*(sum(getattr(t, k) for t in rows) for k in Tally.__dataclass_fields__))


def build_period_report(
    period: Period,
    current: Sequence[ActionLine],
    previous: Mapping[str | None, Tally],
    uploads: Sequence[UploadLine],
    *,
    unit: str | None,
    timezone: str,
    generated_at: datetime,
    findings: Mapping[str | None, FindingsCounts] | None = None,
) -> PeriodReport:
    """The report's figures from the period's actions, the previous period's tallies and the period's uploads.

    ``unit`` keeps only that unit's actions and the uploads attributed to it (by device, action or
    assignment); ``findings`` None means the ledger gave no data, which the report says rather than show 0.
    """
    if unit is not None:
        current = [a for a in current if a.unit == unit]
        previous = {k: v for k, v in previous.items() if k == unit}
        uploads = [u for u in uploads if u.unit == unit]
    now_by = _by((a.unit, a) for a in current)
    now_tally = tallies((a.unit, a) for a in current)
    uploads_by: dict[str | None, list[UploadLine]] = defaultdict(list)
    for u in uploads:
        uploads_by[u.unit].append(u)
    keys = [*now_by, *previous, *uploads_by, *(k for k in findings or {} if unit is None or k == unit)]
    sections = tuple(
        UnitSection(
            key,
            now_tally.get(key, Tally()),
            previous.get(key, Tally()),
            uploads_of(uploads_by.get(key, [])),
            top_reasons(now_by.get(key, [])),
            None if findings is None else findings.get(key, FindingsCounts()),
        )
        for key in _order(keys)
    )
    total = UnitSection(
        None,
        _sum_tallies(now_tally.values()),
        _sum_tallies(previous.values()),
        uploads_of(uploads),
        top_reasons(current),
        None if findings is None else _sum_findings(s.findings for s in sections if s.findings is not None),
    )
    by_device = tallies((d, a) for a in current for d in a.devices)
    device_uploads: dict[str | None, list[UploadLine]] = defaultdict(list)
    for u in uploads:
        device_uploads[u.device].append(u)
    devices = tuple(
        Breakdown(k, by_device.get(k, Tally()), uploads_of(device_uploads.get(k, [])))
        for k in _order([*by_device, *device_uploads])
    )
    by_officer = tallies((o, a) for a in current for o in (a.carriers or (None,)))
    officers = tuple(Breakdown(k, by_officer[k]) for k in _order(by_officer))
    return PeriodReport(
        period=period,
        previous=period.previous(),
        unit=unit,
        timezone=timezone,
        generated_at=generated_at,
        units=sections,
        total=total,
        devices=devices,
        officers=officers,
        attribution=attribution(uploads),
        findings_available=findings is not None,
        actions=tuple(sorted(current, key=lambda a: (a.unit is None, a.unit or "", a.started_at, a.action_id))),
    )
