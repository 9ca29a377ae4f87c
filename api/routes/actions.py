"""Enforcement actions and cases: import, create, and read with coverage (SPEC §6, §8)."""

from __future__ import annotations

import tempfile
from datetime import date
from typing import Annotated, Any, BinaryIO, Literal, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Principal
from api.deps import Reading, RuntimeDep, SessionDep, require, require_reading
from api.routes import API_PREFIX
from audit.access import action_condition, check_action, note_uses, scope_for
from audit.action_rows import ActionWriter, parse_action
from audit.case_view import read_case
from audit.csv_rows import BadRow
from audit.holds import apply_case_holds
from audit.imports import BatchDone, import_actions
from audit.linking import on_actions_changed
from audit.registry import Registry
from audit.reports import period_bounds
from audit.shapes import action_json, actions_json
from config.errors import BadInput, NotFound
from storage.basics import utcnow
from storage.models import Action, Recording, Unit
from storage.runtime import Runtime
from storage.shapes import recording_json

router = APIRouter(prefix=API_PREFIX, tags=["actions"])

MAX_CSV_BYTES = 512 * 1024 * 1024  # a city's year of actions is ~100 MB
SPOOL_BYTES = 1024 * 1024
Readers = Annotated[Reading, Depends(require_reading("actions.read"))]
CaseReaders = Annotated[Reading, Depends(require_reading("cases.read"))]
Admin = Annotated[Principal, Depends(require("actions.write"))]


class ActionIn(BaseModel):
    """One action as the CSV import knows it; naive times are read in BWC_TIMEZONE."""

    action_id: str = Field(min_length=1, max_length=128)
    case_number: str | None = Field(None, max_length=128)
    unit: str | None = Field(None, max_length=128)
    started_at: str = Field(min_length=1, max_length=64)
    ended_at: str = Field(min_length=1, max_length=64)
    officers: list[str] = Field(default_factory=list, max_length=100)
    devices: list[str] = Field(default_factory=list, max_length=100)
    location: str | None = Field(None, max_length=2000)
    kind: str | None = Field(None, max_length=128)

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        """PostgreSQL text cannot hold a NUL byte, and no real value has one: a 422, not a 500."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and "\x00" in text:
                raise ValueError("contains a NUL byte")
        return value


def date_param(value: str | None, name: str) -> date | None:
    if value is None or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadInput(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc


def _recordings(session: Session, ids: set[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    rows = session.scalars(select(Recording).where(Recording.id.in_(ids)).order_by(Recording.started_at, Recording.id))
    return [recording_json(r) for r in rows]


@router.get(
    "/actions", summary="Actions by period (local dates, inclusive), unit and verdict", response_model=dict[str, Any]
)
async def list_actions(
    reader: Readers,
    from_: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    to: Annotated[str | None, Query(max_length=10)] = None,
    unit: Annotated[str | None, Query(max_length=128)] = None,
    verdict: Literal["complete", "pending", "incomplete"] | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> Response:
    return await reader.run(_list_actions, reader.runtime, from_, to, unit, verdict, limit)


def _list_actions(
    session: Session,
    who: Principal,
    rt: Runtime,
    from_: str | None,
    to: str | None,
    unit: str | None,
    verdict: str | None,
    limit: int,
) -> Response:
    lo, hi = period_bounds(date_param(from_, "from"), date_param(to, "to"), rt.settings.tz)
    conditions: list[Any] = []
    scoped = action_condition(scope_for(who, utcnow()))
    if scoped is not None:
        conditions.append(scoped)
    if lo is not None:
        conditions.append(Action.started_at >= lo)
    if hi is not None:
        conditions.append(Action.started_at < hi)
    if unit is not None:
        conditions.append(Action.unit_id.in_(select(Unit.id).where(Unit.code == unit)))
    found = actions_json(session, conditions, utcnow())
    if verdict is not None:
        found = [a for a in found if a["verdict"] == verdict]
    return JSONResponse({"actions": found[:limit]})


@router.get(
    "/actions/{action_id}",
    summary="One action with devices, recordings, coverage verdict and reasons",
    response_model=dict[str, Any],
)
async def show_action(action_id: str, reader: Readers) -> Response:
    return await reader.run(_show_action, reader.runtime, action_id)


def _show_action(session: Session, who: Principal, rt: Runtime, action_id: str) -> Response:
    action = session.scalar(select(Action).where(Action.action_id == action_id))
    if action is None:
        raise NotFound(f"no action {action_id!r}")
    scope = scope_for(who, utcnow())
    note_uses(rt.sessions, scope, check_action(session, scope, action), "actions.read")
    data = action_json(session, action, utcnow())
    return JSONResponse({**data, "recording_details": _recordings(session, set(data["recordings"]))})


@router.post("/actions", summary="Create or update one action (admin)")
def upsert_action(body: ActionIn, session: SessionDep, rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    values: dict[str, str | None] = {
        **body.model_dump(exclude={"officers", "devices"}),
        "officers": ";".join(body.officers),
        "devices": ";".join(body.devices),
    }
    try:
        parsed = parse_action(values, rt.settings.tz)
    except BadRow as exc:
        raise BadInput(str(exc)) from exc
    outcome, action_pk = ActionWriter(Registry(session, who.actor, origin="api")).upsert(parsed)
    if outcome != "unchanged":
        on_actions_changed(session, rt.settings, [action_pk], who.actor)
        apply_case_holds(session, rt.store, who.actor)
    action = session.get(Action, action_pk)
    assert action is not None
    return {"outcome": outcome, "action": action_json(session, action, utcnow())}


@router.post(
    "/actions/import",
    summary="Import actions from a CSV body (admin); bad rows are reported by line, good rows import",
    openapi_extra={"requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}},
)
async def import_actions_csv(request: Request, rt: RuntimeDep, who: Admin) -> dict[str, Any]:
    name = request.headers.get("x-filename", "api-upload.csv")[:256]
    # The body is spooled (to disk past SPOOL_BYTES), never held whole; the import reads it back as a stream.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_CSV_BYTES:
                raise BadInput(f"CSV body larger than {MAX_CSV_BYTES} bytes; split it", code="too_large")
            await run_in_threadpool(body.write, chunk)
        body.seek(0)
        return await run_in_threadpool(_import, rt, cast(BinaryIO, body), who, name)


def _import(rt: Runtime, body: BinaryIO, who: Principal, name: str) -> dict[str, Any]:
    """The database work, in the thread pool: each batch is committed as it completes, then the summary."""
    with rt.sessions() as session:

        def after_batch(_done: BatchDone) -> None:
            apply_case_holds(session, rt.store, who.actor)  # recordings newly linked to a held case
            session.commit()

        report = import_actions(session, rt.settings, body, who.actor, name, after_batch=after_batch)
        session.commit()
        return report.as_dict()


@router.get("/cases/{case_number}", summary="All actions and recordings of a case", response_model=dict[str, Any])
async def show_case(case_number: str, reader: CaseReaders) -> Response:
    return await reader.run(_show_case, reader.runtime, case_number)


def _show_case(session: Session, who: Principal, rt: Runtime, case_number: str) -> Response:
    """The API's busiest read, in one hop to the thread pool (``Reading``), serialized once: a ready
    ``JSONResponse`` (stdlib ``json``, in C) that FastAPI neither re-encodes nor validates; the OpenAPI document
    still says ``response_model``."""
    now = utcnow()
    scope = scope_for(who, now)
    view = read_case(session, scope, case_number, now)
    note_uses(rt.sessions, scope, view.grants_used, "cases.read")
    return JSONResponse(
        {"case_number": case_number, "legal_hold": view.hold, "actions": view.actions, "recordings": view.recordings}
    )
