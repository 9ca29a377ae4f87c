"""The findings ledger's pages (SPEC §13, 工作台账): the ledger with its per-unit tallies and downloads, one
finding with its history, and the auditors' forms that open, annotate, close and waive findings.

Scope is the API's: ``audit.access.report_units`` decides which units a reviewer's ledger covers and
``check_unit`` whether one finding is theirs. Changes go through the same services as ``bwc findings`` and
``/api/v1/findings``; every form carries the session's CSRF token, and a refused change re-renders its page
with the reason in the page's language, keeping what was typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import RuntimeDep, SessionDep
from api.i18n import TEXT
from api.params import RowId
from api.permissions import allowed
from api.routes.findings import ledger_download
from api.routes.web_common import (
    LangQuery,
    PageReader,
    PageRoute,
    download,
    error_text,
    form_caller,
    not_found,
    page,
    path_part,
)
from audit.access import check_unit, report_units, scope_for
from audit.findings import change_by_hand, get_finding, open_by_hand
from audit.findings_ledger import NO_UNIT, Filters, finding_json, ledger, list_findings, tallies
from audit.findings_rules import KINDS, LIVE, OPEN, STATUSES, parse_subject
from audit.labels import finding_kind_words, finding_status_words
from config.errors import BadInput, BwcError, NotFound
from storage.basics import utcnow
from storage.models import Unit
from storage.runtime import Runtime

router = APIRouter(include_in_schema=False, route_class=PageRoute)

PAGE_SIZE = 50
MAX_PAGE = 100_000
StatusQuery = Literal["", "open", "rectifying", "closed", "waived"]
assert set(StatusQuery.__args__) == {"", *STATUSES}  # type: ignore[attr-defined]
Done = Literal["", "opened", "note", "rectifying", "close", "waive"]
UnitQuery = Annotated[str, Query(max_length=128)]
KindQuery = Annotated[str, Query(max_length=64)]
PageQuery = Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)]
Text = Annotated[str, Form(max_length=8000)]  # past the services' 4000, so that they say "too long" in words
Short = Annotated[str, Form(max_length=512)]
Owner = Annotated[str, Form(max_length=256)]  # the API's limit
Csrf = Annotated[str, Form(max_length=128)]


def subject_href(subject: str, lang: str, can_play: bool) -> str | None:
    """The page of a finding's subject, where one exists for the caller (a recording's is its player)."""
    try:
        kind, key = parse_subject(subject)
    except BadInput:
        return None
    if kind == "action":
        return f"/actions/{path_part(key)}?lang={lang}"
    if kind == "recording" and key.isdigit() and can_play:
        return f"/recordings/{key}/play?lang={lang}"
    return None


def words(lang: str, can_play: bool) -> dict[str, Callable[..., Any]]:
    """The helpers both templates use: kinds and statuses in words, subjects as links."""
    return {
        "kind_words": lambda kind: finding_kind_words(kind, lang),
        "fstatus": lambda status: finding_status_words(status, lang),
        "subject_href": lambda subject: subject_href(subject, lang, can_play),
    }


def error_words(exc: BwcError, lang: str, status: str | None = None) -> str:
    """A refused change in the page's language (the service's codes have their own words)."""
    text = TEXT[lang].get(f"f_err_{exc.code}")
    if text is None:
        return error_text(exc, lang)[1]
    return text.format(status=finding_status_words(status, lang))


def ledger_page(
    request: Request,
    session: Session,
    who: Principal,
    lang: str,
    form: dict[str, Any],
    status: int = 200,
    **context: Any,
) -> Response:
    """The ledger under ``form``'s filters: per-unit tallies over all of it, findings a page at a time."""
    now = utcnow()
    scope = scope_for(who, now)
    covered = report_units(scope, form["unit"] or None)
    filters = Filters.covering(
        covered, status=form["status"] or None, kind=form["kind"] or None, overdue=form["overdue"]
    )
    counted, total = tallies(session, filters, now)
    start = (form["page"] - 1) * PAGE_SIZE
    shown = list_findings(session, filters, now, PAGE_SIZE, start)
    units = (
        sorted(scope.units) if scope.units is not None else list(session.scalars(select(Unit.code).order_by(Unit.code)))
    )
    query = {k: v for k, v in form.items() if v and k != "page"}
    context.setdefault("error", None)
    context.setdefault("opening", {"subject": "", "category": "", "note": ""})
    return page(
        request,
        "findings.html",
        lang,
        status,
        who=who,
        form=form,
        query=query,
        units=units,
        statuses=STATUSES,
        kinds=KINDS,
        tallies=counted,
        no_unit=NO_UNIT,
        total=total,
        findings=[finding_json(f, now) for f in shown],
        page_no=form["page"],
        more=start + PAGE_SIZE < total,
        can_write=allowed(who.role, "findings.write"),
        **words(lang, allowed(who.role, "recordings.content")),
        **context,
    )


def _form(unit: str, status: str, kind: str, overdue: bool, page_no: int) -> dict[str, Any]:
    return {"unit": unit.strip(), "status": status, "kind": kind.strip(), "overdue": overdue, "page": page_no}


@router.get("/findings")
async def findings_page(
    reader: PageReader,
    unit: UnitQuery = "",
    status: StatusQuery = "",
    kind: KindQuery = "",
    overdue: bool = False,
    page_no: PageQuery = 1,
    lang: LangQuery = None,
) -> Response:
    form = _form(unit, status, kind, overdue, page_no)
    return await reader.run(_findings_page, reader.request, reader.lang, form)


def _findings_page(session: Session, who: Principal, request: Request, lang: str, form: dict[str, Any]) -> Response:
    return ledger_page(request, session, who, lang, form)


@router.get("/findings.{fmt}")
async def findings_download(
    fmt: Literal["csv", "xlsx"],
    reader: PageReader,
    unit: UnitQuery = "",
    status: StatusQuery = "",
    kind: KindQuery = "",
    overdue: bool = False,
    lang: LangQuery = None,
) -> Response:
    """The same ledger as the page, through the same formats as ``GET /api/v1/findings?format=``."""

    timezone = reader.runtime.settings.timezone

    def make(session: Session, who: Principal) -> Response:
        now = utcnow()
        covered = report_units(scope_for(who, now), unit.strip() or None)
        filters = Filters.covering(covered, status=status or None, kind=kind.strip() or None, overdue=overdue)
        return ledger_download(ledger(session, filters, now, timezone), covered, now, fmt)

    return await download(reader, make)


@router.post("/findings/new")
def open_finding(
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    subject: Short = "",
    category: Short = "",
    note: Text = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    """An auditor's finding by hand; a refused one re-renders the ledger with the form as it was typed."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    try:
        parse_subject(subject)  # a malformed subject is bad input, not "not found"
        with session.begin_nested():
            found = open_by_hand(session, subject, category, note, who.actor, utcnow(), rt.settings.finding_due_days)
    except BwcError as exc:
        opening = {"subject": subject, "category": category, "note": note}
        form = _form("", "", "", False, 1)
        return ledger_page(request, session, who, lang, form, exc.status, error=error_words(exc, lang), opening=opening)
    return _back(found.id, "opened", lang)


def _back(finding_id: int, done: str, lang: str) -> Response:
    """Post, then redirect: the finding's page shows its new state, and a reload sends nothing again."""
    return RedirectResponse(f"/findings/{finding_id}?{urlencode({'done': done, 'lang': lang})}", status_code=303)


def finding_view(
    request: Request,
    session: Session,
    who: Principal,
    lang: str,
    finding_id: int,
    status: int = 200,
    **context: Any,
) -> Response:
    """One finding with its history and, for auditors, the forms that move it on."""
    now = utcnow()
    try:
        found = get_finding(session, finding_id)
    except NotFound:
        return not_found(request, lang, who, "f_not_found", finding_id)
    check_unit(scope_for(who, now), found.unit.code if found.unit else None, f"finding {finding_id}")
    context.setdefault("error", None)
    context.setdefault("typed", {})
    return page(
        request,
        "finding.html",
        lang,
        status,
        who=who,
        f=finding_json(found, now),
        live=found.status in LIVE,
        can_rectify=found.status == OPEN,
        can_write=allowed(who.role, "findings.write"),
        **words(lang, allowed(who.role, "recordings.content")),
        **context,
    )


@router.get("/findings/{finding_id}")
async def finding_page(finding_id: RowId, reader: PageReader, done: Done = "", lang: LangQuery = None) -> Response:
    return await reader.run(_finding_page, reader.request, reader.lang, finding_id, done or None)


def _finding_page(
    session: Session, who: Principal, request: Request, lang: str, finding_id: int, done: str | None
) -> Response:
    return finding_view(request, session, who, lang, finding_id, done=done)


def _change(
    request: Request,
    session: Session,
    rt: Runtime,
    finding_id: int,
    change: str,
    text: str,
    csrf: str,
    lang: str | None,
    owner: str = "",
) -> Response:
    """One change by hand in the request's transaction; refused, the page says why and keeps the text.

    A note may also name the finding's owner (as the API's ``owner``); empty leaves the owner as it is."""
    lang, who = form_caller(request, rt, lang, csrf)
    if isinstance(who, Response):
        return who
    try:
        with session.begin_nested():
            change_by_hand(session, finding_id, change, text, who.actor, utcnow(), owner)
    except NotFound:
        return not_found(request, lang, who, "f_not_found", finding_id)
    except BwcError as exc:
        now_status = get_finding(session, finding_id).status
        error = error_words(exc, lang, now_status)
        return finding_view(
            request, session, who, lang, finding_id, exc.status, error=error, typed={change: text, "owner": owner}
        )
    return _back(finding_id, change, lang)


@router.post("/findings/{finding_id}/notes")
def add_note(
    finding_id: RowId,
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    note: Text = "",
    rectifying: Annotated[str, Form(max_length=8)] = "",
    owner: Owner = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    """A note; with ``rectifying`` set, rectification starts (open → rectifying); ``owner`` names who fixes it."""
    change = "rectifying" if rectifying else "note"
    return _change(request, session, rt, finding_id, change, note, csrf, lang, owner)


@router.post("/findings/{finding_id}/close")
def close_finding(
    finding_id: RowId,
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    note: Text = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    return _change(request, session, rt, finding_id, "close", note, csrf, lang)


@router.post("/findings/{finding_id}/waive")
def waive_finding(
    finding_id: RowId,
    request: Request,
    session: SessionDep,
    rt: RuntimeDep,
    reason: Text = "",
    csrf: Csrf = "",
    lang: LangQuery = None,
) -> Response:
    return _change(request, session, rt, finding_id, "waive", reason, csrf, lang)
