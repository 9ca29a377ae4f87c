"""``bwc storage reconcile [--apply]``: objects in the store that no recording or sidecar names (SPEC §5)."""

from __future__ import annotations

import typer

from api.cli import common
from api.cli.common import Format, print_json, print_table
from config.settings import mask_url
from storage.db import transaction
from storage.reconcile import reconcile

CLI_ACTOR = "cli"

storage_app = typer.Typer(no_args_is_help=True, help="The object store.")


@storage_app.command("reconcile")
def reconcile_command(
    apply: bool = typer.Option(False, "--apply", help="Record each new unreferenced object in the audit log."),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """List stored objects no recording or sidecar names; --apply records them. Nothing is ever deleted."""
    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            result = reconcile(session, rt.store, apply=apply, actor=CLI_ACTOR)
    finally:
        rt.close()
    if fmt is Format.json:
        print_json({"store": mask_url(rt.store.url), **result.json()})
        return
    rows = [(u.key, u.size, "yes" if u.recorded else "no") for u in result.unreferenced]
    print_table("unreferenced objects", ["key", "size", "recorded"], rows)
    summary = f"{result.checked} objects checked, {len(result.unreferenced)} unreferenced"
    if apply:
        summary += f", {result.recorded_now} newly recorded in the audit log"
    elif any(not u.recorded for u in result.unreferenced):
        summary += " (bwc storage reconcile --apply records them)"
    common.out.print(summary, highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(storage_app, name="storage")
