"""What to do with a source file once it is stored, verified and committed: keep, move or delete (SPEC §4)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import uuid
from pathlib import Path

log = logging.getLogger(__name__)


def free_target(target: Path) -> Path:
    """``target`` if nothing is there, else ``name-1.ext``, ``name-2.ext`` … (we never overwrite)."""
    if not os.path.lexists(target):
        return target
    n = 1
    while True:
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        if not os.path.lexists(candidate):
            return candidate
        n += 1


def move_no_overwrite(source: Path, target: Path) -> Path:
    """Move ``source`` to ``target`` (or a free name beside it), never replacing a file; returns where it went."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target) and _same_file(source, target):
        # A crash between link and unlink left both names: finish the move.
        source.unlink()
        return target
    while True:
        dest = free_target(target)
        try:
            os.link(source, dest)  # atomic and refuses to replace
        except FileExistsError:
            continue  # somebody took the name meanwhile
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP):
                raise
            _copy_no_overwrite(source, dest)
        source.unlink()
        return dest


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _copy_no_overwrite(source: Path, dest: Path) -> None:
    # Another file system: copy beside the target, fsync, then link into place (still never replacing).
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    try:
        with open(source, "rb") as src, open(tmp, "xb") as out:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(source, tmp)
        os.link(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def apply_after_ingest(mode: str, source: Path, relpath: str, done_dir: Path | None) -> tuple[str, str | None]:
    """Carry out ``keep|move|delete`` on a committed file; returns (``kept|moved|deleted``, where it went)."""
    if mode == "keep":
        return "kept", None
    if mode == "delete":
        with contextlib.suppress(FileNotFoundError):
            source.unlink()
        return "deleted", None
    if mode == "move":
        if done_dir is None:
            raise ValueError("after_ingest=move needs a done_dir")
        dest = move_no_overwrite(source, done_dir.joinpath(*relpath.split("/")))
        return "moved", str(dest)
    raise ValueError(f"unknown after_ingest mode {mode!r}")
