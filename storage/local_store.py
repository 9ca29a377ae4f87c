"""Object store on the local file system: the embedded default under ``BWC_HOME/objects``."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from storage.local_copy import PartFile, copy_verified
from storage.objects import (
    CHUNK_SIZE,
    DigestMismatch,
    Leftover,
    MultiHasher,
    ObjectInfo,
    ObjectMissing,
    Progress,
    StoredObject,
    StoreUnavailable,
    VerificationFailed,
    object_key,
    sha256_of_stream,
)


class LocalStore:
    """Copy into a temporary file, reading each region back and hashing what came back; fsync; hard-link into
    place (never replacing). The data path and why it is so: :mod:`storage.local_copy`.

    The service never deletes an object here (there is no delete); legal holds and retention are enforced in the
    database only: anyone with write access to the folder can still remove a file, which ``bwc fixity`` reports.
    """

    prefers_known_digest = False  # one pass does it all here; hashing first would only add a read
    remote = False

    def __init__(self, url: str) -> None:
        self.url = url
        self.root = Path(unquote(urlsplit(url).path))
        self._incoming = self.root / ".incoming"

    def hash_first(self, source: BinaryIO, cancel: Callable[[], bool] | None = None) -> str | None:
        return sha256_of_stream(source)  # never cancelled: this store knows at once that it wants no digest

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
        try:
            part = PartFile(tmp)
            try:
                copy_verified(source, part, hasher, progress)
                sha256 = hasher.sha256.hexdigest()
                if expected_sha256 is not None and sha256 != expected_sha256.lower():
                    raise DigestMismatch(f"expected sha256 {expected_sha256}, got {sha256}")
                part.fsync()  # O_DIRECT put the bytes on the device; this flushes its cache and the metadata
            finally:
                part.close()
            created = self._place(tmp, sha256)
        except OSError as exc:
            raise StoreUnavailable(f"local store {self.root}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return self._stored(sha256, hasher, created)

    def put_file(
        self,
        path: Path,
        *,
        expected_sha256: str | None = None,
        extra_digests: Sequence[str] = (),
        retain_until: datetime | None = None,
        received_sha256: str | None = None,
    ) -> StoredObject:
        """Take a handed-over file by hard link (same file system), made read-only and fsynced, then hashed in
        one read: that read is the store's own view of the very inode that becomes the object, so it is also
        the verification ``put`` does by reading each region back. On another file system the file is copied
        like ``put``.

        With ``received_sha256`` (the caller hashed each byte as it wrote and fsynced it into this inode) and no
        extra digest to compute, that read is skipped: it would hash the same durable bytes a second time."""
        try:
            self._incoming.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self._incoming}: {exc}") from exc
        tmp = self._incoming / f"{uuid.uuid4().hex}.part"
        try:
            os.link(path, tmp)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK):
                raise StoreUnavailable(f"local store {self.root}: cannot take {path.name}: {exc}") from exc
            with open(path, "rb") as f:  # another file system: copy
                return self.put(
                    f, expected_sha256=expected_sha256, extra_digests=extra_digests, retain_until=retain_until
                )
        trusted = received_sha256 is not None and not extra_digests
        hasher = MultiHasher(extra_digests, with_sha256=not trusted)
        try:
            with open(tmp, "rb", buffering=0) as f:
                os.fchmod(f.fileno(), 0o444)  # this inode becomes the object: read-only from here on
                os.fsync(f.fileno())
                if trusted:
                    hasher.size = os.fstat(f.fileno()).st_size
                else:
                    hasher.feed(f)
            sha256 = str(received_sha256).lower() if trusted else hasher.sha256.hexdigest()
            if expected_sha256 is not None and sha256 != expected_sha256.lower():
                raise DigestMismatch(f"expected sha256 {expected_sha256}, got {sha256}")
            created = self._place(tmp, sha256)
        except OSError as exc:
            raise StoreUnavailable(f"local store {self.root}: {exc}") from exc
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return self._stored(sha256, hasher, created)

    def _place(self, source: Path, sha256: str) -> bool:
        """Link verified bytes to their final key; False when that key was there already (then left alone)."""
        final = self._path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, final)  # atomic and refuses to replace: write-once
        except FileExistsError:
            return False
        os.chmod(final, 0o444)
        _fsync_dir(final.parent)
        return True

    def _stored(self, sha256: str, hasher: MultiHasher, created: bool) -> StoredObject:
        if not created and not self.verify(sha256):
            # The same bytes were stored before, but what is there now is not them: say so loudly.
            raise VerificationFailed(f"stored object {sha256} no longer matches its digest")
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
        try:
            return _sha256_of(self._path(sha256)) == sha256
        except FileNotFoundError:
            return False

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """The file system has no legal hold: holds are enforced in the database only (and nothing here deletes)."""
        if self.head(sha256) is None:
            raise ObjectMissing(f"object {sha256} is missing from {self.root}")

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Walk ``sha256/`` in key order; ``.incoming`` (partial files) is not an object."""
        for folder, dirs, files in os.walk(self.root / "sha256"):
            dirs.sort()
            for name in sorted(files):
                path = Path(folder, name)
                with contextlib.suppress(FileNotFoundError):
                    yield ObjectInfo(key=path.relative_to(self.root).as_posix(), size=path.lstat().st_size)

    def remove_leftovers(self, before: datetime) -> list[Leftover]:
        """Delete ``.incoming/*.part`` files last written before ``before`` (a live put keeps writing its own)."""
        removed: list[Leftover] = []
        try:
            entries = sorted(os.scandir(self._incoming), key=lambda e: e.name)
        except FileNotFoundError:
            return removed
        for entry in entries:
            if not entry.name.endswith(".part") or not entry.is_file(follow_symlinks=False):
                continue
            st = entry.stat(follow_symlinks=False)
            since = datetime.fromtimestamp(st.st_mtime, UTC)
            if since >= before:
                continue
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue  # another clean-up got there first
            except OSError as exc:
                raise StoreUnavailable(f"cannot remove {entry.path}: {exc}") from exc
            removed.append(Leftover("part", f".incoming/{entry.name}", st.st_size, since))
        return removed

    def holds_in_store(self) -> bool:
        """False, plainly: a local store enforces holds and retention in the database only, not on the disk."""
        return False


def _sha256_of(path: Path) -> str:
    with open(path, "rb", buffering=0) as f:
        return sha256_of_stream(f)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
