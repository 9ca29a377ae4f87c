"""``bwc actions import FILE.csv``: enforcement actions from a CAD / case-system export (SPEC §6, §7)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import Format
from api.cli.csv_import import EXIT_NOTE, run_import
from api.cli.groups import actions_app, add_once
from audit.imports import import_actions


@actions_app.command(
    "import",
    short_help="Import actions from a CSV export (CAD / case system).",
    help=(
        "Import actions from CSV with the header "
        "action_id,case_number,unit,started_at,ended_at,officers,devices,location,kind "
        "(officers and devices ';'-separated; UTF-8 or GB18030; naive times in BWC_TIMEZONE). Re-importing an "
        "action_id updates it; a repeated action_id within one file is a bad row. " + EXIT_NOTE
    ),
)
def import_(
    file: Annotated[Path, typer.Argument(metavar="FILE.csv", help="the CSV file")],
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    raise typer.Exit(run_import(import_actions, file, fmt, "actions"))


def register(app: typer.Typer) -> None:
    add_once(app, actions_app, "actions")
