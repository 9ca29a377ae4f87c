"""Running one CSV import from the command line: committed batch by batch, counts on stdout, bad rows on stderr."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeRemainingColumn
from rich.text import Text

from api.cli.common import EXIT_OK, EXIT_USAGE, Format, err, fail, out, print_json, runtime
from audit.holds import apply_case_holds
from audit.imports import BatchDone, CsvImport
from config.errors import BwcError

CLI_ACTOR = "cli"

EXIT_NOTE = (
    "Each row is imported on its own: good rows are kept even when others are bad. Bad rows are listed on "
    "stderr as 'line N: reason' (the header is line 1) and the exit status is then 2; 0 when every row was good. "
    "A file whose header or encoding is wrong imports nothing (exit 2). Rows are committed in batches of "
    "2,000: after an interruption, importing the same file again completes it (stored rows count as unchanged)."
)


class _RowRate(ProgressColumn):
    """Rows so far and rows per second (the bar itself moves with the bytes read)."""

    def render(self, task: Task) -> Text:
        rows = int(task.fields.get("rows", 0))
        elapsed = task.elapsed or 0.0
        rate = f" · {rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
        return Text(f"{rows:,} rows{rate}")


@contextmanager
def import_progress(what: str, total_bytes: int) -> Iterator[Callable[[BatchDone], None]]:
    """A progress bar on a terminal (stderr) advanced once a batch is committed; silent when not a terminal."""
    if not err.is_terminal:
        yield lambda _done: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), _RowRate(), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(f"importing {what}", total=max(total_bytes, 1), rows=0)
        rows = 0

        def advance(done: BatchDone) -> None:
            nonlocal rows
            rows += done.rows
            bar.update(task, completed=done.bytes_read, rows=rows)

        yield advance


def run_import(importer: CsvImport, path: Path, fmt: Format, what: str) -> int:
    """Import ``path``, committing each batch as it completes; returns the exit status."""
    try:
        file = path.open("rb")
        size = os.fstat(file.fileno()).st_size
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}")
    rt = runtime()
    try:
        with file, rt.sessions() as session, import_progress(what, size) as progress:

            def after_batch(done: BatchDone) -> None:
                apply_case_holds(session, rt.store, CLI_ACTOR)  # recordings newly linked to a held case
                session.commit()
                progress(done)

            report = importer(session, rt.settings, file, CLI_ACTOR, path.name, after_batch=after_batch)
            session.commit()
    except BwcError as exc:
        fail(f"{path.name}: {exc.message}")
    finally:
        rt.close()
    for error in report.errors:
        err.print(f"line {error.line}: {error.reason}", highlight=False, markup=False)
    if fmt is Format.json:
        print_json({"file": path.name} | report.as_dict())
    else:
        out.print(
            f"{what}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.errors)} bad row(s)",
            highlight=False,
        )
    return EXIT_USAGE if report.errors else EXIT_OK
