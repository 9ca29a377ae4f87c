"""``bwc actions show``: one action's devices, recordings, verdict and reasons (SPEC §6, §12)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.cli import common
from api.cli.common import Format, fail, print_json
from api.cli.groups import actions_app, add_once
from audit.shapes import action_json
from storage.basics import utcnow
from storage.db import reading
from storage.models import Action, Recording


@actions_app.command("show")
def show(
    action_id: str = typer.Argument(..., help="The action's external id."),
    fmt: Format = typer.Option(Format.table, "--format", help="table or json"),
) -> None:
    """Show an action's devices, recordings, coverage verdict and reasons."""
    rt = common.runtime()
    try:
        with reading(rt.sessions) as session:
            action = session.scalar(select(Action).where(Action.action_id == action_id))
            if action is None:
                fail(f"no action with id {action_id!r}")
            data = action_json(session, action, utcnow())
            recordings = _recordings(session, data["recordings"])
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(data)
        return
    _print(data, recordings)


def _recordings(session: Session, ids: list[int]) -> list[Recording]:
    if not ids:
        return []
    return list(session.scalars(select(Recording).where(Recording.id.in_(ids)).order_by(Recording.started_at)))


def _print(data: dict[str, Any], recordings: list[Recording]) -> None:
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for key in ("action_id", "case_number", "unit", "started_at", "ended_at", "location", "kind"):
        head.add_row(key, "" if data[key] is None else str(data[key]))
    head.add_row("officers", ", ".join(data["officers"]))
    resolved = set(data["devices_resolved"])
    head.add_row("devices", ", ".join(d + (" (assigned)" if d in resolved else "") for d in data["devices"]))
    head.add_row("verdict", _verdict_markup(data["verdict"]))
    common.out.print(head)

    manual = set(data["recordings_manual"])
    rec_table = Table(title="recordings")
    for col in ("id", "device", "started_at (device clock)", "ended_at", "audio", "video", "status", "link"):
        rec_table.add_column(col, overflow="fold")
    for rec in recordings:
        rec_table.add_row(
            str(rec.id),
            rec.device.serial if rec.device else "",
            _short(rec.started_at),
            _short(rec.ended_at),
            "yes" if rec.has_audio else "no",
            "yes" if rec.has_video else "no",
            rec.status,
            "manual" if rec.id in manual else "auto",
        )
    common.out.print(rec_table)

    reason_table = Table(title="reasons")
    for col in ("code", "device", "recording", "from", "to", "devices_recording"):
        reason_table.add_column(col, overflow="fold")
    for reason in data["reasons"]:
        reason_table.add_row(
            reason["code"],
            str(reason.get("device") or ""),
            str(reason.get("recording") or ""),
            _short(datetime.fromisoformat(reason["from"])) if "from" in reason else "",
            _short(datetime.fromisoformat(reason["to"])) if "to" in reason else "",
            ", ".join(reason.get("devices_recording", [])),
        )
    common.out.print(reason_table)


def _short(value: datetime | None) -> str:
    """UTC to the second (fractions hidden) so a row fits a terminal; ``--format json`` has the exact value."""
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _verdict_markup(verdict: str | None) -> str:
    colour = {"complete": "green", "pending": "yellow", "incomplete": "red"}.get(verdict or "", "dim")
    return f"[{colour}]{verdict or 'not computed'}[/{colour}]"


def register(app: typer.Typer) -> None:
    add_once(app, actions_app, "actions")
