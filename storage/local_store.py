"""Object store on the local file system: the embedded default under ``BWC_HOME/objects``."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from bwc.storage.objects import (
    CHUNK_SIZE,
    DigestMismatch,
    MultiHasher,
    ObjectInfo,
    ObjectMissing,
    Progress,
    StoredObject,
    StoreUnavailable,
    VerificationFailed,
    object_key,
    read_chunks,
)


class LocalStore:
    """Write to a temporary file while hashing, fsync, hard-link into place (never replacing), re-read."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = Path(unquote(urlsplit(url).path))
        self._incoming = self.root / ".incoming"

    def ensure_ready(self) -> None:
        self._incoming.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        return self.root / object_key(sha256)

    def put(
        self,
        source: BinaryIO,
        *,
        expected_sha256: str | None = None,
        extra_digests: Sequence[str] = (),
        retain_until: datetime | None = None,
        progress: Progress | None = None,
    ) -> StoredObject:
        try:
            self._incoming.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self._incoming}: {exc}") from exc
        tmp = self._incoming / f"{uuid.uuid4().hex}.part"
        hasher = MultiHasher(extra_digests)
        buffer = bytearray(CHUNK_SIZE)
        try:
            with open(tmp, "xb") as out:
                for chunk in read_chunks(source, buffer):
                    hasher.update(chunk)
                    out.write(chunk)
                    if progress:
                        progress(len(chunk))
                out.flush()
                os.fsync(out.fileno())
            sha256 = hasher.sha256.hexdigest()
            if expected_sha256 is not None and sha256 != expected_sha256.lower():
                raise DigestMismatch(f"expected sha256 {expected_sha256}, got {sha256}")
            final = self._path(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(tmp, final)  # atomic and refuses to replace: write-once
                created = True
                os.chmod(final, 0o444)
                _fsync_dir(final.parent)
            except FileExistsError:
                created = False
        except OSError as exc:
            raise StoreUnavailable(f"local store {self.root}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if not self.verify(sha256):
            raise VerificationFailed(f"object {sha256} does not re-read to its digest")
        return StoredObject(
            key=object_key(sha256),
            sha256=sha256,
            size=hasher.size,
            created=created,
            extra_digests=hasher.extra_hexdigests(),
        )

    def head(self, sha256: str) -> ObjectInfo | None:
        path = self._path(sha256)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key=object_key(sha256), size=st.st_size)

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self._path(sha256)
        try:
            f = open(path, "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(f"object {sha256} is missing from {self.root}") from exc
        with f:
            f.seek(start)
            remaining = None if end is None else end - start + 1
            while remaining is None or remaining > 0:
                chunk = f.read(CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining))
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def verify(self, sha256: str) -> bool:
        hasher = MultiHasher()
        path = self._path(sha256)
        try:
            with open(path, "rb") as f:
                for chunk in read_chunks(f, bytearray(CHUNK_SIZE)):
                    hasher.update(chunk)
        except FileNotFoundError:
            return False
        return hasher.sha256.hexdigest() == sha256

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """The file system has no legal hold; objects are read-only and never deleted by the service."""
        if self.head(sha256) is None:
            raise ObjectMissing(f"object {sha256} is missing from {self.root}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
