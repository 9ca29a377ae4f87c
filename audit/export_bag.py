"""Writing an export plan as a BagIt bag (RFC 8493) inside a ZIP, streamed: memory stays flat whatever the case size.

Members are stored (not deflated: footage does not compress) with ZIP64 headers, written through
``ZipFile.open(name, "w")`` chunk by chunk from the object store. Each stored object is hashed as it is copied
and must match its digest, so the manifest describes the bytes actually written. The output may be a file or a
pipe (``stream_bag`` feeds an HTTP response through a small bounded queue, so a slow client slows the export
instead of filling memory).
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
import zipfile
from collections.abc import Callable, Generator
from typing import BinaryIO

from audit.export import ExportPlan
from audit.export_text import verify_text
from config.errors import Conflict
from storage.objects import ObjectStore

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
QUEUE_CHUNKS = 4  # chunks of at most 8 MiB waiting for the client: the bound on an HTTP export's memory


def _entry(zf: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))  # fixed: the bytes depend on the content only
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _write_small(zf: zipfile.ZipFile, name: str, data: bytes) -> str:
    with zf.open(_entry(zf, name), "w", force_zip64=True) as member:
        member.write(data)
    return hashlib.sha256(data).hexdigest()


def bag_info(plan: ExportPlan) -> bytes:
    """bag-info.txt: who made the bag, when, and the payload's size (Payload-Oxum) for a quick completeness check."""
    octets = sum(m.size for m in plan.objects) + sum(len(d) for d in plan.files.values())
    streams = len(plan.objects) + len(plan.files)
    lines = [
        "Source-Organization: BWC Evidence",
        f"External-Identifier: {plan.case_number}",
        f"Bagging-Date: {plan.exported_at.date().isoformat()}",
        "Bag-Software-Agent: bwc-evidence export",
        f"Payload-Oxum: {octets}.{streams}",
    ]
    return ("\n".join(lines) + "\n").encode()


def _manifest(digests: dict[str, str]) -> bytes:
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(digests.items())).encode()


def write_bag(
    plan: ExportPlan, store: ObjectStore, out: BinaryIO, progress: Callable[[int], None] | None = None
) -> None:
    """Write the bag as a ZIP to ``out`` (seekable or not); raises if a stored object is not its digest."""
    root = plan.root
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        tags = {
            "bagit.txt": _write_small(zf, f"{root}/bagit.txt", BAGIT_TXT),
            "bag-info.txt": _write_small(zf, f"{root}/bag-info.txt", bag_info(plan)),
            "VERIFY.txt": _write_small(zf, f"{root}/VERIFY.txt", verify_text(plan).encode()),
        }
        payload = {path: _write_small(zf, f"{root}/{path}", data) for path, data in sorted(plan.files.items())}
        for member in plan.objects:
            payload[member.path] = _copy_object(zf, f"{root}/{member.path}", store, member.sha256, progress)
        tags["manifest-sha256.txt"] = _write_small(zf, f"{root}/manifest-sha256.txt", _manifest(payload))
        _write_small(zf, f"{root}/tagmanifest-sha256.txt", _manifest(tags))


def _copy_object(
    zf: zipfile.ZipFile, name: str, store: ObjectStore, sha256: str, progress: Callable[[int], None] | None
) -> str:
    hasher = hashlib.sha256()
    with zf.open(_entry(zf, name), "w", force_zip64=True) as member:
        for chunk in store.read(sha256):
            hasher.update(chunk)
            member.write(chunk)
            if progress is not None:
                progress(len(chunk))
    if hasher.hexdigest() != sha256:
        raise Conflict(f"stored object {sha256} no longer matches its digest; run bwc fixity", code="integrity_failed")
    return sha256


class _Pipe(io.RawIOBase):
    """A write-only stream into a bounded queue; fails once the reader has gone."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException | None], gone: threading.Event) -> None:
        self._chunks, self._gone = chunks, gone

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._gone.is_set():
            raise BrokenPipeError("the client went away")
        self._chunks.put(bytes(data))
        return len(data)


def stream_bag(plan: ExportPlan, store: ObjectStore) -> Generator[bytes, None, None]:
    """The bag's bytes as they are written, for a streamed HTTP response (no temporary file)."""
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=QUEUE_CHUNKS)
    gone = threading.Event()

    def produce() -> None:
        try:
            write_bag(plan, store, _Pipe(chunks, gone))  # type: ignore[arg-type]
            end: BaseException | None = None
        except BaseException as exc:  # handed to the reader, which raises it in the response
            end = exc
        if not gone.is_set():
            chunks.put(end)

    writer = threading.Thread(target=produce, name="bwc-export", daemon=True)
    writer.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()
        # Unblock a writer waiting on a full queue; its next write sees ``gone`` and stops.
        while True:
            try:
                chunks.get_nowait()
            except queue.Empty:
                break
