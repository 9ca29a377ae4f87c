"""Unit scope and approvals (SPEC §15): what a reviewer may see, and the grants that widen it for a while.

A reviewer token carries units. An action is in scope when its unit is one of them, or when its case was
granted to the token's holder (a grant names the person, i.e. the token's name) and the grant has neither
expired nor been revoked. A recording is in scope when its device or station belongs to one of the units,
or when it is linked to an action in scope. Admin and auditor tokens see everything (``Scope.units`` None).

Evidence that no unit claims yet (an action without a unit; a recording whose device and station have no
unit and that no action with a unit links) is unclaimed: every reviewer sees it, since a reviewer is who
claims it (a manual link). Once any unit claims it, only that unit's reviewers and grant holders do.

Every decision for evidence is made here, for the API and the web pages alike; a request outside scope is
``ApprovalRequired`` (403 ``approval_required``). Granting, each use of a grant and revoking are audit events
(``access.granted``, ``access.grant_used``, ``access.revoked``, subject ``grant:<id>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session, sessionmaker

from config.errors import BadInput, Conflict, Forbidden, NotFound
from storage.basics import iso, iso_or_none
from storage.db import transaction
from storage.events import append_event
from storage.models import AccessGrant, Action, ActionRecording, ApiToken, Device, Recording, Station, Unit

if TYPE_CHECKING:
    from api.auth import Principal

UNSCOPED_ROLES = frozenset({"admin", "auditor"})  # 督察 and 法制 see everything (SPEC §15)

DEFAULT_HOURS = 24
MAX_HOURS = 24 * 90  # an approval is for a review, not for good
MAX_TEXT = 4000


class ApprovalRequired(Forbidden):
    """The evidence is outside the caller's units and no live grant covers it."""

    code = "approval_required"


@dataclass(frozen=True)
class Scope:
    """What one caller may see: ``units`` None means everything; ``grants`` maps granted cases to grant ids."""

    principal: Principal
    units: frozenset[str] | None
    grants: dict[str, int] = field(default_factory=dict)

    @property
    def everything(self) -> bool:
        return self.units is None


def scope_for(principal: Principal, now: datetime) -> Scope:
    """The caller's scope now: its token's units and the grants to its holder read with the token (one query,
    ``api.auth.principal_select``) that are still live at ``now``."""
    if principal.role in UNSCOPED_ROLES:
        return Scope(principal, None)
    live = {case: grant_id for case, grant_id, expires_at in principal.grants if expires_at > now}
    return Scope(principal, frozenset(principal.units), live)


# -- SQL conditions: lists and reports filter with these -------------------------------------------------


def _unit_ids(units: Iterable[str]) -> Any:
    return select(Unit.id).where(Unit.code.in_(sorted(units)))


def action_condition(scope: Scope) -> ColumnElement[bool] | None:
    """A condition on ``Action`` for the actions in scope (None: no filter)."""
    if scope.units is None:
        return None
    parts: list[ColumnElement[bool]] = [Action.unit_id.is_(None)]
    if scope.units:
        parts.append(Action.unit_id.in_(_unit_ids(scope.units)))
    if scope.grants:
        parts.append(Action.case_number.in_(sorted(scope.grants)))
    return or_(*parts)


def _recording_by_unit(units: frozenset[str]) -> ColumnElement[bool]:
    unit_ids = _unit_ids(units)
    return or_(
        Recording.device_id.in_(select(Device.id).where(Device.unit_id.in_(unit_ids))),
        Recording.station_id.in_(select(Station.id).where(Station.unit_id.in_(unit_ids))),
        Recording.id.in_(
            select(ActionRecording.recording_id)
            .join(Action, Action.id == ActionRecording.action_id)
            .where(Action.unit_id.in_(unit_ids))
        ),
    )


def _recording_unclaimed() -> ColumnElement[bool]:
    """No unit claims the recording: neither its device, nor its station, nor an action with a unit."""
    return ~or_(
        Recording.device_id.in_(select(Device.id).where(Device.unit_id.is_not(None))),
        Recording.station_id.in_(select(Station.id).where(Station.unit_id.is_not(None))),
        Recording.id.in_(
            select(ActionRecording.recording_id)
            .join(Action, Action.id == ActionRecording.action_id)
            .where(Action.unit_id.is_not(None))
        ),
    )


def _recording_by_grant(cases: Iterable[str]) -> ColumnElement[bool]:
    return Recording.id.in_(
        select(ActionRecording.recording_id)
        .join(Action, Action.id == ActionRecording.action_id)
        .where(Action.case_number.in_(sorted(cases)))
    )


def recording_condition(scope: Scope) -> ColumnElement[bool] | None:
    """A condition on ``Recording`` for the recordings in scope (None: no filter)."""
    if scope.units is None:
        return None
    parts: list[ColumnElement[bool]] = [_recording_unclaimed()]
    if scope.units:
        parts.append(_recording_by_unit(scope.units))
    if scope.grants:
        parts.append(_recording_by_grant(scope.grants))
    return or_(*parts)


# -- checks on one thing: each returns the grants it relied on (to be audited as uses) -------------------


def _outside(what: str, scope: Scope) -> ApprovalRequired:
    units = ", ".join(sorted(scope.units or ())) or "none"
    return ApprovalRequired(
        f"{what} is outside your units ({units}); an administrator can grant access with an approval "
        "(bwc access grant --to NAME --case CASE --approver ... --reason ...)"
    )


def check_action(session: Session, scope: Scope, action: Action) -> list[int]:
    if scope.units is None:
        return []
    if action.unit is None or action.unit.code in scope.units:
        return []
    if action.case_number is not None and action.case_number in scope.grants:
        return [scope.grants[action.case_number]]
    raise _outside(f"action {action.action_id!r}", scope)


def check_recording(session: Session, scope: Scope, recording: Recording) -> list[int]:
    if scope.units is None:
        return []
    mine = or_(_recording_unclaimed(), _recording_by_unit(scope.units)) if scope.units else _recording_unclaimed()
    if session.scalar(select(Recording.id).where(Recording.id == recording.id, mine)):
        return []
    if scope.grants:
        cases = session.scalars(
            select(Action.case_number)
            .join(ActionRecording, ActionRecording.action_id == Action.id)
            .where(ActionRecording.recording_id == recording.id, Action.case_number.in_(sorted(scope.grants)))
            .distinct()
        ).all()
        if cases:
            return sorted({scope.grants[c] for c in cases if c is not None})
    raise _outside(f"recording {recording.id}", scope)


def check_case(session: Session, scope: Scope, case_number: str, *, whole: bool) -> list[int]:
    """A case is readable when any of its actions is in scope (the rest are left out); ``whole`` (an export,
    which copies everything) needs every action in scope. The case must exist (else 404)."""
    units = session.execute(
        select(Action.id, Unit.code).outerjoin(Unit, Unit.id == Action.unit_id).where(Action.case_number == case_number)
    ).all()
    return case_decision(scope, case_number, [code for _id, code in units], whole=whole)


def case_decision(scope: Scope, case_number: str, unit_codes: list[str | None], *, whole: bool) -> list[int]:
    """``check_case`` on the unit codes of the case's actions, already read (one per action, None: no unit)."""
    if not unit_codes:
        raise NotFound(f"no actions for case {case_number!r}", code="no_case")
    if scope.units is None:
        return []
    in_scope = [code is None or code in scope.units for code in unit_codes]
    if case_number in scope.grants:
        return [] if all(in_scope) else [scope.grants[case_number]]
    if all(in_scope) or (any(in_scope) and not whole):
        return []
    what = f"case {case_number!r}" if not any(in_scope) else f"part of case {case_number!r} (for an export)"
    raise _outside(what, scope)


def action_in_scope(scope: Scope, unit_code: str | None, case_number: str | None) -> bool:
    """``action_condition`` on one action already read: its unit's code and its case."""
    if scope.units is None or unit_code is None or unit_code in scope.units:
        return True
    return case_number is not None and case_number in scope.grants


def check_unit(scope: Scope, unit: str | None, what: str) -> None:
    """Refuse a reviewer something that belongs to another unit (a finding, say); no unit is everyone's."""
    if scope.units is not None and unit is not None and unit not in scope.units:
        raise _outside(what, scope)


def report_units(scope: Scope, unit: str | None) -> str | frozenset[str] | None:
    """The units a missing report covers: the one asked for (if it is the caller's), else all the caller's."""
    if scope.units is None or unit is not None:
        return report_unit(scope, unit)
    if not scope.units:
        raise _outside("the missing report", scope)
    return next(iter(scope.units)) if len(scope.units) == 1 else scope.units


def report_unit(scope: Scope, unit: str | None) -> str | None:
    """The unit a reviewer's missing report covers: the one asked for if it is theirs, else their only one."""
    if scope.units is None:
        return unit
    if unit is not None:
        if unit not in scope.units:
            raise _outside(f"unit {unit!r}", scope)
        return unit
    if len(scope.units) == 1:
        return next(iter(scope.units))
    if not scope.units:
        raise _outside("the missing report", scope)
    raise BadInput(f"name one of your units with unit= ({', '.join(sorted(scope.units))})", code="unit_required")


def record_uses(session: Session, scope: Scope, grant_ids: Iterable[int], what: str) -> None:
    """One ``access.grant_used`` event per grant a request relied on, in the caller's transaction."""
    by_id = {grant_id: case for case, grant_id in scope.grants.items()}
    for grant_id in sorted(set(grant_ids)):
        append_event(
            session,
            "access.grant_used",
            f"grant:{grant_id}",
            {"case_number": by_id.get(grant_id), "holder": scope.principal.name, "what": what},
            actor=scope.principal.actor,
        )


# -- grants: the administrator's side -------------------------------------------------------------------


def _text(value: str, name: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_TEXT or "\x00" in value:
        raise BadInput(f"{name} must be 1 to {MAX_TEXT} characters of text", code=f"bad_{name}")
    return value


def grant_access(
    session: Session,
    *,
    holder: str,
    case_number: str,
    approver: str,
    reason: str,
    hours: float,
    actor: str,
    now: datetime,
) -> AccessGrant:
    """Let the live reviewer token named ``holder`` read ``case_number`` for ``hours``; an audit event."""
    holder, case_number = _text(holder, "holder"), _text(case_number, "case")
    approver, reason = _text(approver, "approver"), _text(reason, "reason")
    if not 0 < hours <= MAX_HOURS:
        raise BadInput(f"hours must be more than 0 and at most {MAX_HOURS}", code="bad_hours")
    role = session.scalar(select(ApiToken.role).where(ApiToken.name == holder, ApiToken.revoked_at.is_(None)))
    if role is None:
        raise NotFound(f"no live token named {holder!r}", code="no_holder")
    if role in UNSCOPED_ROLES or role == "station":
        raise BadInput(
            f"{holder!r} holds a {role} token, which is not scoped by unit: nothing to grant", code="holder_not_scoped"
        )
    if session.scalar(select(Action.id).where(Action.case_number == case_number).limit(1)) is None:
        raise NotFound(f"no actions for case {case_number!r}", code="no_case")
    grant = AccessGrant(
        holder=holder,
        case_number=case_number,
        approver=approver,
        reason=reason,
        granted_at=now,
        granted_by=actor,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(grant)
    session.flush()
    append_event(
        session,
        "access.granted",
        f"grant:{grant.id}",
        {
            "holder": holder,
            "case_number": case_number,
            "approver": approver,
            "reason": reason,
            "expires_at": iso(grant.expires_at),
        },
        actor=actor,
    )
    return grant


def revoke_grant(session: Session, grant_id: int, *, actor: str, now: datetime) -> AccessGrant:
    grant = session.get(AccessGrant, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id}")
    if grant.revoked_at is not None:
        raise Conflict(f"grant {grant_id} was revoked at {iso(grant.revoked_at)}", code="already_revoked")
    grant.revoked_at, grant.revoked_by = now, actor
    session.flush()
    append_event(
        session,
        "access.revoked",
        f"grant:{grant.id}",
        {"holder": grant.holder, "case_number": grant.case_number, "expired": grant.expires_at <= now},
        actor=actor,
    )
    return grant


def grant_json(grant: AccessGrant, now: datetime) -> dict[str, Any]:
    state = "revoked" if grant.revoked_at is not None else "expired" if grant.expires_at <= now else "active"
    return {
        "id": grant.id,
        "holder": grant.holder,
        "case_number": grant.case_number,
        "approver": grant.approver,
        "reason": grant.reason,
        "granted_at": iso(grant.granted_at),
        "granted_by": grant.granted_by,
        "expires_at": iso(grant.expires_at),
        "revoked_at": iso_or_none(grant.revoked_at),
        "state": state,
    }


def list_grants(session: Session, now: datetime, *, active_only: bool = False) -> list[dict[str, Any]]:
    query = select(AccessGrant).order_by(AccessGrant.id)
    if active_only:
        query = query.where(AccessGrant.revoked_at.is_(None), AccessGrant.expires_at > now)
    return [grant_json(g, now) for g in session.scalars(query)]


def note_uses(sessions: sessionmaker[Session], scope: Scope, grant_ids: Iterable[int], what: str) -> None:
    """``record_uses`` for a request that only reads: the events get their own short transaction."""
    ids = list(grant_ids)
    if ids:
        with transaction(sessions) as session:
            record_uses(session, scope, ids, what)
