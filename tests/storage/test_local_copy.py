"""The local store's data path (``storage/local_copy.py``) on real files: what is hashed is what the file reads
back, a region that reads back differently is refused, unaligned regions and file systems without ``O_DIRECT``
take the page cache, and the temporary file is written with ``O_DIRECT`` where the file system allows it."""

from __future__ import annotations

import hashlib
import io
import os
import resource
import stat
import threading
from pathlib import Path

import pytest

from storage.local_copy import (
    ALIGN,
    IN_FLIGHT,
    REGION_SIZE,
    SLOTS,
    PartFile,
    aligned_buffer,
    check_region,
    copy_verified,
    same_bytes,
)
from storage.local_store import LocalStore
from storage.objects import CHUNK_SIZE, MultiHasher, StoreUnavailable, VerificationFailed

LARGE = 2 * CHUNK_SIZE + 3  # two whole regions and a tail that is not a whole block


def _data(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"local-copy-{seed}".encode()).digest(size)


def _buffer_with(data: bytes) -> memoryview:
    buffer = aligned_buffer()
    buffer[: len(data)] = data
    return memoryview(buffer)


def test_same_bytes_is_an_exact_prefix_comparison() -> None:
    data = _data(ALIGN * 3 + 5)
    buffer = aligned_buffer()
    buffer[: len(data)] = data
    assert same_bytes(buffer, memoryview(data)) and same_bytes(buffer, memoryview(b""))
    for at in (0, ALIGN, len(data) - 1):
        changed = bytearray(data)
        changed[at] ^= 1
        assert not same_bytes(buffer, memoryview(changed)), at
    assert not same_bytes(buffer, memoryview(bytes(CHUNK_SIZE + 1)))  # longer than the buffer


@pytest.mark.parametrize("size", [ALIGN, ALIGN * 2 + 7, 5])
def test_a_region_that_reads_back_as_written_is_handed_on(tmp_path: Path, size: int) -> None:
    data = _data(size)
    written = _buffer_with(data)
    part = PartFile(tmp_path / "x.part")
    try:
        part.write(written[:size], 0)
        got = check_region(part, written.obj, size, 0, memoryview(aligned_buffer()))  # type: ignore[arg-type]
    finally:
        part.close()
    assert got == data


@pytest.mark.parametrize("damage", ["one byte changed", "cut short"])
def test_a_region_that_reads_back_differently_is_refused(tmp_path: Path, damage: str) -> None:
    """What the check exists for: the file does not hold what was written (here another writer changes it)."""
    data = _data(ALIGN * 2 + 7)
    written = _buffer_with(data)
    path = tmp_path / "x.part"
    part = PartFile(path)
    try:
        part.write(written[: len(data)], 0)
        path.chmod(0o600)  # the store makes it 0400; this writer stands for a fault behind the store's back
        with open(path, "r+b") as other:
            if damage == "cut short":
                other.truncate(len(data) - 1)
            else:
                other.seek(ALIGN + 1)
                other.write(bytes([data[ALIGN + 1] ^ 0xFF]))
        with pytest.raises(VerificationFailed, match="does not read back"):
            check_region(part, written.obj, len(data), 0, memoryview(aligned_buffer()))  # type: ignore[arg-type]
    finally:
        part.close()


def test_a_put_whose_temporary_file_grows_behind_its_back_stores_nothing(tmp_path: Path) -> None:
    """Through the whole put: another writer adds bytes past what the store wrote (from the source's read of the
    second region, so deterministically during the put); the file no longer holds exactly the bytes written and
    read back, so the put is refused with nothing stored and no temporary file left."""
    store = LocalStore(f"file://{tmp_path / 'objects'}")
    store.ensure_ready()
    data = _data(LARGE, seed=3)

    class Tampering(io.BytesIO):
        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            if self.tell() == CHUNK_SIZE:
                (part,) = (store.root / ".incoming").iterdir()
                part.chmod(0o600)  # the store makes it 0400; this writer stands for a fault behind its back
                with open(part, "r+b") as other:
                    other.seek(LARGE + 100)
                    other.write(b"tampered")
            return super().readinto(buffer)

    with pytest.raises(VerificationFailed, match=f"holds {LARGE + 108} bytes, {LARGE} were written"):
        store.put(Tampering(data))
    assert store.head(hashlib.sha256(data).hexdigest()) is None
    assert list((store.root / ".incoming").iterdir()) == []


class _Pieces(io.RawIOBase):
    """A source that ends once and then goes on, like a file that grew while it was read: regions after the
    first short one start at offsets that are not block-aligned."""

    def __init__(self, data: bytes, first: int) -> None:
        self._parts = [memoryview(data[:first]), memoryview(b""), memoryview(data[first:])]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._parts:
            part = self._parts[0]
            n = min(len(part), len(buffer))
            memoryview(buffer)[:n] = part[:n]
            self._parts[0] = part[n:]
            if not self._parts[0]:
                self._parts.pop(0)
            if n or not part:
                return n
        return 0


def test_regions_at_unaligned_offsets_are_stored_and_hashed_exactly(tmp_path: Path) -> None:
    data = _data(LARGE, seed=1)
    path = tmp_path / "x.part"
    part, hasher = PartFile(path), MultiHasher()
    try:
        written = copy_verified(_Pieces(data, CHUNK_SIZE + 11), part, hasher)  # type: ignore[arg-type]
    finally:
        part.close()
    assert written == hasher.size == LARGE
    assert path.read_bytes() == data and hasher.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def _flags_of_fds_on(path: Path) -> list[int]:
    flags = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                flags.append(int(Path(f"/proc/self/fdinfo/{fd}").read_text().split("flags:")[1].split()[0], 8))
        except (FileNotFoundError, IndexError):
            continue
    return flags


def _takes_o_direct(folder: Path) -> bool:
    try:
        fd = os.open(folder / "probe", os.O_RDWR | os.O_CREAT | getattr(os, "O_DIRECT", 0), 0o600)
    except OSError:
        return False
    os.close(fd)
    return hasattr(os, "O_DIRECT")


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="needs Linux /proc fdinfo")
def test_a_large_put_goes_to_the_device_with_o_direct_from_a_file_only_its_owner_can_write(tmp_path: Path) -> None:
    """Where the file system takes O_DIRECT, both the write and the read-back bypass the page cache (the read-back
    then proves what the device returns, not the kernel's copy); the temporary file is 0400 all along."""
    if not _takes_o_direct(tmp_path):
        pytest.skip("this file system refuses O_DIRECT (the page cache path is tested on the same code)")
    store = LocalStore(f"file://{tmp_path / 'objects'}")
    store.ensure_ready()
    seen: list[tuple[int, list[int]]] = []

    def during(_: int) -> None:
        (part,) = (store.root / ".incoming").iterdir()
        seen.append((stat.S_IMODE(part.stat().st_mode), _flags_of_fds_on(part)))

    data = _data(LARGE, seed=2)
    got = store.put(io.BytesIO(data), progress=during)
    assert got.sha256 == hashlib.sha256(data).hexdigest() and store.verify(got.sha256)
    assert [mode for mode, _ in seen] == [0o400] * 3
    # after the second region, the first has been read back: both descriptors were direct
    _, flags = seen[1]
    assert len(flags) == 2 and all(f & os.O_DIRECT for f in flags), [oct(f) for f in flags]


def test_many_regions_in_flight_are_stored_and_hashed_in_file_order(tmp_path: Path) -> None:
    """More regions than buffer pairs, each different, then a short read (the source grew) and regions at
    unaligned offsets: the file holds the source exactly and the digest is the source's, so no region was hashed
    out of order, twice, or from a buffer already refilled."""
    first = 3 * SLOTS * REGION_SIZE + 11
    data = _data(first + 2 * REGION_SIZE + 5, seed=4)
    path = tmp_path / "x.part"
    part, hasher = PartFile(path), MultiHasher()
    try:
        written = copy_verified(_Pieces(data, first), part, hasher)  # type: ignore[arg-type]
    finally:
        part.close()
    assert written == hasher.size == len(data)
    assert path.read_bytes() == data and hasher.sha256.hexdigest() == hashlib.sha256(data).hexdigest()


def _copy_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("local-store-")]


def test_a_write_refused_in_one_of_several_regions_in_flight_fails_the_put_and_leaves_nothing(tmp_path: Path) -> None:
    """A real refused write (the file size limit, EFBIG) in the middle of region 3 while regions 1 to IN_FLIGHT
    are in flight: the put fails as the store being unavailable, nothing is stored, no temporary file is left, no
    copying thread outlives the put, and the next put stores its bytes."""
    assert IN_FLIGHT >= 2, "this test is about regions in flight together"
    store = LocalStore(f"file://{tmp_path / 'objects'}")
    store.ensure_ready()
    data = _data((IN_FLIGHT + 3) * REGION_SIZE + 3, seed=5)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Python ignores SIGXFSZ: a write past the limit is cut short there, and the next one fails with EFBIG.
    resource.setrlimit(resource.RLIMIT_FSIZE, (3 * REGION_SIZE + 5 * ALIGN, hard))
    try:
        with pytest.raises(StoreUnavailable, match="File too large"):
            store.put(io.BytesIO(data))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert _copy_threads() == []
    assert store.head(hashlib.sha256(data).hexdigest()) is None
    assert list((store.root / ".incoming").iterdir()) == []
    assert [p for p in store.root.rglob("*") if p.is_file()] == []
    again = store.put(io.BytesIO(data))
    assert again.sha256 == hashlib.sha256(data).hexdigest() and store.verify(again.sha256)
