"""Where a file sits in the watched folder, refusing anything that escapes it (``..`` or symlinks out)."""

from __future__ import annotations

import os
from pathlib import Path

from config.errors import BadInput


class UnsafePath(BadInput):
    """A path that is not inside the watched root; the file is never read."""

    code = "unsafe_path"


def relative_inside(root: Path, path: Path) -> str:
    """The ``/``-separated path of ``path`` relative to ``root``, as it is named there (symlinks not followed).

    Raises :class:`UnsafePath` if the path has a ``..`` component, lies outside ``root``, or resolves (through
    a symlinked folder or a symlink itself) to somewhere outside ``root``. A relative ``path`` is taken as
    relative to ``root``. Symlinks that stay inside ``root`` are fine.
    """
    if not path.is_absolute() and not path.is_relative_to(root):
        path = root / path
    rel = _lexical_relative(root, path)
    if rel is None:
        raise UnsafePath(f"{path} is not inside {root}")
    if ".." in rel.parts:
        raise UnsafePath(f"{path} has a '..' component")
    if not rel.parts:
        raise UnsafePath(f"{path} is the watched folder itself, not a file in it")
    try:
        real_root = root.resolve()
        real = (real_root / rel).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UnsafePath(f"{path} cannot be resolved: {exc}") from exc
    if real == real_root or not real.is_relative_to(real_root):
        raise UnsafePath(f"{path} leads outside {root} (to {real})")
    return rel.as_posix()


def _lexical_relative(root: Path, path: Path) -> Path | None:
    """``path`` relative to ``root`` without following the last component, trying the spellings of ``root``."""
    for base, target in (
        (root, path),
        (Path(os.path.abspath(root)), path.absolute()),
        (root.resolve(), path.absolute()),
    ):
        if target.is_relative_to(base):
            return target.relative_to(base)
    # ``root`` spelled through a symlink that ``path`` does not use (or the reverse): resolve the folder only
    try:
        folder = path.absolute().parent.resolve()
    except (OSError, RuntimeError):
        return None
    real_root = root.resolve()
    if folder == real_root or folder.is_relative_to(real_root):
        return folder.relative_to(real_root) / path.name
    return None
