"""``bwc token create|list|revoke``: API tokens; only their SHA-256 is stored (SPEC §7, §8)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from api.auth import ROLES, create_token, list_tokens, revoke_token
from api.cli.common import EXIT_USAGE, Format, err, fail, print_json, print_table, runtime
from storage.db import reading, transaction

token_app = typer.Typer(no_args_is_help=True, help="API tokens (roles: admin, station, reviewer, auditor).")

CLI_ACTOR = "cli"


@token_app.command("create")
def create(
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
    name: Annotated[str, typer.Option(help="who holds it; audit events name the holder as token:NAME")],
    station: Annotated[str | None, typer.Option(help="station code a station token uploads as")] = None,
    unit: Annotated[
        list[str] | None,
        typer.Option("--unit", help="a unit whose evidence a reviewer may read (repeatable; SPEC §15)"),
    ] = None,
) -> None:
    """Create a token and print it ALONE on stdout; it cannot be shown again."""
    if role not in ROLES:
        fail(f"unknown role {role!r}; use one of {', '.join(ROLES)}", EXIT_USAGE)
    rt = runtime()
    try:
        with transaction(rt.sessions) as s:
            token, secret = create_token(
                s, role=role, name=name, station_code=station, units=unit or (), actor=CLI_ACTOR
            )
            token_id = token.id
    finally:
        rt.close()
    sys.stdout.write(secret + "\n")
    sys.stdout.flush()
    scope = f", units {', '.join(sorted(set(unit)))}" if unit else ""
    err.print(f"token {token_id} ({name}, {role}{scope}) created; store it now, it is not kept", highlight=False)
    if role == "reviewer" and not unit:
        err.print("note: a reviewer token without --unit sees only the cases granted to it", highlight=False)


@token_app.command("list")
def list_(fmt: Annotated[Format, typer.Option("--format", help="table or json")] = Format.table) -> None:
    """Every token with its role and state; secrets are never shown (they are not kept)."""
    rt = runtime()
    try:
        with reading(rt.sessions) as s:
            rows = list_tokens(s)
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(rows)
        return
    print_table(
        "API tokens",
        ["id", "name", "role", "units", "station", "created", "revoked"],
        [
            [r["id"], r["name"], r["role"], ",".join(r["units"]), r["station"], r["created_at"], r["revoked_at"]]
            for r in rows
        ],
    )


@token_app.command("revoke")
def revoke(name_or_id: Annotated[str, typer.Argument(metavar="NAME|ID")]) -> None:
    """Revoke a live token by name or id; it stops working at once."""
    rt = runtime()
    try:
        with transaction(rt.sessions) as s:
            token = revoke_token(s, name_or_id, actor=CLI_ACTOR)
            token_id, token_name = token.id, token.name
    finally:
        rt.close()
    err.print(f"token {token_id} ({token_name}) revoked", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
