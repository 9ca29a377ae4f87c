"""``bwc report missing`` (SPEC §6, §7) and ``bwc report period``, the written report (SPEC §14)."""

from __future__ import annotations

import re
import sys
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.cli.common import err, fail, out, runtime
from audit.labels import LANGS
from audit.period_query import ledger_findings, period_report
from audit.reports import missing_report
from config.errors import BwcError
from storage.basics import utcnow
from storage.db import reading

report_app = typer.Typer(no_args_is_help=True, help="Audit reports.")

_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")


class ReportFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


def parse_date(value: str | None, option: str) -> date | None:
    """YYYY-MM-DD (or YYYY/M/D); a bad date is bad usage (exit 2)."""
    if value is None:
        return None
    m = _DATE.match(value.strip())
    if m is None:
        raise typer.BadParameter(f"{value!r} is not a date (expected YYYY-MM-DD)", param_hint=option)
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date: {exc}", param_hint=option) from None


@report_app.command("missing")
def missing(
    date_from: Annotated[
        str | None, typer.Option("--from", metavar="DATE", help="first day, inclusive, in BWC_TIMEZONE")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", metavar="DATE", help="last day, inclusive, in BWC_TIMEZONE")
    ] = None,
    unit: Annotated[str | None, typer.Option("--unit", help="only this unit's actions and devices")] = None,
    fmt: Annotated[ReportFormat, typer.Option("--format", help="table, json, csv or xlsx")] = ReportFormat.table,
    out_file: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="write here instead of stdout")] = None,
) -> None:
    """Actions whose verdict is not complete, per-unit totals, late uploads, missing files, unclaimed recordings.

    A non-empty report is not an error: the exit status is 0. xlsx needs --out unless stdout is a pipe.
    """
    start, end = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if fmt is ReportFormat.xlsx and out_file is None and sys.stdout.isatty():
        fail("xlsx is binary: give --out FILE or pipe stdout into a file")
    rt = runtime()
    try:
        with reading(rt.sessions) as session:
            report = missing_report(session, rt.settings, start, end, unit, utcnow())
    except BwcError as exc:
        fail(exc.message)
    finally:
        rt.close()

    # The XLSX and PDF libraries load only for the command that writes them: every other command, and a
    # station's push above all, starts without them (half of the CLI's start-up time).
    from audit.report_formats import render_csv, render_json, render_table, render_xlsx

    if fmt is ReportFormat.table:
        if out_file is None:
            render_table(report, out)
        else:
            with out_file.open("w", encoding="utf-8") as fh:
                render_table(report, Console(file=fh, width=200, color_system=None))
        return
    body: bytes
    if fmt is ReportFormat.json:
        body = render_json(report).encode("utf-8")
    elif fmt is ReportFormat.csv:
        body = render_csv(report)
    else:
        body = render_xlsx(report)
    if out_file is None:
        sys.stdout.flush()
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
    else:
        try:
            out_file.write_bytes(body)
        except OSError as exc:
            fail(f"cannot write {out_file}: {exc.strerror or exc}")
        err.print(
            f"{len(report['actions'])} action(s) not complete; report written to {out_file}",
            highlight=False,
            markup=False,
        )


@report_app.command("period")
def period(
    date_from: Annotated[str, typer.Option("--from", metavar="DATE", help="first day, inclusive, in BWC_TIMEZONE")],
    date_to: Annotated[str, typer.Option("--to", metavar="DATE", help="last day, inclusive, in BWC_TIMEZONE")],
    out_file: Annotated[Path, typer.Option("--out", metavar="FILE", help="FILE.xlsx or FILE.pdf")],
    unit: Annotated[str | None, typer.Option("--unit", help="only this unit")] = None,
    lang: Annotated[str | None, typer.Option("--lang", help="en or zh (default: BWC_LANGUAGE)")] = None,
) -> None:
    """The written report for a period (SPEC §14): coverage per unit, trend, reasons, late uploads, findings."""
    start, end = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    suffix = out_file.suffix.lower()
    if suffix not in (".xlsx", ".pdf"):
        raise typer.BadParameter(f"{out_file} must end in .xlsx or .pdf", param_hint="--out")
    if lang is not None and lang not in LANGS:
        raise typer.BadParameter(f"{lang!r} is not one of {', '.join(LANGS)}", param_hint="--lang")
    from audit.period_render_pdf import render_period_pdf  # loaded only here (see missing above)
    from audit.period_render_xlsx import render_period_xlsx

    rt = runtime()
    try:
        with reading(rt.sessions) as session:
            report = period_report(session, rt.settings, start, end, unit, utcnow(), ledger_findings())
        language = lang or rt.settings.language
        body = render_period_xlsx(report, language) if suffix == ".xlsx" else render_period_pdf(report, language)
    except BwcError as exc:
        fail(exc.message, exc.exit_code)
    finally:
        rt.close()
    try:
        out_file.write_bytes(body)
    except OSError as exc:
        fail(f"cannot write {out_file}: {exc.strerror or exc}")
    err.print(
        f"{report.total.current.actions} action(s) in {len(report.units)} unit(s); report written to {out_file}",
        highlight=False,
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report")
