"""One case as a reader sees it (``GET /api/v1/cases/{n}``): its actions in scope with their devices, officers
and links, its recordings and its legal hold, in three queries whatever the case's size.

The case lookup is the API's busiest read, so it is read here by hand instead of through ``actions_json``
plus ``check_case``, ``case_hold_json`` and a recordings query: the case's actions are read once (with the
case's hold alongside) and the scope decided on them in Python, devices and officers come in one
``UNION ALL``, and the links come with their recordings. The shapes are exactly ``actions_json``'s and
``recording_json``'s (``tests/api/test_case_queries.py`` compares them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, bindparam, literal, null, select, true, union_all
from sqlalchemy.orm import Session

from audit.access import Scope, action_in_scope, case_decision
from audit.shapes import _action_json
from storage.models import Action, ActionDevice, ActionOfficer, ActionRecording, CaseHold, Device, Officer, Recording
from storage.types import iso

__all__ = ["CaseView", "read_case"]


@dataclass(frozen=True)
class CaseView:
    """The case's actions in scope (SPEC §12 shape), their recordings, the hold in force, the grants used."""

    actions: list[dict[str, Any]]
    recordings: list[Recording]
    hold: dict[str, Any] | None
    grants_used: list[int]


# The lookup's three statements are built once, with bound parameters: building a statement and its cache key
# cost more Python than running it, on the API's busiest read. The case's open hold comes beside its actions.
_HOLD = (
    select(CaseHold.reason, CaseHold.held_at, CaseHold.held_by)
    .where(CaseHold.case_number == bindparam("case"), CaseHold.released_at.is_(None))
    .order_by(CaseHold.id)
    .limit(1)
    .subquery()
)
_ACTIONS = (
    select(Action, _HOLD.c.reason, _HOLD.c.held_at, _HOLD.c.held_by)
    .outerjoin(_HOLD, true())
    .where(Action.case_number == bindparam("case"))
    .order_by(Action.started_at, Action.action_id)
)
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_BOTH = union_all(
    select(
        ActionDevice.action_id.label("action_id"),
        literal("d").label("kind"),
        Device.serial.label("code"),
        ActionDevice.source.label("source"),
    )
    .join(Device, Device.id == ActionDevice.device_id)
    .where(ActionDevice.action_id.in_(_IDS)),
    select(
        ActionOfficer.action_id.label("action_id"),
        literal("o").label("kind"),
        Officer.code.label("code"),
        null().label("source"),
    )
    .join(Officer, Officer.id == ActionOfficer.officer_id)
    .where(ActionOfficer.action_id.in_(_IDS)),
).subquery()
_PEOPLE = select(_BOTH).order_by(_BOTH.c.kind, _BOTH.c.code)
_LINKED = (
    select(ActionRecording.action_id, ActionRecording.manual, Recording)
    .join(Recording, Recording.id == ActionRecording.recording_id)
    .where(ActionRecording.action_id.in_(_IDS))
    .order_by(Recording.started_at, Recording.id)
)


def read_case(session: Session, scope: Scope, case_number: str, now: datetime, *, whole: bool = False) -> CaseView:
    """The case as ``scope`` may see it: 404 ``no_case`` when it has no action, 403 when none is in scope
    (``audit.access.check_case`` decides, ``whole`` as there)."""
    rows = session.execute(_ACTIONS, {"case": case_number}).all()
    units = [action.unit.code if action.unit is not None else None for action, *_hold in rows]
    used = case_decision(scope, case_number, units, whole=whole)
    actions = [a for (a, *_h), code in zip(rows, units, strict=True) if action_in_scope(scope, code, a.case_number)]
    held = rows[0][1:]
    hold_json = None if held[0] is None else {"reason": held[0], "held_at": iso(held[1]), "held_by": held[2]}
    ids = [a.id for a in actions]
    devices, officers = _people(session, ids)
    links: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    recordings: dict[int, Recording] = {}
    for action_id, manual, recording in session.execute(_LINKED, {"ids": ids}):
        links[action_id].append((recording.id, manual))
        recordings.setdefault(recording.id, recording)
    shaped = [
        _action_json(a, devices[a.id], officers[a.id], sorted(links[a.id]), now)  # by recording id, as actions_json
        for a in actions
    ]
    return CaseView(shaped, list(recordings.values()), hold_json, used)


def _people(session: Session, ids: list[int]) -> tuple[dict[int, list[tuple[str, str]]], dict[int, list[str]]]:
    """Each action's (device serial, source) and officer codes, in one query, ordered by the database as
    ``actions_json`` orders them (its collation, not Python's)."""
    devices: dict[int, list[tuple[str, str]]] = defaultdict(list)
    officers: dict[int, list[str]] = defaultdict(list)
    for action_id, kind, code, source in session.execute(_PEOPLE, {"ids": ids}):
        if kind == "d":
            devices[action_id].append((code, source))
        else:
            officers[action_id].append(code)
    return devices, officers
