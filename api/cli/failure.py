"""What the ``bwc`` program says when a command fails: one line on stderr and an exit code (README, SPEC §7).

Known errors (:class:`BwcError`) say what went wrong and exit with their ``exit_code``; the machine refusing
(``OSError``) exits 2; anything else is our bug: one line naming a log file that holds the traceback, exit 3.
Every line and the log are masked: a URL's password or a secret setting never reaches output.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

from rich.markup import escape

from api.cli.common import err
from config.errors import EXIT_UNEXPECTED, EXIT_USAGE, BwcError
from config.settings import get_settings, mask_text

LOG_NAME = "bwc-errors.log"


def report(exc: Exception, command: str | None = None) -> int:
    """Say what went wrong in one line; returns the exit status."""
    secrets, db_url, home = _context()
    # A database error exists only where SQLAlchemy was loaded; a command that never loads it (a station) does
    # not pay its import here.
    if "sqlalchemy" in sys.modules:
        from storage.db import UNREACHABLE, database_unavailable

        if isinstance(exc, UNREACHABLE):
            exc = database_unavailable(exc, db_url or "")
    if isinstance(exc, BwcError):
        return _say(exc.message, secrets, exc.exit_code)
    if isinstance(exc, OSError):
        # The machine said no (a folder that cannot be made, a file that cannot be read): say what, briefly.
        return _say(str(exc), secrets, EXIT_USAGE)
    log = write_log(exc, command, secrets, home)
    where = f"details in {log}" if log is not None else "no log file could be written"
    return _say(f"unexpected {type(exc).__name__}; {where}", secrets, EXIT_UNEXPECTED)


def _say(message: str, secrets: set[str], code: int) -> int:
    line = " ".join(mask_text(message, secrets).split())  # one line, whatever the message held
    err.print(f"[red]error:[/red] {escape(line)}", highlight=False)
    return code


def _context() -> tuple[set[str], str | None, Path]:
    """The secrets to mask, the database URL and the home folder, as far as the settings can be read."""
    try:
        settings = get_settings()
    except BwcError:
        return set(), None, Path(os.environ.get("BWC_HOME") or "./var")
    return settings.secrets(), settings.db_url, settings.home


def write_log(exc: BaseException, command: str | None, secrets: set[str], home: Path) -> Path | None:
    """Append the masked traceback to ``<home>/log/``, else to the system temp folder; None when neither takes it."""
    when = datetime.now(UTC).isoformat(timespec="seconds")
    text = "".join(traceback.format_exception(exc))
    entry = mask_text(f"--- {when} pid {os.getpid()} bwc {command or ''}\n{text}\n", secrets)
    for folder in (home / "log", Path(tempfile.gettempdir())):
        path = folder / LOG_NAME
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Never follow a planted link (the temp folder is shared); only the owner reads tracebacks.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(entry)
        except OSError:
            continue
        return path
    return None
