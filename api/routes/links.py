"""Manual links: a reviewer links a recording to an action, or takes it off, by hand (SPEC §6)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.auth import Principal
from api.deps import RuntimeDep, SessionDep, require
from api.params import RowId
from api.routes import API_PREFIX
from audit.linking import ManualChange, link_by_hand, unlink_by_hand
from audit.shapes import action_json
from storage.types import utcnow

router = APIRouter(prefix=API_PREFIX, tags=["actions"])

Linkers = Annotated[Principal, Depends(require("reviewer"))]
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


def _answer(session: SessionDep, change: ManualChange, created: bool) -> JSONResponse:
    body = {"changed": change.changed, "action": action_json(session, change.action, utcnow())}
    return JSONResponse(body, status_code=201 if created else 200)


@router.post(PATH, summary="Link a recording to an action by hand (reviewer, admin)", responses=LINK_RESPONSES)
def link(action_id: str, recording_id: RowId, session: SessionDep, rt: RuntimeDep, who: Linkers) -> JSONResponse:
    change = link_by_hand(session, rt.settings, rt.store, action_id, recording_id, who.actor)
    return _answer(session, change, created=change.changed)


@router.delete(
    PATH, summary="Take a recording off an action by hand, for good (reviewer, admin)", responses=UNLINK_RESPONSES
)
def unlink(action_id: str, recording_id: RowId, session: SessionDep, rt: RuntimeDep, who: Linkers) -> JSONResponse:
    change = unlink_by_hand(session, rt.settings, action_id, recording_id, who.actor)
    return _answer(session, change, created=False)
