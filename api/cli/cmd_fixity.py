"""``bwc fixity --all | --sample N [--older-than DAYS]``: re-hash stored objects (SPEC §5, §7, §9)."""

from __future__ import annotations

import typer

from api.cli import common
from api.cli.common import EXIT_FINDING, EXIT_USAGE, Format, fail, print_json, print_table, progress_bar
from audit.fixity import run_checks, select_targets
from storage.db import transaction
from storage.objects import StoreError

CLI_ACTOR = "cli"


def fixity(
    all_: bool = typer.Option(False, "--all", help="Re-hash every recording and sidecar."),
    sample: int | None = typer.Option(None, "--sample", min=1, help="Re-hash the N least recently checked objects."),
    older_than: float | None = typer.Option(
        None, "--older-than", min=0, help="Only objects not checked in the last DAYS days."
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Re-hash objects from the store; exit 1 naming every mismatched and every missing object."""
    if all_ == (sample is not None):
        fail("give exactly one of --all or --sample N", EXIT_USAGE)
    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            targets = select_targets(session, sample=sample, older_than_days=older_than)
        with progress_bar("checking fixity", len(targets)) as advance:
            report = run_checks(rt.sessions, rt.store, rt.settings, targets, CLI_ACTOR, advance)
    except StoreError as exc:
        fail(f"object store: {exc}", EXIT_USAGE)
    finally:
        rt.close()
    findings = report.findings
    if fmt is Format.json:
        print_json(report.as_json())
    else:
        if findings:
            rows = [[c.result, c.target.kind, c.target.id, c.target.name, c.target.sha256] for c in findings]
            print_table("fixity findings", ["result", "kind", "id", "file", "sha256"], rows)
        common.out.print(f"{len(report.checked)} objects checked, {len(findings)} failed", highlight=False)
    for c in findings:
        common.err.print(
            f"{c.result}: {c.target.subject} {c.target.name} sha256 {c.target.sha256}", markup=False, highlight=False
        )
    if findings:
        raise typer.Exit(EXIT_FINDING)


def register(app: typer.Typer) -> None:
    app.command("fixity")(fixity)
