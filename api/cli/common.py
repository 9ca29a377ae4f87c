"""What every command shares: the runtime, output in table or JSON, and exit codes (SPEC §7)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape

from config.errors import EXIT_FINDING as EXIT_FINDING  # re-exported: commands take exit codes from here
from config.errors import EXIT_OK as EXIT_OK
from config.errors import EXIT_USAGE as EXIT_USAGE
from config.settings import Settings, get_settings

if TYPE_CHECKING:
    from storage.runtime import Runtime


class _Console(Console):
    """A console that wraps only for a person: a pipe or a log file gets each message whole on one line, so that
    grep and log readers never see a path or a URL split in two."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(1_000_000, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


out = _Console()
err = _Console(stderr=True)


class Format(str, Enum):
    table = "table"
    json = "json"


def runtime(settings: Settings | None = None) -> Runtime:
    """The wired service for one command; a database that is away is one clear error here, not mid-way.

    SQLAlchemy and the store load here, not when the CLI starts: ``bwc watch --server`` (a station) holds no
    database and skips ~0.5 s of CPU a start."""
    from storage.db import check_reachable
    from storage.runtime import build_runtime

    rt = build_runtime(settings or get_settings())
    try:
        check_reachable(rt.engine)
    except BaseException:
        rt.close()
        raise
    return rt


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Say one line on stderr and exit; the message is text, never markup (a path may hold ``[``)."""
    err.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    """One JSON document on stdout and nothing else there."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table  # here, not at the top: a command that prints JSON never needs it

    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    out.print(table)


@contextmanager
def progress_bar(description: str, total: int | None, bytes_: bool = False) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal (stderr); silent when stderr is not a terminal."""
    if not err.is_terminal:
        yield lambda _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
    columns += [DownloadColumn()] if bytes_ else [TextColumn("{task.completed}/{task.total}")]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
