"""SHA-256 of a resumable upload's bytes, computed as they arrive, so a finished upload is not read again.

The state lives in this process only (a ``hashlib`` object cannot be saved): for each upload, the running
digest at its last durable offset (bytes fsynced and recorded). A request that finds no state at the durable
offset it starts from — after a restart or a SIGKILL of the service, in another worker, or after a request
that failed between two syncs — rebuilds it by hashing the part file's durable prefix once. So the digest is
always of the bytes that were fsynced, never of bytes a dead request wrote after its last sync (those are cut
off by :func:`ingest.upload_sessions.open_for_append`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from typing import Any

READ_BYTES = 1024 * 1024
MAX_STATES = 1024  # uploads never finished nor resumed leave a small state each; the oldest go first


class ArrivalHashes:
    """upload id → (durable offset, running SHA-256 at that offset), for this process."""

    def __init__(self, limit: int = MAX_STATES) -> None:
        self.limit = limit
        self._states: OrderedDict[str, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def resume(self, upload_id: str, fd: int, offset: int) -> Any:
        """A hasher at ``offset``: a copy of the kept state, or the part file's first ``offset`` bytes hashed
        (read through ``fd``, opened for reading, without moving anyone's file position)."""
        with self._lock:
            kept = self._states.get(upload_id)
            if kept is not None and kept[0] == offset:
                return kept[1].copy()
        return hash_prefix(fd, offset)

    def durable(self, upload_id: str, offset: int, hasher: Any) -> None:
        """``hasher`` has taken exactly the bytes up to ``offset``, and they are durable now."""
        with self._lock:
            self._states[upload_id] = (offset, hasher.copy())
            self._states.move_to_end(upload_id)
            while len(self._states) > self.limit:
                self._states.popitem(last=False)

    def digest_at(self, upload_id: str, offset: int) -> str | None:
        """The hex digest of the first ``offset`` bytes, if this process holds it (else the caller reads them)."""
        with self._lock:
            kept = self._states.get(upload_id)
        return kept[1].hexdigest() if kept is not None and kept[0] == offset else None

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._states.pop(upload_id, None)


def hash_prefix(fd: int, length: int) -> Any:
    """SHA-256 of a file's first ``length`` bytes, read with ``pread`` (the descriptor's position stays)."""
    hasher = hashlib.sha256()
    done = 0
    while done < length:
        chunk = os.pread(fd, min(READ_BYTES, length - done), done)
        if not chunk:
            raise OSError(f"the part file ends at {done} bytes, before its durable offset {length}")
        hasher.update(chunk)
        done += len(chunk)
    return hasher
