"""``bwc watch``, ``bwc ingest FILE…`` and ``bwc ingest status`` (SPEC §4, §7)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from api.cli import common
from api.cli.common import EXIT_FINDING, EXIT_OK, Format, fail, print_json, print_table
from config import logs
from config.settings import get_settings
from ingest.outcome import IngestOutcome
from storage.basics import iso, iso_or_none

# ``bwc ingest FILE`` runs once per file on a station, so what only ``watch``, a push or ``status`` needs (httpx2
# and the push queue, the watcher, Rich's progress bars) is imported where it is used: tests/api/cli/test_main.py
# checks that ingesting a file imports none of it.
if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ingest.push_queue import PushQueue
    from ingest.station import PushProgress
    from ingest.watcher import ScanProgress
    from storage.runtime import Runtime

DEFAULT_COMMAND = "files"


class _FilesByDefault(TyperGroup):
    """``bwc ingest a.mp4 b.mp4`` runs ``bwc ingest files …``; ``bwc ingest status`` stays a subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's (vendored) click Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


ingest_app = typer.Typer(
    cls=_FilesByDefault,
    no_args_is_help=True,
    help="Ingest files now (bwc ingest FILE… [--station ID]) or list failed ones (bwc ingest status).",
)


def outcome_json(outcome: IngestOutcome) -> dict[str, Any]:
    return {
        "path": outcome.path,
        "status": outcome.status,
        "kind": outcome.kind,
        "recording_id": outcome.recording_id,
        "sha256": outcome.sha256,
        "reason": outcome.reason,
        "error": outcome.error,
        "next_attempt_at": iso_or_none(outcome.next_attempt_at),
        "after_ingest": outcome.after_ingest,
        "sidecars": [outcome_json(s) for s in outcome.sidecars],
    }


def _report(outcomes: Sequence[IngestOutcome], fmt: Format) -> int:
    """Print the outcomes; exit 1 when any file failed, naming each (on stderr when stdout is JSON)."""
    everything = [o for outcome in outcomes for o in (outcome, *outcome.sidecars)]
    failed = [o for o in everything if o.failed]
    if fmt is Format.json:
        print_json([outcome_json(o) for o in outcomes])
    else:
        rows = [(o.status, o.kind, o.path, o.recording_id, (o.sha256 or "")[:16], o.reason or "") for o in everything]
        print_table("ingest", ["status", "kind", "path", "recording", "sha256", "reason"], rows)
        counts: dict[str, int] = {}
        for o in everything:
            counts[o.status] = counts.get(o.status, 0) + 1
        common.out.print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no files")
    for o in failed:
        common.err.print(f"[red]failed:[/red] {o.path} ({o.reason}: {o.error})", highlight=False)
    return EXIT_FINDING if failed else EXIT_OK


@contextmanager
def _scan_progress() -> Iterator[ScanProgress]:
    """A files-done bar on a terminal (stderr) for a backlog; silent when piped."""
    if not common.err.is_terminal:
        yield lambda _done, _total: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("ingest"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeRemainingColumn())
    with Progress(*columns, console=common.err, transient=True) as bar:
        task = bar.add_task("ingest", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def watch(
    folder: Path = typer.Argument(..., metavar="DIR", help="The station's export folder."),
    station: str | None = typer.Option(None, "--station", help="Station code (default: BWC_STATION)."),
    once: bool = typer.Option(False, "--once", help="Ingest what is complete now, then exit."),
    fmt: Format = typer.Option(Format.table, "--format", help="With --once: table or json."),
    server: str | None = typer.Option(
        None,
        "--server",
        help="Push to this service (http://host:port) instead of ingesting here (or BWC_SERVER).",
        envvar="BWC_SERVER",
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="BWC_TOKEN", help="The station token for --server (or BWC_TOKEN).", show_default=False
    ),
    tries: int = typer.Option(8, "--tries", min=1, help="With --server --once: passes over files that failed."),
) -> None:
    """Watch a folder and ingest every complete file; with --once, ingest what is complete now and exit.

    With --server the station pushes each file to the service (resumable uploads, a local queue in BWC_HOME)
    and needs no database or store of its own.
    """
    if not folder.is_dir():
        fail(f"{folder} is not a folder")
    if server is not None:
        _push(folder, station, once, fmt, server, token, tries)
        return
    from ingest.service import local_scan, local_watcher

    rt = common.runtime()
    code = rt.settings.station if station is None else station
    try:
        _clean_leftovers(rt)
        if once:
            with _scan_progress() as progress:
                outcomes = local_scan(rt, folder, code, progress)
            raise typer.Exit(_report(outcomes, fmt))
        logs.set_level(rt.settings.log_level)
        stop = _stop_on_signals()
        common.err.print(f"watching {folder} for station {code} (Ctrl-C stops)", highlight=False)
        local_watcher(rt, folder, code).run(stop)
    finally:
        rt.close()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _signo, _frame: stop.set())
    return stop


def _push(
    folder: Path, station: str | None, once: bool, fmt: Format, server: str, token: str | None, tries: int
) -> None:
    """``bwc watch DIR --server URL --token T``: the station side of pushing (ingest.station)."""
    if not token:
        fail("--server needs --token (a station token: bwc token create --role station)")
    if not server.startswith(("http://", "https://")):
        fail(f"--server {server!r} must be an http:// or https:// URL")
    from ingest.push_queue import PushQueue, queue_path
    from ingest.station import StationPusher, push_once, queue_backoff
    from ingest.watcher import Watcher

    settings = get_settings()
    code = settings.station if station is None else station
    queue = PushQueue(queue_path(settings.home))
    with _push_progress() as progress:
        pusher = StationPusher(settings, server, token, code, queue, progress=progress)
        try:
            if once:
                outcomes = push_once(settings, folder, code, pusher, tries=tries)
                raise typer.Exit(_report(outcomes, fmt))
            logs.set_level(settings.log_level)
            stop = _stop_on_signals()
            common.err.print(f"pushing {folder} to {server} as station {code} (Ctrl-C stops)", highlight=False)
            Watcher(settings, folder, code, pusher, backoff=lambda: queue_backoff(queue)).run(stop)
        finally:
            pusher.close()


class _RichPush:
    """One bar per file being pushed (bytes, rate, time left), on stderr."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}

    def start(self, path: str, total: int, offset: int) -> None:
        self.tasks[path] = self.bar.add_task(path, total=total, completed=offset)

    def advance(self, path: str, n: int) -> None:
        if path in self.tasks:
            self.bar.advance(self.tasks[path], n)

    def finish(self, path: str) -> None:
        task = self.tasks.pop(path, None)
        if task is not None:
            self.bar.remove_task(task)


@contextmanager
def _push_progress() -> Iterator[PushProgress | None]:
    """Byte progress per upload on a terminal; nothing when piped (a systemd journal)."""
    if not common.err.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=common.err, transient=True) as bar:
        yield _RichPush(bar)


def _clean_leftovers(rt: Runtime) -> None:
    """Start-up: remove what crashed ingests left; a store that is away does not keep the watcher from starting."""
    from storage.leftovers import clean_leftovers
    from storage.objects import StoreError

    try:
        common.err.print(clean_leftovers(rt).summary(), highlight=False)
    except StoreError as exc:
        common.err.print(f"[yellow]leftovers not cleaned:[/yellow] {exc}", highlight=False)


@ingest_app.command(DEFAULT_COMMAND)
def ingest_files(
    files: list[Path] = typer.Argument(..., metavar="FILE…", help="Files to ingest now."),
    station: str | None = typer.Option(None, "--station", help="Station code (default: BWC_STATION)."),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Ingest these files now (the default when ``bwc ingest`` is given files); exit 1 if any failed."""
    for f in files:
        if not os.path.lexists(f):
            fail(f"{f}: no such file")
        if f.is_dir():
            fail(f"{f} is a folder: use bwc watch {f} --once")
    from ingest.pipeline import ingest_file  # the store and the database: not loaded for a station's watch

    rt = common.runtime()
    code = rt.settings.station if station is None else station
    inbox = rt.settings.inbox_path.absolute()
    try:
        outcomes = []
        for f in files:
            path = f.absolute()  # not normalized: a ``..`` stays visible and is refused as unsafe
            root = inbox if path.is_relative_to(inbox) else path.parent
            outcomes.append(ingest_file(rt, root, path, code))
        raise typer.Exit(_report(outcomes, fmt))
    finally:
        rt.close()


@ingest_app.command("status")
def ingest_status(
    station: str | None = typer.Option(None, "--station", help="Only this station's failures."),
    fmt: Format = typer.Option(Format.table, "--format"),
) -> None:
    """Files that could not be stored yet: reason, attempts, last error and the next try.

    On a pushing station (a queue in BWC_HOME, no database) it shows the station's queue instead.
    """
    from ingest.failures import open_failures
    from ingest.push_queue import PushQueue, queue_path
    from storage.db import reading
    from storage.leftovers import last_cleanup
    from storage.shapes import failure_json

    settings = get_settings()
    queue_file = queue_path(settings.home)
    if queue_file.exists():
        _queue_status(PushQueue(queue_file), fmt)
        return
    rt = common.runtime(settings)
    try:
        with reading(rt.sessions) as s:
            rows = [failure_json(f, code) for f, code in open_failures(s, station)]
            cleanup = last_cleanup(s)
    finally:
        rt.close()
    if fmt is Format.json:
        print_json(rows)
        return
    columns = ["station", "path", "reason", "attempts", "last_error", "next_attempt_at"]
    print_table("open ingest failures", columns, [[r[c] for c in columns] for r in rows])
    if cleanup is not None:
        at, details = cleanup
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(details["counts"].items()))
        common.out.print(f"last leftovers clean-up: {iso(at)}: {kinds} ({details['bytes']} bytes)", highlight=False)


def _queue_status(queue: PushQueue, fmt: Format) -> None:
    items = queue.items()
    if fmt is Format.json:
        print_json([i.as_json() for i in items])
        return
    columns = ["state", "path", "size", "offset", "attempts", "last_error", "next_attempt_at", "after_ingest"]
    rows = [
        [
            i.state,
            i.path,
            i.size,
            i.offset,
            i.attempts,
            i.last_error if i.state != "done" else "",
            iso(datetime.fromtimestamp(i.next_attempt_at, UTC)) if i.next_attempt_at and i.state != "done" else "",
            i.after_ingest,
        ]
        for i in items
    ]
    print_table("station push queue", columns, rows)
    pending = sum(1 for i in items if i.state != "done")
    common.out.print(f"{pending} to push, {len(items) - pending} acknowledged by the server", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)
    app.add_typer(ingest_app, name="ingest")
