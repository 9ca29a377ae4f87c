"""Admin pages (SPEC §11): devices, officers and assignments (list, add, import CSV) and API tokens.

Adding and importing go through the same registry functions and CSV importers as ``bwc devices|officers``,
so a bad CSV row is reported by its line and the good rows still import. Every form here changes something:
each carries the session's CSRF token and must come from this site's origin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import ROLES, Principal, create_token, list_tokens, revoke_token
from api.deps import RuntimeDep, SessionDep
from api.i18n import TEXT
from api.i18n_errors import refusal_words
from api.params import RowId
from api.routes.web_common import LangQuery, PageReader, PageRoute, form_caller, message, page
from audit.csv_rows import parse_time
from audit.holds import apply_case_holds
from audit.imports import CsvImport, import_assignments, import_devices, import_officers
from audit.linking import on_actions_changed
from audit.registry import Change, Registry, assign_device, update_device, update_officer
from config.errors import BadInput, BwcError
from config.settings import Settings
from storage.basics import iso, iso_or_none
from storage.models import Device, DeviceAssignment, Officer, Unit
from storage.runtime import Runtime

router = APIRouter(include_in_schema=False, route_class=PageRoute)

MAX_CSV_BYTES = 10 * 1024 * 1024
LISTED = 1000
Field = Annotated[str, Form(max_length=256)]
Csrf = Annotated[str, Form(max_length=128)]
CsvFile = Annotated[UploadFile | None, File(description="a CSV file")]

SECTIONS = ("devices", "officers", "assignments", "tokens")
TABS = (*SECTIONS, "access")  # the access grants have their own page (api/routes/web_access.py)
IMPORTERS: dict[str, CsvImport] = {
    "devices": import_devices,
    "officers": import_officers,
    "assignments": import_assignments,
}
HEADERS = {
    "devices": "serial,model,unit,clock_offset_seconds",
    "officers": "code,name,unit,certified",
    "assignments": "device,officer,from,to",
}


def _rows(session: Session, section: str) -> list[dict[str, Any]]:
    """What the section lists (the first ``LISTED`` rows, in a stable order)."""
    if section == "devices":
        query: Any = select(Device, Unit.code).outerjoin(Unit, Unit.id == Device.unit_id).order_by(Device.serial)
        return [
            {"serial": d.serial, "model": d.model, "unit": u, "clock_offset_seconds": d.clock_offset_seconds}
            for d, u in session.execute(query.limit(LISTED))
        ]
    if section == "officers":
        query = select(Officer, Unit.code).outerjoin(Unit, Unit.id == Officer.unit_id).order_by(Officer.code)
        return [
            {"code": o.code, "name": o.name, "unit": u, "certified": o.certified}
            for o, u in session.execute(query.limit(LISTED))
        ]
    if section == "assignments":
        query = (
            select(DeviceAssignment, Device.serial, Officer.code)
            .join(Device, Device.id == DeviceAssignment.device_id)
            .join(Officer, Officer.id == DeviceAssignment.officer_id)
            .order_by(Device.serial, DeviceAssignment.valid_from)
        )
        return [
            {"device": d, "officer": o, "from": iso(a.valid_from), "to": iso_or_none(a.valid_to)}
            for a, d, o in session.execute(query.limit(LISTED))
        ]
    return list_tokens(session)


def admin_page(
    request: Request, session: Session, lang: str, who: Principal, section: str, status: int = 200, **context: Any
) -> Response:
    context.setdefault("error", None)
    context.setdefault("done", None)
    return page(
        request,
        "admin.html",
        lang,
        status,
        who=who,
        section=section,
        sections=TABS,
        rows=_rows(session, section),
        csv_header=HEADERS.get(section),
        roles=ROLES,
        **context,
    )


def _offset(value: str) -> float | None:
    """A clock offset typed in seconds (empty: leave the stored one); a year either way at most."""
    if not value.strip():
        return None
    try:
        offset = float(value)
    except ValueError:
        raise BadInput(f"clock_offset_seconds: {value!r} is not a number") from None
    if not abs(offset) <= 366 * 86400:  # also refuses nan
        raise BadInput("clock_offset_seconds: more than a year; check the value")
    return offset


def _error_words(exc: BwcError, lang: str) -> str:
    return refusal_words(exc.message, lang)


@router.get("/admin")
async def admin_index(reader: PageReader, lang: LangQuery = None) -> Response:
    return await reader.run(_admin_section, reader.request, reader.lang, "devices")


@router.get("/admin/{section}")
async def admin_section(section: str, reader: PageReader, lang: LangQuery = None) -> Response:
    return await reader.run(_admin_section, reader.request, reader.lang, section)


def _admin_section(session: Session, who: Principal, request: Request, lang: str, section: str) -> Response:
    if section not in SECTIONS:
        return message(request, lang, 404, TEXT[lang]["not_found_generic"], who=who)
    return admin_page(request, session, lang, who, section)


def _apply(
    session: Session, settings: Settings, who: Principal, origin: str, change: Callable[[Registry], Change]
) -> Change:
    """One registry change and the re-judging of the actions it touches (the request's transaction)."""
    result = change(Registry(session, who.actor, origin=origin))
    if result.affected_actions:
        on_actions_changed(session, settings, sorted(result.affected_actions), who.actor)
    return result


def _required(**fields: str) -> None:
    """Refuse an add-form missing one of its required fields, naming the first (as the CSV importers do)."""
    for label, value in fields.items():
        if not value.strip():
            raise BadInput(f"{label}: required")


def _save(
    request: Request,
    session: Session,
    rt: Runtime,
    csrf: str,
    lang: str | None,
    section: str,
    what: str,
    change: Callable[[Registry], Change],
) -> Response:
    """One add-form: the caller and its CSRF token, then ``change`` (whose checks raise ``BadInput``) in a
    nested transaction, so that a refused change leaves nothing behind and the section re-renders saying why."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            result = _apply(session, rt.settings, who, "web admin", change)
    except BwcError as exc:
        return admin_page(request, session, lang, who, section, 422, error=_error_words(exc, lang))
    t = TEXT[lang]
    done = t["saved"].format(what=what, outcome=t.get(f"outcome_{result.outcome}", result.outcome))
    return admin_page(request, session, lang, who, section, done=done)


@router.post("/admin/devices")
def add_device(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    serial: Field = "",
    model: Field = "",
    unit: Field = "",
    clock_offset_seconds: Annotated[str, Form(max_length=32)] = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    serial = serial.strip()

    def change(reg: Registry) -> Change:
        offset = _offset(clock_offset_seconds)
        _required(serial=serial)
        return update_device(
            reg, serial, model=model.strip() or None, unit=unit.strip() or None, clock_offset_seconds=offset
        )

    return _save(request, session, rt, csrf, lang, "devices", serial, change)


@router.post("/admin/officers")
def add_officer(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    code: Field = "",
    name: Field = "",
    unit: Field = "",
    certified: Annotated[str, Form(max_length=8)] = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    code = code.strip()

    def change(reg: Registry) -> Change:
        _required(code=code)
        known = {"yes": True, "no": False}.get(certified)
        return update_officer(reg, code, name=name.strip() or None, unit=unit.strip() or None, certified=known)

    return _save(request, session, rt, csrf, lang, "officers", code, change)


@router.post("/admin/assignments")
def add_assignment(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    device: Field = "",
    officer: Field = "",
    valid_from: Annotated[str, Form(alias="from", max_length=40)] = "",
    valid_to: Annotated[str, Form(alias="to", max_length=40)] = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    tz = rt.settings.tz

    def change(reg: Registry) -> Change:
        _required(device=device, officer=officer, **{"from": valid_from})
        start = parse_time(valid_from, tz, "from", date_only=True)
        end = parse_time(valid_to, tz, "to", date_only=True) if valid_to.strip() else None
        return assign_device(reg, device.strip(), officer.strip(), start, end)

    return _save(request, session, rt, csrf, lang, "assignments", f"{device.strip()} → {officer.strip()}", change)


@router.post("/admin/{section}/import")
async def import_csv(
    section: str,
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    file: CsvFile = None,
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    """A CSV import as ``bwc … import`` runs it: good rows kept, bad rows listed by line number."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    importer = IMPORTERS.get(section)
    if importer is None:
        return message(request, lang, 404, TEXT[lang]["not_found_generic"], who=who)
    if file is None:
        return admin_page(request, session, lang, who, section, 422, error=TEXT[lang]["no_file"])
    body = await file.read(MAX_CSV_BYTES + 1)
    if len(body) > MAX_CSV_BYTES:
        text = TEXT[lang]["csv_too_large"].format(mb=MAX_CSV_BYTES // (1024 * 1024))
        return admin_page(request, session, lang, who, section, 413, error=text)
    name = (file.filename or "upload.csv")[:256]
    try:
        with session.begin_nested():
            report = importer(
                session,
                rt.settings,
                body,
                who.actor,
                name,
                after_batch=lambda _done: apply_case_holds(session, rt.store, who.actor),
            )
    except BwcError as exc:  # a wrong header or an undecidable encoding: nothing imported
        return admin_page(request, session, lang, who, section, 422, error=f"{name}: {_error_words(exc, lang)}")
    apply_case_holds(session, rt.store, who.actor)
    t = TEXT[lang]
    done = t["imported"].format(
        created=report.created, updated=report.updated, unchanged=report.unchanged, bad=len(report.errors)
    )
    bad_rows = [t["bad_line"].format(line=e.line, reason=refusal_words(e.reason, lang)) for e in report.errors]
    return admin_page(request, session, lang, who, section, 422 if bad_rows else 200, done=done, bad_rows=bad_rows)


@router.post("/admin/tokens")
def add_token(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    name: Field = "",
    role: Annotated[str, Form(max_length=16)] = "",
    station: Field = "",
    units: Field = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    """Create a token; its secret is shown on this answer only (only its hash is kept).

    ``units`` (comma-separated) scope a reviewer token (SPEC §15), as ``bwc token create --unit``."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            token, secret = create_token(
                session,
                role=role,
                name=name,
                station_code=station.strip() or None,
                units=[u for u in units.split(",") if u.strip()],
                actor=who.actor,
            )
    except BwcError as exc:
        return admin_page(request, session, lang, who, "tokens", exc.status, error=_error_words(exc, lang))
    return admin_page(request, session, lang, who, "tokens", 201, new_secret=secret, new_name=token.name)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke(
    token_id: RowId, request: Request, session: SessionDep, rt: RuntimeDep, csrf: Csrf = "", lang: LangQuery = None
) -> Response:
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            token = revoke_token(session, str(token_id), actor=who.actor)
    except BwcError as exc:
        return admin_page(request, session, lang, who, "tokens", exc.status, error=_error_words(exc, lang))
    return admin_page(request, session, lang, who, "tokens", done=TEXT[lang]["revoked"].format(name=token.name))
