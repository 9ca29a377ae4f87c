"""One case as a reader sees it (``GET /api/v1/cases/{n}``): its actions in scope with their devices, officers
and links, its recordings and its legal hold, in two queries whatever the case's size.

The case lookup is the API's busiest read, so it is read here by hand instead of through ``actions_json``
plus ``check_case``, ``case_hold_json`` and a recordings query: the case's actions are read once (with the
case's hold alongside) and the scope decided on them in Python, then the links with their recordings and
the devices and officers come in one ``UNION ALL``. The shapes are exactly ``actions_json``'s and
``recording_json``'s (``tests/api/test_case_queries.py`` compares them).

The rows are Core rows of the columns the shapes read (``ACTION_FIELDS``, ``RECORDING_FIELDS``), not ORM
objects: loading ``Action`` and 46-column ``Recording`` objects with their joined device and station (identity
map, instance state) cost more Python than the statements, and the lookup only shapes them into JSON.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Row, String, bindparam, cast, literal, literal_column, null, select, true, union_all
from sqlalchemy.orm import Session

from audit.access import Scope, action_in_scope, case_decision
from audit.shapes import ACTION_FIELDS, shape_action
from storage.basics import iso
from storage.models import (
    Action,
    ActionDevice,
    ActionOfficer,
    ActionRecording,
    CaseHold,
    Device,
    Officer,
    Recording,
    Station,
    Unit,
)
from storage.shapes import RECORDING_FIELDS, shape_recording

__all__ = ["CaseView", "read_case"]


@dataclass(frozen=True)
class CaseView:
    """The case's actions in scope (SPEC §12 shape), their recordings (``recording_json`` shape), the hold in
    force, the grants used."""

    actions: list[dict[str, Any]]
    recordings: list[dict[str, Any]]
    hold: dict[str, Any] | None
    grants_used: list[int]


# The lookup's two statements are built once, with bound parameters: building a statement and its cache key
# cost more Python than running it, on the API's busiest read. The case's open hold comes beside its actions.
_HOLD = (
    select(CaseHold.reason, CaseHold.held_at, CaseHold.held_by)
    .where(CaseHold.case_number == bindparam("case"), CaseHold.released_at.is_(None))
    .order_by(CaseHold.id)
    .limit(1)
    .subquery()
)
_ACTIONS = (
    select(*ACTION_FIELDS, _HOLD.c.reason, _HOLD.c.held_at, _HOLD.c.held_by)
    .select_from(Action)
    .outerjoin(Unit, Unit.id == Action.unit_id)
    .outerjoin(_HOLD, true())
    .where(Action.case_number == bindparam("case"))
    .order_by(Action.started_at, Action.action_id)
)
# The case's actions by id, for the union's branches: the same bound ``case`` as ``_ACTIONS``, so the statement's
# text is fixed (an expanding ``IN`` of the ids in scope was re-rendered on every lookup, and each new length was a
# new statement for psycopg to prepare); rows of actions out of scope are dropped in ``read_case``.
_CASE_ACTIONS = select(Action.id).where(Action.case_number == bindparam("case")).scalar_subquery()
# The actions' links with their recordings, devices and officers in ONE statement (a round trip fewer than a query
# for the people and one for the links): three branches of a ``UNION ALL`` told apart by ``part``, the links first
# (their columns give the result's types), the people's rows padded with typed NULLs for the recording columns.
# Ordered as the two queries were: the links by recording time and id, devices before officers, each by code in
# the database's collation (the links' code is NULL, so only their time and id order them).
_LINKS, _DEVICES, _OFFICERS = 0, 1, 2


def _no_recording() -> list[Any]:
    return [cast(null(), col.type).label(col.key) for col in select(*RECORDING_FIELDS).selected_columns]


_LINKED_AND_PEOPLE = union_all(
    select(
        literal(_LINKS).label("part"),
        ActionRecording.action_id.label("action_id"),
        cast(null(), String).label("code"),
        cast(null(), String).label("source"),
        ActionRecording.manual.label("manual"),
        *RECORDING_FIELDS,
    )
    .select_from(ActionRecording)
    .join(Recording, Recording.id == ActionRecording.recording_id)
    .outerjoin(Device, Device.id == Recording.device_id)
    .outerjoin(Station, Station.id == Recording.station_id)
    .where(ActionRecording.action_id.in_(_CASE_ACTIONS)),
    select(
        literal(_DEVICES),
        ActionDevice.action_id,
        Device.serial,
        ActionDevice.source,
        cast(null(), Boolean),
        *_no_recording(),
    )
    .join(Device, Device.id == ActionDevice.device_id)
    .where(ActionDevice.action_id.in_(_CASE_ACTIONS)),
    select(
        literal(_OFFICERS),
        ActionOfficer.action_id,
        Officer.code,
        cast(null(), String),
        cast(null(), Boolean),
        *_no_recording(),
    )
    .join(Officer, Officer.id == ActionOfficer.officer_id)
    .where(ActionOfficer.action_id.in_(_CASE_ACTIONS)),
).order_by(literal_column("part"), literal_column("code"), literal_column("started_at"), literal_column("id"))


def read_case(session: Session, scope: Scope, case_number: str, now: datetime, *, whole: bool = False) -> CaseView:
    """The case as ``scope`` may see it: 404 ``no_case`` when it has no action, 403 when none is in scope
    (``audit.access.check_case`` decides, ``whole`` as there)."""
    conn = session.connection()  # Core: rows of the shapes' columns (the session's transaction, its connection)
    rows = conn.execute(_ACTIONS, {"case": case_number}).all()
    used = case_decision(scope, case_number, [row.unit for row in rows], whole=whole)
    actions = [row for row in rows if action_in_scope(scope, row.unit, row.case_number)]
    hold_json = None if rows[0].reason is None else _hold(rows[0])
    devices: dict[int, list[tuple[str, str]]] = defaultdict(list)
    officers: dict[int, list[str]] = defaultdict(list)
    links: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    recordings: dict[int, dict[str, Any]] = {}
    in_scope = {a.id for a in actions}
    for row in conn.execute(_LINKED_AND_PEOPLE, {"case": case_number}):
        if row.action_id not in in_scope:
            continue  # an action of the case outside the caller's scope: neither it nor its links are shown
        if row.part == _LINKS:
            links[row.action_id].append((row.id, row.manual))
            if row.id not in recordings:
                recordings[row.id] = shape_recording(row, row.device, row.station)
        elif row.part == _DEVICES:
            devices[row.action_id].append((row.code, row.source))
        else:
            officers[row.action_id].append(row.code)
    shaped = [
        # links by recording id, as actions_json orders them
        shape_action(a, a.unit, devices[a.id], officers[a.id], sorted(links[a.id]), now)
        for a in actions
    ]
    return CaseView(shaped, list(recordings.values()), hold_json, used)


def _hold(row: Row[Any]) -> dict[str, Any]:
    return {"reason": row.reason, "held_at": iso(row.held_at), "held_by": row.held_by}
