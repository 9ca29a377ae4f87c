"""``bwc recordings list`` (SPEC §7, §12)."""

from __future__ import annotations

from typing import Any

import typer
from sqlalchemy import select

from api.cli import common
from api.cli.common import Format, print_json, print_table
from api.cli.groups import add_once
from storage.basics import INT64_MAX
from storage.db import reading
from storage.models import Device, Recording
from storage.shapes import recording_json

recordings_app = typer.Typer(no_args_is_help=True, help="Stored recordings.")


@recordings_app.command("list")
def list_recordings(
    device: str | None = typer.Option(None, "--device", help="Only this device's recordings (serial)."),
    limit: int | None = typer.Option(
        None, "--limit", min=1, max=INT64_MAX, help="At most this many, newest received first."
    ),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Recordings with device, times, streams and status; ``--format json`` gives SPEC §12 shapes."""
    rt = common.runtime()
    try:
        with reading(rt.sessions) as s:
            query = select(Recording).order_by(Recording.received_at.desc(), Recording.id.desc())
            if device is not None:
                query = query.join(Device, Device.id == Recording.device_id).where(Device.serial == device)
            if limit is not None:
                query = query.limit(limit)
            rows = [recording_json(r) for r in s.scalars(query).unique()]
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(rows)
        return
    # Narrow enough for an 80-column terminal: the full record is one --format json away.
    columns = ["id", "device", "started (UTC)", "seconds", "A/V", "status", "file"]
    print_table("recordings", columns, [_row(r) for r in rows])


def _row(r: dict[str, Any]) -> list[Any]:
    started = r["started_at"][:19].replace("T", " ") if r["started_at"] else None
    seconds = None if r["duration_seconds"] is None else f"{r['duration_seconds']:.1f}"
    streams = ("A" if r["has_audio"] else "-") + ("V" if r["has_video"] else "-")
    return [r["id"], r["device"], started, seconds, streams, r["status"], r["original_name"]]


def register(app: typer.Typer) -> None:
    add_once(app, recordings_app, "recordings")
