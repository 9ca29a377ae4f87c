"""``bwc export CASE --out FILE.zip`` and ``bwc verify-package FILE.zip`` (SPEC §10)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Annotated

import typer

from api.cli import common
from api.cli.common import EXIT_FINDING, Format, fail, print_json, progress_bar
from config.errors import BwcError
from storage.objects import StoreError

CLI_ACTOR = "cli"

FormatOpt = Annotated[Format, typer.Option("--format", help="table or json")]


def export(
    case: Annotated[str, typer.Argument(metavar="CASE", help="the case number (案件编号)")],
    out: Annotated[Path, typer.Option("--out", help="the ZIP file to write (must not exist yet)")],
) -> None:
    """Write the case's BagIt export: recordings, sidecars, case.json, events with proofs, checkpoint, key."""
    from audit.export import plan_export
    from audit.export_bag import write_bag
    from storage.basics import utcnow
    from storage.db import transaction

    if out.exists():
        fail(f"{out} exists already; give another --out (nothing was exported)")
    partial = out.with_name(f".{out.name}.part")
    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            plan = plan_export(session, rt.settings, case, CLI_ACTOR, utcnow())
        total = sum(m.size for m in plan.objects)
        with open(partial, "wb") as f, progress_bar("exporting", total, bytes_=True) as advance:
            write_bag(plan, rt.store, f, advance)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, out)  # the ZIP appears under its name only once complete
    except (BwcError, StoreError) as exc:
        fail(exc.message if isinstance(exc, BwcError) else f"object store: {exc}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        rt.close()
    files = len(plan.objects) + len(plan.files)
    common.out.print(f"exported case {case}: {files} files, {total} bytes of evidence to {out}", highlight=False)


def verify_package(
    file: Annotated[Path, typer.Argument(metavar="FILE.zip", help="an export made by bwc export")],
    key: Annotated[
        str | None, typer.Option("--key", help="the published verifier key to trust instead of the bag's own")
    ] = None,
    fmt: FormatOpt = Format.table,
) -> None:
    """Check an export offline (no database, no settings); exit 1 naming every damaged or altered member."""
    from audit.package_verify import verify_package as verify

    try:
        report = verify(file, key)
    except BwcError as exc:
        fail(exc.message)
    if fmt is Format.json:
        print_json(report.as_json())
    elif report.ok:
        cp = report.checkpoint or {}
        common.out.print(
            f"OK: {report.files} files intact, {report.events} events proven against checkpoint "
            f"{cp.get('origin')} size {cp.get('size')}",
            highlight=False,
        )
    for member, problem in report.findings:
        common.err.print(f"FAILED {member}: {problem}", highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(EXIT_FINDING)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("verify-package")(verify_package)
