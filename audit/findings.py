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

from audit.findings_rules import (
    CLOSED,
    MANUAL,
    OPEN,
    by_hand,
    due_at,
    entry,
    on_cause,
    parse_subject,
)
from config.errors import BadInput, NotFound
from storage.events import append_event, append_events
from storage.models import Action, Device, Finding, Officer, Recording, Unit

CHUNK = 500


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
) -> int:
    """Bring the automatic findings of these subjects, for the ``managed`` kinds, in line with their causes.

    ``causes`` maps each subject looked at to the kinds whose cause is present now (possibly none). Returns
    how many findings changed or were opened.
    """
    subjects = sorted(causes)
    if not subjects:
        return 0
    kinds = sorted(set(managed))
    existing: dict[tuple[str, str], Finding] = {}
    for chunk in _chunks(subjects):
        query = select(Finding).where(Finding.subject.in_(chunk), Finding.kind.in_(kinds), Finding.automatic.is_(True))
        for found in session.scalars(query.order_by(Finding.id)):
            existing[(found.subject, found.kind)] = found  # the latest, should there ever be two
    to_open = [(s, k) for s in subjects for k in sorted(causes[s]) if k in managed and (s, k) not in existing]
    events: list[tuple[str, str, dict[str, Any]]] = []
    for (subject, kind), finding in existing.items():
        step = on_cause(finding.status, finding.automatic, finding.cause_present, kind in causes[subject])
        if step is None:
            continue
        finding.cause_present = kind in causes[subject]
        if step.status != finding.status:
            finding.status = step.status
            finding.closed_at = now if step.status == CLOSED else None
        finding.history = [*finding.history, entry(now, actor, step.change, status=step.status)]
        finding.updated_at = now
        events.append((f"finding.{step.change}", f"finding:{finding.id}", _event(finding, step.change)))
    if to_open:
        events += _open(session, to_open, now, actor, overrides, details or {})
    session.flush()
    append_events(session, events, actor)
    return len(events)


def _open(
    session: Session,
    pairs: Sequence[tuple[str, str]],
    now: datetime,
    actor: str,
    overrides: Mapping[str, float],
    details: Mapping[tuple[str, str], dict[str, Any]],
) -> list[tuple[str, str, dict[str, Any]]]:
    units = resolve_units(session, sorted({s for s, _ in pairs}))
    new = [
        Finding(
            kind=kind,
            subject=subject,
            unit_id=units.get(subject),
            status=OPEN,
            automatic=True,
            cause_present=True,
            opened_at=now,
            due_at=due_at(kind, now, overrides),
            details=details.get((subject, kind), {}),
            history=[entry(now, actor, "opened", status=OPEN)],
            updated_at=now,
        )
        for subject, kind in pairs
    ]
    session.add_all(new)
    session.flush()
    return [("finding.opened", f"finding:{f.id}", _event(f, "opened")) for f in new]


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
    for chunk in _chunks(keys["action"]):
        found |= {
            f"action:{k}": u
            for k, u in run(select(Action.action_id, Action.unit_id).where(Action.action_id.in_(chunk)))
        }
    ids = [int(k) for k in keys["recording"] if k.isdigit() and len(k) < 10]
    for start in range(0, len(ids), CHUNK):
        rows = run(
            select(Recording.id, Device.unit_id)
            .outerjoin(Device, Device.id == Recording.device_id)
            .where(Recording.id.in_(ids[start : start + CHUNK]))
        )
        found |= {f"recording:{k}": u for k, u in rows}
    for chunk in _chunks(keys["device"]):
        found |= {
            f"device:{k}": u for k, u in run(select(Device.serial, Device.unit_id).where(Device.serial.in_(chunk)))
        }
    for chunk in _chunks(keys["officer"]):
        found |= {
            f"officer:{k}": u for k, u in run(select(Officer.code, Officer.unit_id).where(Officer.code.in_(chunk)))
        }
    for chunk in _chunks(keys["unit"]):
        found |= {f"unit:{k}": u for k, u in run(select(Unit.code, Unit.id).where(Unit.code.in_(chunk)))}
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
    if owner is not None and owner.strip():
        finding.owner = owner.strip()[:256]
    field = "reason" if change == "waive" else "note"
    finding.history = [
        *finding.history,
        entry(now, actor, change, status=status, owner=finding.owner, **{field: words}),
    ]
    finding.updated_at = now
    session.flush()
    append_event(
        session, f"finding.{change}", f"finding:{finding.id}", _event(finding, change, **{field: words}), actor
    )
    return finding
