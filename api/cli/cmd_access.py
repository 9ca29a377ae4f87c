"""``bwc access grant|list|revoke``: approvals that let a reviewer read another unit's case (SPEC §15)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.common import Format, err, print_json, print_table, runtime
from audit.access import DEFAULT_HOURS, MAX_HOURS, grant_access, grant_json, list_grants, revoke_grant
from storage.basics import utcnow
from storage.db import reading, transaction

access_app = typer.Typer(no_args_is_help=True, help="Approvals: time-limited access to another unit's case.")

CLI_ACTOR = "cli"


@access_app.command("grant")
def grant(
    to: Annotated[str, typer.Option("--to", help="the reviewer token's name (the person it belongs to)")],
    case: Annotated[str, typer.Option("--case", help="the case number to open to them")],
    approver: Annotated[str, typer.Option("--approver", help="who approved it (the case's unit head)")],
    reason: Annotated[str, typer.Option("--reason", help="why; kept in the audit log")],
    hours: Annotated[
        float, typer.Option("--hours", help=f"how long it lasts (at most {MAX_HOURS})", show_default=True)
    ] = DEFAULT_HOURS,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Let a reviewer read one case's evidence until the grant expires; an audit event ``access.granted``."""
    rt = runtime()
    try:
        with transaction(rt.sessions) as s:
            now = utcnow()
            row = grant_json(
                grant_access(
                    s,
                    holder=to,
                    case_number=case,
                    approver=approver,
                    reason=reason,
                    hours=hours,
                    actor=CLI_ACTOR,
                    now=now,
                ),
                now,
            )
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(row)
        return
    err.print(f"grant {row['id']}: {row['holder']} may read case {row['case_number']} until {row['expires_at']}")


@access_app.command("list")
def list_(
    active: Annotated[bool, typer.Option("--active", help="only grants in force now")] = False,
    fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table,
) -> None:
    """Every grant with its state (active, expired, revoked)."""
    rt = runtime()
    try:
        with reading(rt.sessions) as s:
            rows = list_grants(s, utcnow(), active_only=active)
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(rows)
        return
    print_table(
        "Access grants",
        ["id", "holder", "case", "approver", "expires", "state", "reason"],
        [
            [r["id"], r["holder"], r["case_number"], r["approver"], r["expires_at"], r["state"], r["reason"]]
            for r in rows
        ],
    )


@access_app.command("revoke")
def revoke(grant_id: Annotated[int, typer.Argument(metavar="ID", min=1, max=2**31 - 1)]) -> None:
    """End a grant now; an audit event ``access.revoked``."""
    rt = runtime()
    try:
        with transaction(rt.sessions) as s:
            done = revoke_grant(s, grant_id, actor=CLI_ACTOR, now=utcnow())
            holder, case = done.holder, done.case_number
    finally:
        rt.close()
    err.print(f"grant {grant_id} ({holder}, case {case}) revoked", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(access_app, name="access")
