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
- Several regions are on the device at once (``IN_FLIGHT`` = 4 of ``REGION_SIZE`` = 8 MiB): at queue depth 1
  the disk idles between one region's write, its read-back and the next write, and on this VM's fast disk
  (``O_DIRECT`` writes at ~1.1 GB/s, reads at ~0.86 GB/s) a put of 2 GiB ran at 440–500 MB/s while
  ``openssl`` hashes at ~1.25 GB/s. With four in flight, measured alternately with the old code on an idle
  machine: 720–990 MB/s against 440–730 MB/s, the same CPU (1.9–2.1 s), now close to the hashing thread's
  limit. 2 × 16 MiB, 8 × 4 MiB, 3 × 8 MiB and 4 × 4 MiB measured no better. Each I/O thread writes one region
  at its own offset (``pwrite``) and reads it back (``preadv``), so descriptors share no file position; the
  one hashing thread takes regions strictly in file order, and a buffer pair is refilled only once its region
  is hashed. Under CPU load (other work on both cores) the extra threads do not help: it is the disk they
  wait for, not the CPU.
- Each region is checked once, right after its own write. What the check cannot see is another process
  writing into the temporary file later (it is created ``0400`` with ``O_EXCL`` under a random name, so only
  root or its owner could); ``bwc fixity`` re-hashes stored objects from the disk and reports that.
- A failure in any region (a write refused, a region that reads back differently) fails the whole copy: the
  regions not yet started are cancelled and those running are waited for before the caller removes the file.

Where the file system refuses ``O_DIRECT`` (tmpfs on older kernels, some network file systems) or a region is
not block-aligned (the last one, or one after a short read of a growing file), the same steps run through the
page cache: the read-back then proves what our write path handed the kernel, as the old re-read did. Such a
region, and the first (which sets ``O_DIRECT`` on both descriptors), runs alone: a descriptor's flags change
only while no other request is using it.
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
IN_FLIGHT = 4  # regions written and read back at once (README "The local store's data path": measured)
REGION_SIZE = CHUNK_SIZE  # bytes a request: the device splits it into max_sectors_kb requests of its own
SLOTS = IN_FLIGHT + 2  # buffer pairs: those in flight, one being hashed, one being filled from the source
_O_DIRECT = getattr(os, "O_DIRECT", 0)  # Linux; elsewhere everything goes through the page cache


class PartFile:
    """A new temporary file open twice: one descriptor for the writes, one for the read-backs.

    Each descriptor uses ``O_DIRECT`` while its requests are block-aligned and drops it (``fcntl``) for one that
    is not. Several threads use them at once (``pwrite``/``preadv`` at explicit offsets share no file position)
    only while both have ``O_DIRECT`` on and every request is whole blocks (:meth:`concurrent`); a region that
    could change a flag runs alone, so no thread changes a flag under another's request.
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
            got += n
            if not n or (self._reader.direct and got < end):
                break  # a direct read short of whole blocks stops at the end of the file: no flag change after it
        return into[: min(got, length)]

    def concurrent(self, offset: int, length: int) -> bool:
        """Whether a region at ``offset`` of ``length`` bytes may be written and read back while others are: it
        is whole blocks and both descriptors already have ``O_DIRECT`` on, so no thread changes a flag."""
        return offset % ALIGN == 0 and length % ALIGN == 0 and self._writer.direct and self._reader.direct

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

    @property
    def direct(self) -> bool:
        return self._direct

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

    The calling thread reads the source, region after region, into ``SLOTS`` pairs of buffers; up to
    ``IN_FLIGHT`` I/O threads each write one region at its own offset and read it back into its pair's second
    buffer and compare it, so several regions are on the device at once; one hashing thread hashes the regions
    as they were read back, strictly in file order. A failure of any region (a write refused, a region that
    reads back differently) fails the copy, and so the put, whose digest is then never used: regions not yet
    started are cancelled and the ones running are waited for.
    """
    with (
        ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="local-store-io") as io,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-store-hash") as hashes,
    ):
        try:
            return _copy(source, part, hasher, io, hashes, progress)
        except BaseException:
            # The caller closes and removes the file next: no thread may still write into it after that (the
            # ``with`` waits for the running ones); the queued ones never start.
            io.shutdown(wait=False, cancel_futures=True)
            hashes.shutdown(wait=False, cancel_futures=True)
            raise


class _Slot:
    """A region's two buffers: what was read from the source (written from it) and what the file read back."""

    def __init__(self) -> None:
        self.written = aligned_buffer(REGION_SIZE)
        self.back = memoryview(aligned_buffer(REGION_SIZE))
        self.hashed: Future[None] | None = None  # done when both buffers may be reused


def _copy(
    source: BinaryIO,
    part: PartFile,
    hasher: MultiHasher,
    io: ThreadPoolExecutor,
    hashes: ThreadPoolExecutor,
    progress: Progress | None,
) -> int:
    slots = [_Slot() for _ in range(SLOTS)]
    running: list[Future[memoryview]] = []  # write-and-check of regions whose I/O may still be going on
    offset = 0
    for i in itertools.count():
        slot = slots[i % SLOTS]
        if slot.hashed is not None:
            slot.hashed.result()  # region i - SLOTS is hashed (or failed: raise it here)
        chunk = next(read_chunks(source, slot.written), None)  # the buffer filled, short reads and all
        if chunk is None:
            break
        n = len(chunk)
        alone = not part.concurrent(offset, n)
        if alone:  # descriptor flags may change (first region, a tail, the page cache): nothing else in flight
            for done in running:
                done.result()
        checked = io.submit(_write_and_check, part, slot, n, offset)
        if alone:
            checked.result()
        running = [*(r for r in running if not r.done()), checked]
        slot.hashed = hashes.submit(_hash_checked, hasher, checked)
        offset += n
        if progress:
            progress(n)
    for slot in slots:
        if slot.hashed is not None:
            slot.hashed.result()
    if part.size() != offset:
        raise VerificationFailed(f"the temporary file holds {part.size()} bytes, {offset} were written")
    return offset


def _write_and_check(part: PartFile, slot: _Slot, n: int, offset: int) -> memoryview:
    part.write(memoryview(slot.written)[:n], offset)
    return check_region(part, slot.written, n, offset, slot.back)


def _hash_checked(hasher: MultiHasher, checked: Future[memoryview]) -> None:
    """Hash a region once its check passed; the hashing thread takes regions in file order, one at a time."""
    hasher.update(checked.result())


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


def aligned_buffer(size: int = CHUNK_SIZE) -> mmap.mmap:
    """A page-aligned buffer (anonymous memory), as ``O_DIRECT`` requires."""
    return mmap.mmap(-1, size)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n
