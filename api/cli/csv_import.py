"""Running one CSV import from the command line: one transaction, counts on stdout, bad rows on stderr."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from api.cli.common import EXIT_OK, EXIT_USAGE, Format, err, fail, out, print_json, runtime
from audit.holds import apply_case_holds
from audit.imports import ImportReport
from config.errors import BwcError
from config.settings import Settings
from storage.db import transaction

CLI_ACTOR = "cli"

Importer = Callable[[Session, Settings, bytes, str, str], ImportReport]

EXIT_NOTE = (
    "Each row is imported on its own: good rows are kept even when others are bad. Bad rows are listed on "
    "stderr as 'line N: reason' (the header is line 1) and the exit status is then 2; 0 when every row was good. "
    "A file whose header or encoding is wrong imports nothing (exit 2)."
)


def run_import(importer: Importer, path: Path, fmt: Format, what: str) -> int:
    """Import ``path`` in one transaction; returns the exit status."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    rt = runtime()
    try:
        with transaction(rt.sessions) as session:
            report = importer(session, rt.settings, data, CLI_ACTOR, path.name)
            apply_case_holds(session, rt.store, CLI_ACTOR)  # recordings newly linked to a held case
    except BwcError as exc:
        fail(f"{path.name}: {exc.message}")
    finally:
        rt.close()
    for error in report.errors:
        err.print(f"line {error.line}: {error.reason}", highlight=False, markup=False)
    if fmt is Format.json:
        print_json({"file": path.name} | report.as_dict())
    else:
        out.print(
            f"{what}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.errors)} bad row(s)",
            highlight=False,
        )
    return EXIT_USAGE if report.errors else EXIT_OK
