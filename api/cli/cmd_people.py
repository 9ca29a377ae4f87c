"""``bwc devices …`` and ``bwc officers …``: register devices, officers and device assignments (SPEC §6, §7).

Assignments are imported with ``bwc officers import-assignments FILE.csv`` (header ``device,officer,from,to``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.cli.common import Format, fail, out, print_json, print_table, runtime
from api.cli.csv_import import CLI_ACTOR, EXIT_NOTE, run_import
from audit.csv_rows import parse_time
from audit.imports import import_assignments, import_devices, import_officers
from audit.linking import on_actions_changed
from audit.registry import Change, Registry, assign_device, update_device, update_officer
from config.errors import BwcError
from config.settings import Settings
from storage.basics import iso_or_none
from storage.db import reading, transaction
from storage.models import Device, Officer, Unit

devices_app = typer.Typer(no_args_is_help=True, help="Recording devices (执法记录仪).")
officers_app = typer.Typer(no_args_is_help=True, help="Officers and who carries which device when.")

FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]
FileArg = Annotated[Path, typer.Argument(metavar="FILE.csv", help="the CSV file")]


def _apply(origin: str, change: Callable[[Registry, Settings], Change]) -> Change:
    """One registry change and the re-judging of the actions it touches, in one transaction."""
    rt = runtime()
    try:
        with transaction(rt.sessions) as session:
            result = change(Registry(session, CLI_ACTOR, origin=origin), rt.settings)
            if result.affected_actions:
                on_actions_changed(session, rt.settings, sorted(result.affected_actions), CLI_ACTOR)
    except BwcError as exc:  # a bad row is a BwcError too
        fail(exc.message)
    finally:
        rt.close()
    return result


def _said(what: str, result: Change) -> None:
    tail = f"; {len(result.affected_actions)} action(s) re-judged" if result.affected_actions else ""
    out.print(f"{what}: {result.outcome}{tail}", highlight=False, markup=False)


@devices_app.command("add")
def devices_add(
    serial: Annotated[str, typer.Argument(help="the device serial, as in file names")],
    model: Annotated[str | None, typer.Option(help="device model")] = None,
    unit: Annotated[str | None, typer.Option(help="unit code")] = None,
    clock_offset: Annotated[
        float | None, typer.Option("--clock-offset", help="seconds to add to the device's clock")
    ] = None,
) -> None:
    """Register a device or update the details given; a new clock offset re-judges its actions."""
    result = _apply(
        "bwc devices add",
        lambda reg, _settings: update_device(reg, serial, model=model, unit=unit, clock_offset_seconds=clock_offset),
    )
    _said(f"device {serial}", result)


@devices_app.command(
    "import", help="Devices from CSV with the header serial,model,unit,clock_offset_seconds. " + EXIT_NOTE
)
def devices_import(file: FileArg, fmt: FormatOpt = Format.table) -> None:
    raise typer.Exit(run_import(import_devices, file, fmt, "devices"))


@devices_app.command("list")
def devices_list(fmt: FormatOpt = Format.table) -> None:
    """Every known device with its unit and clock offset."""
    rows = _list(
        lambda s: [
            {
                "serial": d.serial,
                "model": d.model,
                "unit": unit,
                "clock_offset_seconds": d.clock_offset_seconds,
                "created_at": iso_or_none(d.created_at),
            }
            for d, unit in s.execute(
                select(Device, Unit.code).outerjoin(Unit, Unit.id == Device.unit_id).order_by(Device.serial)
            )
        ]
    )
    if fmt is Format.json:
        print_json(rows)
        return
    columns = ["serial", "model", "unit", "clock_offset_seconds", "created_at"]
    print_table("devices 执法记录仪", columns, [[r[c] for c in columns] for r in rows])


@officers_app.command("add")
def officers_add(
    code: Annotated[str, typer.Argument(help="the officer's code (警号 / 工号)")],
    name: Annotated[str | None, typer.Option(help="name")] = None,
    unit: Annotated[str | None, typer.Option(help="unit code")] = None,
    certified: Annotated[
        bool | None,
        typer.Option("--certified/--auxiliary", help="certified enforcement officer, or auxiliary staff (协管)"),
    ] = None,
) -> None:
    """Register an officer or update the details given; a change of certification re-judges their actions."""
    result = _apply(
        "bwc officers add", lambda reg, _settings: update_officer(reg, code, name=name, unit=unit, certified=certified)
    )
    _said(f"officer {code}", result)


@officers_app.command(
    "import",
    short_help="Import officers from CSV.",
    help="Officers from CSV with the header code,name,unit,certified. " + EXIT_NOTE,
)
def officers_import(file: FileArg, fmt: FormatOpt = Format.table) -> None:
    raise typer.Exit(run_import(import_officers, file, fmt, "officers"))


@officers_app.command("assign")
def officers_assign(
    device: Annotated[str, typer.Argument(help="device serial")],
    officer: Annotated[str, typer.Argument(help="officer code")],
    valid_from: Annotated[str, typer.Option("--from", metavar="TIME", help="start, in BWC_TIMEZONE unless offset")],
    valid_to: Annotated[str | None, typer.Option("--to", metavar="TIME", help="end; omit while still assigned")] = None,
) -> None:
    """Record that OFFICER carries DEVICE from --from (to --to); actions of the officer then use the device."""

    def change(reg: Registry, settings: Settings) -> Change:
        tz = settings.tz
        start = parse_time(valid_from, tz, "--from", date_only=True)
        end = parse_time(valid_to, tz, "--to", date_only=True) if valid_to else None
        return assign_device(reg, device, officer, start, end)

    _said(f"assignment {device} → {officer}", _apply("bwc officers assign", change))


@officers_app.command(
    "import-assignments",
    short_help="Import device assignments (device,officer,from,to) from CSV.",
    help="Device assignments from CSV with the header device,officer,from,to (empty 'to': still assigned). "
    + EXIT_NOTE,
)
def officers_import_assignments(file: FileArg, fmt: FormatOpt = Format.table) -> None:
    raise typer.Exit(run_import(import_assignments, file, fmt, "assignments"))


@officers_app.command("list")
def officers_list(fmt: FormatOpt = Format.table) -> None:
    """Every known officer with unit and certification (None: not known yet)."""
    rows = _list(
        lambda s: [
            {"code": o.code, "name": o.name, "unit": unit, "certified": o.certified}
            for o, unit in s.execute(
                select(Officer, Unit.code).outerjoin(Unit, Unit.id == Officer.unit_id).order_by(Officer.code)
            )
        ]
    )
    if fmt is Format.json:
        print_json(rows)
        return
    columns = ["code", "name", "unit", "certified"]
    print_table("officers 执法人员", columns, [[r[c] for c in columns] for r in rows])


def _list(query: Callable[[Session], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    rt = runtime()
    try:
        with reading(rt.sessions) as session:
            return query(session)
    finally:
        rt.close()


def register(app: typer.Typer) -> None:
    app.add_typer(devices_app, name="devices")
    app.add_typer(officers_app, name="officers")
