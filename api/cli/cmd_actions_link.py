"""``bwc actions link|unlink ACTION_ID RECORDING_ID``: a reviewer's links by hand, audited (SPEC §6)."""

from __future__ import annotations

import getpass

import typer

from api.cli import common
from api.cli.common import Format, fail, print_json
from api.cli.groups import actions_app, add_once
from audit.linking import ManualChange, link_by_hand, unlink_by_hand
from audit.shapes import action_json
from config.errors import BwcError
from storage.basics import utcnow
from storage.db import transaction

ACTION = typer.Argument(..., help="The action's external id.")
RECORDING = typer.Argument(..., help="The recording's id (bwc recordings list).")
FORMAT = typer.Option(Format.table, "--format", help="table or json")


def cli_actor() -> str:
    """Who the audit log names: the operating-system user running ``bwc``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no user name in this environment
        return "cli"


@actions_app.command("link")
def link(action_id: str = ACTION, recording_id: int = RECORDING, fmt: Format = FORMAT) -> None:
    """Link a recording to an action by hand; it stays through every recompute until unlinked by hand."""
    _run("link", action_id, recording_id, fmt)


@actions_app.command("unlink")
def unlink(action_id: str = ACTION, recording_id: int = RECORDING, fmt: Format = FORMAT) -> None:
    """Take a recording off an action by hand; no recompute links it again."""
    _run("unlink", action_id, recording_id, fmt)


def _run(verb: str, action_id: str, recording_id: int, fmt: Format) -> None:
    rt = common.runtime()
    try:
        with transaction(rt.sessions) as session:
            change: ManualChange
            if verb == "link":
                change = link_by_hand(session, rt.settings, rt.store, action_id, recording_id, cli_actor())
            else:
                change = unlink_by_hand(session, rt.settings, action_id, recording_id, cli_actor())
            data = action_json(session, change.action, utcnow())
    except BwcError as exc:
        fail(exc.message)
    finally:
        rt.close()
    if fmt is Format.json:
        print_json({"changed": change.changed, "action": data})
        return
    done = f"{verb}ed" if change.changed else f"already {verb}ed by hand, nothing changed"
    preposition = "to" if verb == "link" else "from"
    common.out.print(
        f"recording {recording_id} {done} {preposition} action {action_id}; verdict: {data['verdict']}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    add_once(app, actions_app, "actions")
