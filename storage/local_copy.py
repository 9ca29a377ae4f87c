"""The local store's data path: copy a stream into a new file, read each region back, hash what came back.

Why this shape (measured on a 2-core VM with a fast disk and a slow CPU; README "The local store's data path"):

- Writing through the page cache costs more CPU than hashing (~3 s/GB of kernel time for page allocation and
  copying under load, against ~0.9 s/GB for SHA-256), and the bytes still have to reach the disk at ``fsync``.
  ``O_DIRECT`` writes go from our page-aligned buffer to the device by DMA (~0.3 s/GB of CPU, disk-bound).
- The old proof re-read the whole temporary file after the copy and hashed it a second time, from the page
  cache, so every byte was hashed twice and the re-read proved only what the kernel's copy held. Here each
  region is read back with ``O_DIRECT`` right after its write (from the device, not from the page cache),
  compared byte for byte with the buffer that was written, and the evidence digest is computed over the bytes
  read back. So the digest is of the stored bytes by construction, they equal what was read from the source,
  and each byte is hashed once; the read-back costs disk read bandwidth, not CPU.
- Regions are written in order at explicit offsets by one thread and each is checked once, right after its
  own write. What the check cannot see is another process writing into the temporary file later (it is
  created ``0400`` with ``O_EXCL`` under a random name, so only root or its owner could); ``bwc fixity``
  re-hashes stored objects from the disk and reports that.

Where the file system refuses ``O_DIRECT`` (tmpfs on older kernels, some network file systems) or a region is
not block-aligned (the last one, or one after a short read of a growing file), the same steps run through the
page cache: the read-back then proves what our write path handed the kernel, as the old re-read did.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import mmap
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from storage.objects import CHUNK_SIZE, MultiHasher, Progress, VerificationFailed, read_chunks

ALIGN = 4096  # O_DIRECT wants block-aligned addresses, offsets and lengths: 4096 covers 512- and 4096-byte blocks
_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux; elsewhere everything goes through the page cache


class PartFile:
    """A new temporary file open twice: one descriptor for the writing thread, one for the checking thread.

    Each descriptor uses ``O_DIRECT`` while its requests are block-aligned and drops it (``fcntl``) for one that
    is not; each is used by one thread only, so the two never race on a flag.
    """

    def __init__(self, path: Path) -> None:
        # 0400 from the start: nobody but root or the owner can open it for writing while it is being filled.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
        try:
            self._writer, self._reader = _Descriptor(fd), _Descriptor(os.open(path, os.O_RDONLY | os.O_CLOEXEC))
        except BaseException:
            os.close(fd)
            raise

    def write(self, data: memoryview, offset: int) -> None:
        """Write all of ``data`` at ``offset``: whole blocks straight to the device, a tail through the cache."""
        aligned = len(data) - len(data) % ALIGN if offset % ALIGN == 0 else 0
        for start, end in ((0, aligned), (aligned, len(data))):
            if start < end:
                self._writer.direct_for(offset + start, end - start)
                _pwrite_all(self._writer.fd, data[start:end], offset + start)

    def read_back(self, into: memoryview, offset: int, length: int) -> memoryview:
        """The file's bytes ``offset``..``offset + length`` (fewer if it is shorter), from the device where it can.

        A direct read asks for whole blocks (it may run past the end of the file or of the region, which is
        then cut off); ``into`` must hold ``length`` rounded up to a block (a ``CHUNK_SIZE`` buffer does).
        """
        rounded = -(-length // ALIGN) * ALIGN
        got = 0
        while got < length:
            end = rounded if self._reader.direct_for(offset + got, rounded - got) else length
            n = os.preadv(self._reader.fd, [into[got:end]], offset + got)
            if not n:
                break
            got += n
        return into[: min(got, length)]

    def size(self) -> int:
        return os.fstat(self._writer.fd).st_size

    def fsync(self) -> None:
        os.fsync(self._writer.fd)

    def close(self) -> None:
        os.close(self._reader.fd)
        os.close(self._writer.fd)


class _Descriptor:
    """One open file and whether ``O_DIRECT`` is on for it (off for good where the file system refuses it)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._direct = False
        self._refused = not _O_DIRECT

    def direct_for(self, offset: int, length: int) -> bool:
        """Set ``O_DIRECT`` as a request at ``offset`` of ``length`` bytes allows; whether it is on."""
        wanted = not self._refused and offset % ALIGN == 0 and length % ALIGN == 0
        if wanted != self._direct:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            try:
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | _O_DIRECT if wanted else flags & ~_O_DIRECT)
                self._direct = wanted
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                self._refused = True  # this file system takes no O_DIRECT: the page cache it is
        return self._direct


def copy_verified(source: BinaryIO, part: PartFile, hasher: MultiHasher, progress: Progress | None = None) -> int:
    """Copy ``source`` to ``part``; ``hasher`` gets the bytes read back; returns the bytes written.

    Three stages, one thread each, so the disk's writes, its reads and the CPU's hashing overlap: the calling
    thread reads the source and writes region ``i``; a checking thread reads region ``i - 1`` back and compares
    it; a hashing thread hashes region ``i - 2`` as it was read back. Source buffers alternate between writing
    and checking, read-back buffers between checking and hashing: four ``CHUNK_SIZE`` buffers in all.
    """
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-store-check") as checker,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-store-hash") as hashes,
    ):
        return _copy(source, part, hasher, checker, hashes, progress)


def _copy(
    source: BinaryIO,
    part: PartFile,
    hasher: MultiHasher,
    checker: ThreadPoolExecutor,
    hashes: ThreadPoolExecutor,
    progress: Progress | None,
) -> int:
    buffers = (aligned_buffer(), aligned_buffer())
    backs = (memoryview(aligned_buffer()), memoryview(aligned_buffer()))
    hashing: list[Future[None]] = []  # appended by the checking thread only, in region order

    def check_then_hash(i: int, written: mmap.mmap, n: int, offset: int) -> None:
        if len(hashing) >= 2:
            hashing[-2].result()  # the read-back buffer of region i - 2 is free again
        got = check_region(part, written, n, offset, backs[i % 2])
        hashing.append(hashes.submit(hasher.update, got))

    checking: Future[None] | None = None
    offset = 0
    for i in itertools.count():
        buffer = buffers[i % 2]
        chunk = next(read_chunks(source, buffer), None)  # the buffer filled, short reads and all
        if chunk is None:
            break
        n = len(chunk)
        part.write(chunk, offset)
        if checking is not None:
            checking.result()  # region i - 1 read back as written: its source buffer is free again
        checking = checker.submit(check_then_hash, i, buffer, n, offset)
        offset += n
        if progress:
            progress(n)
    if checking is not None:
        checking.result()
    for done in hashing:
        done.result()
    if part.size() != offset:
        raise VerificationFailed(f"the temporary file holds {part.size()} bytes, {offset} were written")
    return offset


def check_region(part: PartFile, written: mmap.mmap, n: int, offset: int, back: memoryview) -> memoryview:
    """Region ``offset``..``offset + n`` read back into ``back``, refused unless it is the first ``n`` bytes of
    ``written``; only what passed is handed on to be hashed."""
    got = part.read_back(back, offset, n)
    if len(got) != n or not same_bytes(written, got):
        raise VerificationFailed(f"the temporary file does not read back the {n} bytes written at offset {offset}")
    return got


def same_bytes(buffer: mmap.mmap, view: memoryview) -> bool:
    """Whether ``buffer`` starts with exactly the bytes of ``view``, at ``memcmp`` speed and without a copy.

    ``memoryview == memoryview`` compares item by item through struct unpacking (~60 × slower, measured) and
    ``bytes(...)`` copies; ``mmap.find`` of a needle as long as the searched range is one comparison.
    """
    return len(view) <= len(buffer) and (len(view) == 0 or buffer.find(view, 0, len(view)) == 0)


def aligned_buffer() -> mmap.mmap:
    """A page-aligned ``CHUNK_SIZE`` buffer (anonymous memory), as ``O_DIRECT`` requires."""
    return mmap.mmap(-1, CHUNK_SIZE)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n
