"""Reading a source file for the store while proving it did not change underneath us."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from config.errors import BadInput, Conflict

ChunkHook = Callable[[int], None]

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class NotRegularFile(BadInput):
    """Not a regular file (FIFO, socket, device, folder): never read, since reading may block forever."""

    code = "not_a_regular_file"


def require_regular(path: Path | str, st: os.stat_result) -> None:
    """Raise :class:`NotRegularFile` unless ``st`` (a stat of ``path``) describes a regular file."""
    if stat.S_ISREG(st.st_mode):
        return
    kind = next((name for test, name in _KINDS if test(st.st_mode)), f"file type {stat.S_IFMT(st.st_mode):#o}")
    raise NotRegularFile(f"{path} is {kind}, not a regular file: refused, never opened")


def open_regular(path: Path | str) -> BinaryIO:
    """Open a file for reading only if it is a regular file, without ever blocking on the open itself.

    ``O_NONBLOCK`` makes the open of a FIFO return at once instead of waiting for a writer; the check after
    the open (on the descriptor) catches a file swapped for a FIFO or device after an earlier ``stat``.
    Callers ``stat`` first, so devices (whose open may have side effects) are refused before any open.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        require_regular(path, os.fstat(fd))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class FileChanged(Conflict):
    """The source file changed while it was being read; what was read is not that file."""

    code = "changed_while_reading"


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileState:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


class CountingReader:
    """A read-only file wrapper that counts the bytes handed out and calls ``on_chunk`` after each read.

    It hands out at most ``limit`` bytes: a file that keeps growing while it is read (it was not complete
    after all) must end the read, not keep it going forever; the count then shows the file changed. It seeks
    where the file does, and the count is then the position reached: a store that reads the file twice (one
    signed PutObject: botocore hashes the body, seeks back and sends it) reports the last pass.
    """

    def __init__(self, raw: BinaryIO, on_chunk: ChunkHook | None = None, limit: int | None = None) -> None:
        self._raw = raw
        self._on_chunk = on_chunk
        self._limit = limit
        self.bytes_read = 0

    def _room(self, wanted: int) -> int:
        if self._limit is None:
            return wanted
        left = max(0, self._limit - self.bytes_read)
        return left if wanted < 0 else min(wanted, left)

    def _count(self, n: int) -> None:
        self.bytes_read += n
        if self._on_chunk is not None and n:
            self._on_chunk(self.bytes_read)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        room = self._room(len(buffer))
        if room == 0:
            return 0
        n = self._raw.readinto(memoryview(buffer)[:room])  # type: ignore[attr-defined]
        self._count(n or 0)
        return n or 0

    def read(self, size: int = -1) -> bytes:
        room = self._room(size)
        if room == 0 and size != 0:
            return b""
        data = self._raw.read(room)
        self._count(len(data))
        return data

    def fileno(self) -> int:
        """The source's descriptor, so that a store can size its upload parts from ``fstat``."""
        return self._raw.fileno()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return bool(self._raw.seekable())

    def seek(self, offset: int, whence: int = 0) -> int:
        pos = self._raw.seek(offset, whence)
        self.bytes_read = pos
        return pos

    def tell(self) -> int:
        return self.bytes_read

    def close(self) -> None:
        self._raw.close()


def check_unchanged(before: FileState, after: FileState, bytes_read: int) -> None:
    """Raise :class:`FileChanged` unless the file is the same size, age and inode and was read whole."""
    if before != after:
        raise FileChanged(
            f"file changed while being read: size {before.size}→{after.size}, "
            f"mtime_ns {before.mtime_ns}→{after.mtime_ns}"
        )
    if bytes_read != before.size:
        raise FileChanged(f"read {bytes_read} bytes of a {before.size}-byte file")
