"""``bwc audit checkpoint|public-key|verify``: the tamper-evident audit log from the command line (SPEC §9)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import EXIT_FINDING, Format, err, out, print_json, runtime
from audit import checkpoints, log_verify, notes
from audit.signing import load_signer, load_verifier
from config.errors import BadInput
from config.settings import get_settings
from storage.db import derived_transaction, transaction

audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log: checkpoints, keys, verification.")


@audit_app.command("checkpoint")
def checkpoint() -> None:
    """Sign a checkpoint of the log now (unless the latest covers every event) and print its note."""
    settings = get_settings()
    signer = load_signer(settings)
    rt = runtime(settings)
    try:
        with derived_transaction(rt.sessions) as s:
            note = checkpoints.make_checkpoint(s, signer).note
    finally:
        rt.close()
    sys.stdout.write(note)
    sys.stdout.flush()


@audit_app.command("public-key")
def public_key() -> None:
    """Print the C2SP verifier key <name>+<key id>+<base64 key> that checks the checkpoints."""
    sys.stdout.write(f"{load_verifier(get_settings())}\n")
    sys.stdout.flush()


@audit_app.command("verify")
def verify(
    key: Annotated[
        str | None, typer.Option("--public-key", help="verifier key to check with (default: the configured key)")
    ] = None,
    kept: Annotated[
        list[Path] | None,
        typer.Option("--checkpoint", help="a checkpoint note kept outside the service (repeatable)", dir_okay=False),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Recompute every leaf and the tree from the database and check every checkpoint; exit 1 naming the first
    bad seq."""
    settings = get_settings()
    verifier = notes.parse_verifier(key) if key else load_verifier(settings)
    try:
        kept_notes = [path.read_text(encoding="utf-8") for path in kept or []]
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read a --checkpoint file: {exc}") from None
    rt = runtime(settings)
    try:
        with transaction(rt.sessions) as s:
            report = log_verify.verify_log(s, verifier, kept_notes)
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(report.as_json())
    elif report.finding is None:
        out.print(f"audit log ok: {report.events} events, {report.checkpoints} checkpoints verified", highlight=False)
    if report.finding is not None:
        bad = report.finding
        where = f"first bad seq {bad.seq}: " if bad.seq is not None else ""
        err.print(f"[red]audit log damaged:[/red] {where}{bad.message}", highlight=False)
        raise typer.Exit(EXIT_FINDING)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
