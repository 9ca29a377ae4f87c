"""Findings in the database (SPEC §13): kept in step with their causes in bulk, and changed by hand.

:func:`reconcile` is what the linking writer, the ingest and the fixity check call, in the caller's
transaction: given the subjects they just looked at and the kinds they are the authority for, it opens,
closes and reopens findings with a fixed number of queries per batch. The rest is what auditors do by hand.
Every change is an audit event (``finding.<change>``, subject ``finding:<id>``) and a line of ``history``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from audit.findings_rules import (
    CLOSED,
    MANUAL,
    OPEN,
    Step,
    by_hand,
    due_at,
    entry,
    on_cause,
    parse_subject,
)
from audit.registry import among, plan_with_values
from config.errors import BadInput, NotFound
from storage.bulk import insert_rows, reserve_ids, table_of, update_rows
from storage.events import append_event, append_events
from storage.models import Action, Device, Finding, Officer, Recording, Unit

CHUNK = 500
NO_DETAILS: dict[str, Any] = {}  # shared, never changed: only serialised
OPEN_COLUMNS = (
    "kind",
    "subject",
    "unit_id",
    "category",
    "status",
    "owner",
    "automatic",
    "cause_present",
    "opened_at",
    "due_at",
    "closed_at",
    "details",
    "history",
    "updated_at",
)
# ``id`` and OPEN_COLUMNS as PostgreSQL receives them in a binary COPY
OPEN_PG_TYPES = (
    *("int4", "text", "text", "int4", "text", "text", "text", "bool", "bool"),
    *("timestamptz", "timestamptz", "timestamptz", "json", "json", "timestamptz"),
)


def _chunks(values: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield list(values[start : start + CHUNK])


def reconcile(
    session: Session,
    causes: Mapping[str, Collection[str]],
    managed: Collection[str],
    now: datetime,
    actor: str,
    overrides: Mapping[str, float],
    details: Mapping[tuple[str, str], dict[str, Any]] | None = None,
    *,
    units: Mapping[str, int | None] | None = None,
) -> int:
    """Bring the automatic findings of these subjects, for the ``managed`` kinds, in line with their causes.

    ``causes`` maps each subject looked at to the kinds whose cause is present now (possibly none). Returns
    how many findings changed or were opened. Plain rows and bulk statements, not ORM objects: a full
    recompute passes every action through here, and the ledger must cost it little (issue 9: < 10 %).
    ``units`` gives the unit of subjects the caller has already read (the linking writer, its actions'),
    so that new findings look up only the others.
    """
    subjects = sorted(causes)
    if not subjects:
        return 0
    session.flush()
    plan_with_values(session)
    kinds, t, run = sorted(set(managed)), table_of(Finding), session.connection().execute
    existing: dict[tuple[str, str], tuple[int, str, bool, datetime | None]] = {}
    for chunk in _chunks(subjects):
        query = select(t.c.id, t.c.subject, t.c.kind, t.c.status, t.c.cause_present, t.c.closed_at).where(
            among(session, t.c.subject, chunk), t.c.kind.in_(kinds), t.c.automatic.is_(True)
        )
        for fid, subject, kind, status, present, closed_at in run(query.order_by(t.c.id)):
            existing[(subject, kind)] = (fid, status, bool(present), closed_at)  # the latest, were there two
    steps: dict[int, tuple[str, str, Step, bool, datetime | None]] = {}
    for (subject, kind), (fid, status, was_present, closed_at) in existing.items():
        present = kind in causes[subject]
        step = on_cause(status, True, was_present, present)
        if step is not None:
            closed = closed_at if step.status == status else (now if step.status == CLOSED else None)
            steps[fid] = (subject, kind, step, present, closed)
    events = _apply_steps(session, steps, now, actor)
    to_open = [(s, k) for s in subjects for k in sorted(causes[s]) if k in managed and (s, k) not in existing]
    if to_open:
        events += _open(session, to_open, now, actor, overrides, details or {}, units or {})
    append_events(session, events, actor)
    return len(events)


def _apply_steps(
    session: Session, steps: Mapping[int, tuple[str, str, Step, bool, datetime | None]], now: datetime, actor: str
) -> list[tuple[str, str, dict[str, Any]]]:
    if not steps:
        return []
    t, ids = table_of(Finding), sorted(steps)
    histories: dict[int, list[Any]] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        query = select(t.c.id, t.c.history).where(among(session, t.c.id, chunk))
        for fid, history in session.connection().execute(query):
            histories[fid] = list(history or [])
    rows, events = [], []
    for fid in ids:
        subject, kind, step, present, closed = steps[fid]
        history = [*(histories.get(fid) or []), entry(now, actor, step.change, status=step.status)]
        rows.append((fid, step.status, present, closed, history, now))
        events.append((f"finding.{step.change}", f"finding:{fid}", _shape(kind, subject, step.status, step.change)))
    update_rows(session, t, "id", ("status", "cause_present", "closed_at", "history", "updated_at"), rows)
    for fid in ids:  # objects a caller holds in this session read the new values
        obj = session.identity_map.get(identity_key(Finding, fid))
        if obj is not None:
            session.expire(obj)
    return events


def _open(
    session: Session,
    pairs: Sequence[tuple[str, str]],
    now: datetime,
    actor: str,
    overrides: Mapping[str, float],
    details: Mapping[tuple[str, str], dict[str, Any]],
    known_units: Mapping[str, int | None],
) -> list[tuple[str, str, dict[str, Any]]]:
    unknown = sorted({s for s, _ in pairs if s not in known_units})
    units = {**known_units, **resolve_units(session, unknown)} if unknown else known_units
    history = [entry(now, actor, "opened", status=OPEN)]
    due = {kind: due_at(kind, now, overrides) for kind in {k for _, k in pairs}}
    # ids first (the sequence on PostgreSQL), then one binary COPY: no RETURNING, no reading the rows back
    t = table_of(Finding)
    ids = reserve_ids(session, t, len(pairs))
    rows = [
        (
            fid,
            kind,
            subject,
            units.get(subject),
            None,  # category
            OPEN,
            None,  # owner
            True,  # automatic
            True,  # cause_present
            now,
            due[kind],
            None,  # closed_at
            details.get((subject, kind)) or NO_DETAILS,  # one object: its JSON is written once a batch
            history,
            now,
        )
        for fid, (subject, kind) in zip(ids, pairs, strict=True)
    ]
    insert_rows(session, t, ("id", *OPEN_COLUMNS), rows, OPEN_PG_TYPES)
    return [
        ("finding.opened", f"finding:{fid}", _shape(kind, subject, OPEN, "opened"))
        for fid, (subject, kind) in zip(ids, pairs, strict=True)
    ]


def _shape(kind: str, subject: str, status: str, change: str) -> dict[str, Any]:
    return {"kind": kind, "subject": subject, "status": status, "change": change}


def _event(finding: Finding, change: str, **extra: Any) -> dict[str, Any]:
    base = {"kind": finding.kind, "subject": finding.subject, "status": finding.status, "change": change}
    return base | {k: v for k, v in extra.items() if v is not None}


def resolve_units(session: Session, subjects: Sequence[str]) -> dict[str, int | None]:
    """The unit of each subject that exists (None: it has none); subjects that do not exist are left out."""
    keys: dict[str, list[str]] = defaultdict(list)
    for subject in subjects:
        kind, key = parse_subject(subject)
        keys[kind].append(key)
    found: dict[str, int | None] = {}
    run = session.execute
    by_key = (
        ("action", Action.action_id, Action.unit_id),
        ("device", Device.serial, Device.unit_id),
        ("officer", Officer.code, Officer.unit_id),
        ("unit", Unit.code, Unit.id),
    )
    for kind, key_column, unit_column in by_key:
        for chunk in _chunks(keys[kind]):
            rows = run(select(key_column, unit_column).where(among(session, key_column, chunk)))
            found |= {f"{kind}:{k}": u for k, u in rows}
    ids = [int(k) for k in keys["recording"] if k.isdigit() and len(k) < 10]
    for start in range(0, len(ids), CHUNK):
        rows = run(
            select(Recording.id, Device.unit_id)
            .outerjoin(Device, Device.id == Recording.device_id)
            .where(among(session, Recording.id, ids[start : start + CHUNK]))
        )
        found |= {f"recording:{k}": u for k, u in rows}
    return found


def get_finding(session: Session, finding_id: int) -> Finding:
    found = session.get(Finding, finding_id)
    if found is None:
        raise NotFound(f"no finding {finding_id}", code="finding_not_found")
    return found


def _text(value: str | None, what: str) -> str:
    text = (value or "").strip()
    if not text:
        raise BadInput(f"a {what} is required", code=f"{what}_required")
    if len(text) > 4000:
        raise BadInput(f"the {what} is longer than 4000 characters", code="too_long")
    return text


def open_by_hand(
    session: Session,
    subject: str,
    category: str,
    note: str,
    actor: str,
    now: datetime,
    overrides: Mapping[str, float],
    owner: str | None = None,
) -> Finding:
    """An auditor's finding for what only a person sees in the footage (wrong uniform, rude language)."""
    subject = subject.strip()
    units = resolve_units(session, [subject])
    if subject not in units:
        raise NotFound(f"no {subject.partition(':')[0]} {subject.partition(':')[2]!r}", code="subject_not_found")
    text, cat = _text(note, "note"), _text(category, "category")[:128]
    finding = Finding(
        kind=MANUAL,
        subject=subject,
        unit_id=units[subject],
        category=cat,
        status=OPEN,
        owner=owner.strip()[:256] if owner and owner.strip() else None,
        automatic=False,
        cause_present=True,
        opened_at=now,
        due_at=due_at(MANUAL, now, overrides),
        details={},
        history=[entry(now, actor, "opened", status=OPEN, note=text, category=cat)],
        updated_at=now,
    )
    session.add(finding)
    session.flush()
    append_event(session, "finding.opened", f"finding:{finding.id}", _event(finding, "opened", note=text), actor)
    return finding


def change_by_hand(
    session: Session,
    finding_id: int,
    change: str,
    text: str | None,
    actor: str,
    now: datetime,
    owner: str | None = None,
) -> Finding:
    """``note`` (optionally ``rectifying``: work has started), ``close`` with a rectification note, or ``waive``
    with a reason; each a line of history and an audit event."""
    finding = get_finding(session, finding_id)
    words = _text(text, "reason" if change == "waive" else "note")
    status = by_hand(finding.status, change)
    finding.status = status
    if status == CLOSED and finding.closed_at is None:
        finding.closed_at = now
    new_owner = owner.strip()[:256] if owner is not None and owner.strip() else None
    if new_owner == finding.owner:
        new_owner = None  # unchanged: the event names no owner
    if new_owner is not None:
        finding.owner = new_owner
    field = "reason" if change == "waive" else "note"
    finding.history = [
        *finding.history,
        entry(now, actor, change, status=status, owner=finding.owner, **{field: words}),
    ]
    finding.updated_at = now
    session.flush()
    append_event(
        session,
        f"finding.{change}",
        f"finding:{finding.id}",
        _event(finding, change, owner=new_owner, **{field: words}),
        actor,
    )
    return finding
