"""``bwc findings list|show|open|note|close|waive``: the rectification ledger (SPEC §13)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from api.cli import common
from api.cli.common import Format, fail, print_json
from audit.findings import change_by_hand, open_by_hand
from audit.findings_ledger import Filters, finding_json, ledger
from config.errors import BwcError
from config.settings import get_settings
from storage.basics import utcnow
from storage.db import reading, transaction
from storage.models import Finding

CLI_ACTOR = "cli"

findings_app = typer.Typer(no_args_is_help=True, help="Findings: the rectification ledger (问题清单 · 工作台账).")

IdArg = Annotated[int, typer.Argument(metavar="ID", min=1, max=2**31 - 1, help="the finding's id")]
NoteOpt = Annotated[str, typer.Option("--note", help="what was found or done (kept in the history)")]
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


class LedgerFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def _write(fn: Callable[..., Any], *args: Any) -> dict[str, Any]:
    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            finding: Finding = fn(session, *args)
            return finding_json(finding, utcnow())
    except BwcError as exc:
        fail(exc.message, exc.exit_code)
    finally:
        rt.close()


def _show(shape: dict[str, Any], fmt: Format) -> None:
    if fmt is Format.json:
        print_json(shape)
        return
    overdue = " (overdue 超期)" if shape["overdue"] else ""
    common.out.print(
        f"finding {shape['id']} · {shape['kind']} · {shape['subject']} · {shape['status']}{overdue}"
        f" · unit {shape['unit'] or '-'} · due {shape['due_at']}",
        highlight=False,
        markup=False,
    )
    for line in shape["history"]:
        words = line.get("note") or line.get("reason") or ""
        common.out.print(f"  {line['at']} {line['actor']} {line['change']} → {line['status']} {words}", markup=False)


@findings_app.command("list")
def list_cmd(
    unit: Annotated[str | None, typer.Option("--unit", help="only this unit's findings")] = None,
    status: Annotated[str | None, typer.Option("--status", help="open, rectifying, closed or waived")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="a reason code, late_upload, manual, ...")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="only open findings past their deadline")] = False,
    fmt: Annotated[LedgerFormat, typer.Option("--format", help="table, json, csv or xlsx")] = LedgerFormat.table,
    out_file: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="write here instead of stdout")] = None,
) -> None:
    """The work ledger (工作台账): findings and, per unit, open / overdue / closed in time / closed late."""
    if fmt is LedgerFormat.xlsx and out_file is None and sys.stdout.isatty():
        fail("xlsx is binary: give --out FILE or pipe stdout into a file")
    rt = common.runtime()
    try:
        with reading(rt.sessions) as session:
            book = ledger(session, Filters(unit, status, kind, overdue), utcnow(), rt.settings.timezone)
    except BwcError as exc:
        fail(exc.message, exc.exit_code)
    finally:
        rt.close()
    # The XLSX library loads only for the command that writes it (the CLI starts faster for every other one).
    from audit.findings_formats import render_csv, render_json, render_table, render_xlsx

    if fmt is LedgerFormat.table:
        if out_file is None:
            render_table(book, common.out)
        else:
            with out_file.open("w", encoding="utf-8") as fh:
                render_table(book, Console(file=fh, width=200, color_system=None))
        return
    if fmt is LedgerFormat.json:
        body = render_json(book).encode("utf-8")
    else:
        body = render_csv(book) if fmt is LedgerFormat.csv else render_xlsx(book)
    if out_file is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    try:
        out_file.write_bytes(body)
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    common.err.print(f"{len(book['findings'])} finding(s) written to {out_file}", highlight=False, markup=False)


@findings_app.command("show")
def show(finding_id: IdArg, fmt: FormatOpt = Format.table) -> None:
    """One finding with its history."""
    from audit.findings import get_finding

    rt = common.runtime()
    try:
        with reading(rt.sessions) as session:
            shape = finding_json(get_finding(session, finding_id), utcnow())
    except BwcError as exc:
        fail(exc.message, exc.exit_code)
    finally:
        rt.close()
    _show(shape, fmt)


@findings_app.command("open")
def open_cmd(
    subject: Annotated[str, typer.Option("--subject", help="action:ID, recording:N, device:D, officer:P or unit:U")],
    category: Annotated[str, typer.Option("--category", help="what kind of problem: uniform, language, ...")],
    note: NoteOpt,
    owner: Annotated[str | None, typer.Option("--owner", help="who must rectify it")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Open a finding by hand, for what only a person sees in the footage."""
    settings = get_settings()
    now = utcnow()
    _show(_write(open_by_hand, subject, category, note, CLI_ACTOR, now, settings.finding_due_days, owner), fmt)


@findings_app.command("note")
def note_cmd(
    finding_id: IdArg,
    note: NoteOpt,
    rectifying: Annotated[bool, typer.Option("--rectifying", help="rectification has started")] = False,
    owner: Annotated[str | None, typer.Option("--owner", help="who must rectify it")] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Add a note; with --rectifying an open finding becomes rectifying (整改中)."""
    change = "rectifying" if rectifying else "note"
    _show(_write(change_by_hand, finding_id, change, note, CLI_ACTOR, utcnow(), owner), fmt)


@findings_app.command("close")
def close_cmd(finding_id: IdArg, note: NoteOpt, fmt: FormatOpt = Format.table) -> None:
    """Close (销号) a finding with a rectification note."""
    _show(_write(change_by_hand, finding_id, "close", note, CLI_ACTOR, utcnow()), fmt)


@findings_app.command("waive")
def waive_cmd(
    finding_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="why it needs no rectification")],
    fmt: FormatOpt = Format.table,
) -> None:
    """Waive a finding, with a reason."""
    _show(_write(change_by_hand, finding_id, "waive", reason, CLI_ACTOR, utcnow()), fmt)


@findings_app.command("refresh")
def refresh_cmd() -> None:
    """Re-judge actions whose pending verdict ran out (no camera docked in time), opening their findings."""
    from audit.findings_refresh import judge_expired

    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            count = judge_expired(session, rt.settings, utcnow(), CLI_ACTOR)
    except BwcError as exc:
        fail(exc.message, exc.exit_code)
    finally:
        rt.close()
    common.out.print(f"{count} action(s) re-judged", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(findings_app, name="findings")
