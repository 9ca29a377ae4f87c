"""What a file's path says about it (SPEC §4): device, officer, start time, sequence, and what kind of file it is.

Pure functions over strings; the watched folder is never touched here. Paths are ``/``-separated and relative
to the watched root (see :func:`ingest.paths.relative_inside`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal

from config.errors import BadInput
from config.settings import MEDIA_EXTENSIONS, SIDECAR_EXTENSIONS, Settings
from storage.basics import INT32_MAX

MediaClass = Literal["media", "sidecar", "temporary", "other"]

NAME_GROUPS = ("device", "officer", "start", "seq")
MAX_CODE_LENGTH = 128  # devices.serial and recordings.officer_code
MAX_SEQUENCE = INT32_MAX  # recordings.sequence is an Integer (32 bits on PostgreSQL)
TEMPORARY_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".filepart")
_MEDIA = frozenset(MEDIA_EXTENSIONS)
_SIDECAR = frozenset(SIDECAR_EXTENSIONS)


@dataclass(frozen=True)
class NameInfo:
    device: str | None
    officer: str | None
    start_local: datetime | None  # naive, as written in the name; read later in BWC_TIMEZONE
    sequence: int | None
    pattern: int | None  # index of the pattern that matched, None if none did


NO_MATCH = NameInfo(device=None, officer=None, start_local=None, sequence=None, pattern=None)


def compile_patterns(patterns: Sequence[str]) -> list[re.Pattern[str]]:
    """Compile the configured name patterns once, failing loudly on a bad one rather than ingesting blind."""
    compiled: list[re.Pattern[str]] = []
    for index, source in enumerate(patterns):
        try:
            compiled.append(re.compile(source))
        except re.error as exc:
            raise BadInput(f"name pattern #{index} {source!r} is not a valid regular expression: {exc}") from exc
    return compiled


@lru_cache(maxsize=8)
def _compiled(sources: tuple[str, ...]) -> list[re.Pattern[str]]:
    return compile_patterns(sources)


def name_patterns(settings: Settings) -> list[re.Pattern[str]]:
    """The configured name patterns, compiled once per process (not per file or request)."""
    return _compiled(tuple(settings.name_patterns))


def parse_name(relpath: str, patterns: Sequence[re.Pattern[str]]) -> NameInfo:
    """Device, officer, start and sequence from a relative path; the first pattern that matches wins."""
    for index, pattern in enumerate(patterns):
        match = pattern.search(relpath)
        if match is None:
            continue
        groups = {name: value for name, value in match.groupdict().items() if name in NAME_GROUPS}
        return NameInfo(
            device=_text(groups.get("device")),
            officer=_text(groups.get("officer")),
            start_local=parse_start(groups.get("start")),
            sequence=_number(groups.get("seq")),
            pattern=index,
        )
    return NO_MATCH


def parse_start(value: str | None) -> datetime | None:
    """Read the digits of ``value`` as YYYYMMDDHHMMSS; anything else (or an impossible date) is no start."""
    if not value:
        return None
    digits = "".join(c for c in value if c.isdecimal())
    if len(digits) != 14:
        return None
    try:
        return datetime(
            int(digits[0:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            int(digits[12:14]),
        )
    except ValueError:
        return None


def basename(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def extension(name: str) -> str:
    """The last extension of the file name, lower-case and without the dot ("" if none)."""
    base = basename(name)
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


def is_temporary(name: str) -> bool:
    """A name a copy in progress or an editor uses; such files are never taken (SPEC §4)."""
    base = basename(name)
    if not base or base.startswith((".", "~")):
        return True
    return base.lower().endswith(TEMPORARY_SUFFIXES)


def classify(name: str) -> MediaClass:
    """Media, sidecar, temporary or other, by the file name (the last path component) alone."""
    if is_temporary(name):
        return "temporary"
    ext = extension(name)
    if ext in _MEDIA:
        return "media"
    if ext in _SIDECAR:
        return "sidecar"
    return "other"


def sidecar_stem_key(relpath: str) -> str:
    """The key shared by a recording and its sidecars: folder + stem, whatever the extensions' case.

    ``DSJ/clip.MP4``, ``DSJ/clip.json`` and ``DSJ/clip.mp4.json`` all give ``DSJ/clip``.
    """
    folder, _, base = relpath.rpartition("/")
    stem = _strip_extension(base)
    if extension(base) in _SIDECAR and extension(stem) in _MEDIA:
        stem = _strip_extension(stem)  # "clip.mp4.json" describes "clip.mp4"
    return f"{folder}/{stem}" if folder else stem


def _strip_extension(base: str) -> str:
    stem, dot, _ = base.rpartition(".")
    return stem if dot and stem else base


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    # Longer than a serial or officer code can be stored (String(128)): not one, whatever the pattern says.
    return value if value and len(value) <= MAX_CODE_LENGTH else None


def _number(value: str | None) -> int | None:
    if not value:
        return None
    digits = "".join(c for c in value if c.isdecimal())
    number = int(digits) if digits else None
    # A counter beyond the column's range (Integer) is no camera's: ignored like any impossible metadata.
    return number if number is not None and number <= MAX_SEQUENCE else None
