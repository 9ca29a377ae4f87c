"""Copy one source file into the object store, probing it alongside, and prove the file held still."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO, cast

from ingest.probe import ProbeResult, probe
from ingest.reader import ChunkHook, CountingReader, FileChanged, FileState, check_unchanged, open_regular
from storage.objects import DigestMismatch, StoredObject
from storage.runtime import Runtime


@dataclass(frozen=True)
class Transfer:
    stored: StoredObject
    state: FileState
    probe: ProbeResult | None
    retain_until: datetime | None = None  # the policy's date, where the store keeps none of its own


def _prehash(rt: Runtime, raw: BinaryIO, size: int, pool: ThreadPoolExecutor) -> str | None:
    """The source's SHA-256 from a quick local pass where the store wants it before the upload, else None.

    Hashing runs at memory speed, uploading does not: with the digest known the upload goes straight to its final
    key, or is skipped for bytes already stored. A remote store (S3) is asked on a worker thread while the pass
    runs: its answer needs its client made and the bucket's proof read, ~0.5 s of CPU that runs beside the pass
    (hashlib and file reads release the GIL), not before it. Where it does not want the digest (Ceph RGW's
    ``signed`` proof or a Content-MD5 bucket, without default retention: it hashes while it uploads) the pass stops
    as soon as the answer comes, so what it read for nothing is what the answer's wait let it read.
    """
    store = rt.store
    wants = pool.submit(lambda: store.prefers_known_digest) if store.remote else None
    if wants is None and not store.prefers_known_digest:
        return None

    def unwanted() -> bool:
        return wants is not None and wants.done() and not wants.result()

    digest = store.hash_first(cast(BinaryIO, CountingReader(raw, limit=size + 1)), cancel=unwanted)
    raw.seek(0)
    return digest if wants is None or wants.result() else None


def transfer(
    rt: Runtime,
    path: Path,
    before: FileState,
    *,
    now: datetime,
    with_probe: bool,
    expected_sha256: str | None = None,
    on_chunk: ChunkHook | None = None,
) -> Transfer:
    """Store ``path``; raises FileChanged, NotRegularFile, StoreError or OSError, and never touches the source."""
    settings = rt.settings
    retain_until = now + timedelta(days=settings.retention_days)
    with open_regular(path) as raw, ThreadPoolExecutor(max_workers=2, thread_name_prefix="transfer") as pool:
        # ffprobe is a subprocess of its own: let it run while we hash and upload.
        pending = pool.submit(probe, path) if with_probe and before.size > 0 else None
        prehashed = False
        if expected_sha256 is None:
            expected_sha256 = _prehash(rt, raw, before.size, pool)
            prehashed = expected_sha256 is not None
        # One byte past the size seen before is enough to prove the file grew meanwhile.
        reader = CountingReader(raw, on_chunk, limit=before.size + 1)
        try:
            stored = rt.store.put(
                cast(BinaryIO, reader),
                expected_sha256=expected_sha256,
                extra_digests=tuple(settings.extra_digests),
                retain_until=retain_until,
            )
        except DigestMismatch as exc:
            if prehashed:
                raise FileChanged(f"file changed between hashing and storing: {exc}") from exc
            raise
        except OSError:
            # A store that reads the file twice (one signed PutObject) finds it shorter on a pass: say it changed.
            check_unchanged(before, FileState.of(os.stat(path)), before.size)
            raise
        result = pending.result() if pending is not None else None
        after = FileState.of(os.stat(path))
    check_unchanged(before, after, reader.bytes_read)
    if stored.size != before.size:
        raise OSError(f"the store took {stored.size} bytes of a {before.size}-byte file")
    return Transfer(stored, before, result, retain_until)
