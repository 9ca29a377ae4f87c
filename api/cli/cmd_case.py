"""``bwc case hold|release CASE --reason R``: legal holds on a case's recordings (SPEC §5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from api.cli import common
from api.cli.common import Format, fail, print_json
from audit.holds import HoldResult, hold_case, release_case
from config.errors import BwcError
from storage.basics import utcnow
from storage.db import transaction

CLI_ACTOR = "cli"

case_app = typer.Typer(no_args_is_help=True, help="Cases: legal hold and release.")

CaseArg = Annotated[str, typer.Argument(metavar="CASE", help="the case number (案件编号)")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="why (kept in the audit log)")]
FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


def _run(change: Callable[..., HoldResult], case: str, reason: str, fmt: Format) -> None:
    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            result = change(session, rt.store, case, reason, CLI_ACTOR, utcnow())
    except BwcError as exc:
        fail(exc.message)
    finally:
        rt.close()
    shape = result.as_json()
    if fmt is Format.json:
        print_json(shape)
        return
    verb = "held" if result.held else "released"
    common.out.print(f"case {case} {verb}: {len(result.recordings)} recording(s) changed", highlight=False)
    if shape["note"]:
        common.err.print(f"note: {shape['note']}", highlight=False, markup=False)
    for sha256 in result.missing_objects:
        common.err.print(f"warning: object {sha256} is missing from the store (run bwc fixity)", highlight=False)


@case_app.command("hold")
def hold(case: CaseArg, reason: ReasonOpt, fmt: FormatOpt = Format.table) -> None:
    """Put every recording of the case, now and later linked, under legal hold."""
    _run(hold_case, case, reason, fmt)


@case_app.command("release")
def release(case: CaseArg, reason: ReasonOpt, fmt: FormatOpt = Format.table) -> None:
    """Release the case's hold; recordings another held case claims stay held."""
    _run(release_case, case, reason, fmt)


def register(app: typer.Typer) -> None:
    app.add_typer(case_app, name="case")
