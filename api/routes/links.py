"""Manual links: a reviewer links a recording to an action, or takes it off, by hand (SPEC §6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import RuntimeDep, SessionDep, require
from api.params import RowId
from api.routes import API_PREFIX
from audit.access import check_action, check_recording, record_uses, scope_for
from audit.linking import ManualChange, link_by_hand, unlink_by_hand
from audit.shapes import action_json
from storage.basics import utcnow
from storage.models import Action, Recording

router = APIRouter(prefix=API_PREFIX, tags=["actions"])

Linkers = Annotated[Principal, Depends(require("actions.link"))]
PATH = "/actions/{action_id}/links/{recording_id}"
ERROR = {"description": "An error", "content": {"application/json": {}}}
LINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"description": "Linked by hand now (an audit event `link.added`); the action as re-judged"},
    200: {"description": "Already linked by hand: nothing changed, no event"},
    404: {**ERROR, "description": "No such action or recording"},
    409: {**ERROR, "description": "The recording's object is not in the store"},
}
UNLINK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Unlinked for good (an audit event `link.removed`) or already unlinked by hand"},
    404: {**ERROR, "description": "No such action or recording, or the recording is not linked to the action"},
}


def _check_scope(session: Session, who: Principal, action_id: str, recording_id: int, what: str) -> None:
    """Both ends must be in the caller's scope: linking must not pull another unit's recording into theirs."""
    scope = scope_for(who, utcnow())
    if scope.everything:
        return
    grants: list[int] = []
    action = session.scalar(select(Action).where(Action.action_id == action_id))
    if action is not None:
        grants += check_action(session, scope, action)
    recording = session.get(Recording, recording_id)
    if recording is not None:
        grants += check_recording(session, scope, recording)
    record_uses(session, scope, grants, what)


def _answer(session: SessionDep, change: ManualChange, created: bool) -> JSONResponse:
    body = {"changed": change.changed, "action": action_json(session, change.action, utcnow())}
    return JSONResponse(body, status_code=201 if created else 200)


@router.post(PATH, summary="Link a recording to an action by hand (reviewer, admin)", responses=LINK_RESPONSES)
def link(action_id: str, recording_id: RowId, session: SessionDep, rt: RuntimeDep, who: Linkers) -> JSONResponse:
    _check_scope(session, who, action_id, recording_id, "actions.link")
    change = link_by_hand(session, rt.settings, rt.store, action_id, recording_id, who.actor)
    return _answer(session, change, created=change.changed)


@router.delete(
    PATH, summary="Take a recording off an action by hand, for good (reviewer, admin)", responses=UNLINK_RESPONSES
)
def unlink(action_id: str, recording_id: RowId, session: SessionDep, rt: RuntimeDep, who: Linkers) -> JSONResponse:
    _check_scope(session, who, action_id, recording_id, "actions.unlink")
    change = unlink_by_hand(session, rt.settings, action_id, recording_id, who.actor)
    return _answer(session, change, created=False)
