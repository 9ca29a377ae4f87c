"""The object-store interface and what every backend shares (SPEC §5).

Objects are content-addressed (``sha256/<aa>/<bb>/<sha256>``), written once and never overwritten. A
``put`` hashes in the same pass that writes, then checks the store's own view of the object (S3's
``ChecksumSHA256``, a signed payload, or the local file's regions read back as they are written) before
returning, so a returned ``StoredObject`` is a verified object.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from config.errors import EXIT_FINDING, BwcError, Finding, Unavailable

if TYPE_CHECKING:
    import mmap

    from cryptography.hazmat.primitives import hashes

CHUNK_SIZE = 8 * 1024 * 1024
Progress = Callable[[int], None]


class StoreError(BwcError):
    """Base of object-store errors; the status and exit code live on each class (an unknown one is ours: 500)."""

    code = "store_error"
    status = 500


class StoreUnavailable(StoreError, Unavailable):
    """The store could not be reached or refused the request; the caller retries later."""

    code = "store_unavailable"
    status = 503


class DigestMismatch(StoreError):
    """The bytes are not the ones named; nothing was stored under the expected key."""

    code = "digest_mismatch"
    status = 422


class VerificationFailed(StoreError, Finding):
    """The store's view of an object differs from what we sent: a finding about the evidence."""

    code = "verification_failed"
    status = 500
    exit_code = EXIT_FINDING


class ObjectMissing(StoreError, Finding):
    """A stored object is gone from the store: evidence lost is a finding."""

    code = "object_missing"
    status = 404
    exit_code = EXIT_FINDING


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int
    created: bool  # False: the same bytes were there already
    version_id: str | None = None
    retention_until: datetime | None = None
    extra_digests: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    version_id: str | None = None
    retention_until: datetime | None = None
    legal_hold: bool = False


@dataclass(frozen=True)
class Leftover:
    """What a crash left behind and a clean-up removed: a partial file, an upload, a temporary object."""

    kind: str  # part | multipart_upload | temp_object | spool
    key: str
    size: int
    since: datetime  # last written (or, for an upload without parts, initiated)
    upload_id: str | None = None


class ObjectStore(Protocol):
    """What the service needs from a store; ``local`` and ``s3`` implement it."""

    url: str
    # True where opening the store costs real work before the first request (S3: boto3's client and the bucket's
    # proof, ~0.5 s of CPU): ``prefers_known_digest`` is then asked on a worker thread while the source is hashed
    remote: bool

    @property
    def prefers_known_digest(self) -> bool:
        """True where a put with the digest known up front is much cheaper (S3 without cheap copies: straight to
        the final key, and no upload at all for bytes already stored); the caller then hashes the source first."""
        ...

    def hash_first(self, source: BinaryIO, cancel: Callable[[], bool] | None = None) -> str | None:
        """The SHA-256 of ``source`` read to its end, taken by a caller that hashes before it puts; a store may take
        more in the same read for the put that follows (S3 under ``signed``: each part's SHA-256). A store may stop
        early and answer None once ``cancel`` says the digest is not wanted (S3: the bucket's answer came late)."""
        ...

    def ensure_ready(self) -> None:
        """Create the bucket or folder if missing; safe to call again."""

    def put(
        self,
        source: BinaryIO,
        *,
        expected_sha256: str | None = None,
        extra_digests: Sequence[str] = (),
        retain_until: datetime | None = None,
        progress: Progress | None = None,
    ) -> StoredObject:
        """Store a stream, hashing as it goes; with ``expected_sha256``, refuse other bytes."""
        ...

    def put_file(
        self,
        path: Path,
        *,
        expected_sha256: str | None = None,
        extra_digests: Sequence[str] = (),
        retain_until: datetime | None = None,
        received_sha256: str | None = None,
    ) -> StoredObject:
        """Store a whole file the caller hands over and never writes again (a finished upload's part file).

        Like ``put`` (hashed, verified, write-once), but a store that can take the file as it is (the local store,
        on the same file system) links it into place instead of copying it: one read instead of three passes.
        ``received_sha256`` is the digest the caller computed of the very bytes it wrote and fsynced into that
        file (the upload route hashes on arrival): a store taking the file as it is then reads it no more.
        """
        ...

    def head(self, sha256: str) -> ObjectInfo | None:
        """What the store knows of an object, or None when it is absent."""
        ...

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``start``..``end`` (inclusive, like HTTP Range) in chunks."""
        ...

    def verify(self, sha256: str) -> bool:
        """Fixity: re-hash the stored bytes and compare with the key."""
        ...

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """Hold (or release) an object regardless of its retention date, where the store can."""
        ...

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every stored content object (``sha256/…`` keys, without the URL's prefix), in key order."""
        ...

    def remove_leftovers(self, before: datetime) -> list[Leftover]:
        """Remove what crashed puts left (partial files, open uploads, temporary objects) idle since ``before``."""
        ...

    def holds_in_store(self) -> bool:
        """Whether the store itself refuses to delete held and retained objects (S3 Object Lock), or only we do."""
        ...


def digest_of_key(key: str) -> str | None:
    """The SHA-256 a content-address key names, or None for a key that is not one."""
    sha256 = key.rsplit("/", 1)[-1]
    try:
        return sha256 if object_key(sha256) == key else None
    except ValueError:
        return None


FIXITY_OK, FIXITY_MISMATCH, FIXITY_MISSING = "ok", "mismatch", "missing"


def check_fixity(store: ObjectStore, sha256: str) -> str:
    """Re-hash one object: ``ok``, ``mismatch`` (bytes changed) or ``missing`` (gone), so a finding says which."""
    if store.head(sha256) is None:
        return FIXITY_MISSING
    if store.verify(sha256):
        return FIXITY_OK
    # verify() fails for an absent object too: ask again, so one deleted mid-check reads as missing
    return FIXITY_MISSING if store.head(sha256) is None else FIXITY_MISMATCH


def object_key(sha256: str) -> str:
    """The content address of a SHA-256 hex digest."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a lowercase SHA-256 hex digest: {sha256!r}")
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"


class MultiHasher:
    """SHA-256 plus any extra digests (SM3), fed once per chunk.

    ``with_sha256=False`` counts and takes the extras only, for a send whose SHA-256 is known already and
    checked by the server (:mod:`storage.s3_signed`), so no byte is hashed twice.
    """

    def __init__(self, extra: Sequence[str] = (), *, with_sha256: bool = True) -> None:
        self._sha256 = hashlib.sha256() if with_sha256 else None
        self._extra: dict[str, hashes.Hash] = {}
        for name in extra:
            if name != "sm3":
                raise ValueError(f"unknown extra digest {name!r}")
            # imported here: only a store configured for SM3 needs cryptography, and every ``bwc`` process
            # opens the store module (~5 ms of CPU a process otherwise)
            from cryptography.hazmat.primitives import hashes

            self._extra[name] = hashes.Hash(hashes.SM3())
        self.size = 0

    @property
    def sha256(self) -> Any:
        """The running SHA-256 (a ``hashlib`` object)."""
        if self._sha256 is None:
            raise RuntimeError("this hasher takes no SHA-256: the caller has it from elsewhere")
        return self._sha256

    def update(self, chunk: bytes | memoryview) -> None:
        if self._sha256 is not None:
            self._sha256.update(chunk)
        for h in self._extra.values():
            h.update(bytes(chunk) if isinstance(chunk, memoryview) else chunk)
        self.size += len(chunk)

    def feed(self, source: BinaryIO, progress: Progress | None = None) -> None:
        """Hash ``source`` from where it stands to its end through one reused buffer."""
        for chunk in read_chunks(source, bytearray(CHUNK_SIZE)):
            self.update(chunk)
            if progress:
                progress(len(chunk))

    def extra_hexdigests(self) -> dict[str, str]:
        return {name: h.finalize().hex() for name, h in self._extra.items()}


def read_chunks(source: BinaryIO, buffer: bytearray | mmap.mmap) -> Iterator[memoryview]:
    """Fill one reused buffer with ``readinto`` and yield views of it; the view is valid until the next."""
    view = memoryview(buffer)
    while True:
        n = source.readinto(view) if hasattr(source, "readinto") else _read_into(source, view)
        if not n:
            return
        # Fill the buffer fully where the source delivers short reads (pipes, sockets).
        while n < len(buffer):
            more = source.readinto(view[n:]) if hasattr(source, "readinto") else _read_into(source, view[n:])
            if not more:
                break
            n += more
        yield view[:n]


def sha256_of_stream(source: BinaryIO) -> str:
    """SHA-256 of a stream read to its end through one reused buffer."""
    hasher = hashlib.sha256()
    for chunk in read_chunks(source, bytearray(CHUNK_SIZE)):
        hasher.update(chunk)
    return hasher.hexdigest()


def _read_into(source: BinaryIO, view: memoryview) -> int:
    data = source.read(len(view))
    view[: len(data)] = data
    return len(data)


def open_store(url: str) -> ObjectStore:
    """The store named by a ``BWC_STORAGE_URL``: ``file:///path`` or ``s3://bucket?endpoint_url=…``."""
    if url.startswith("file://"):
        from storage.local_store import LocalStore

        return LocalStore(url)
    if url.startswith("s3://"):
        from storage.s3_store import S3Store

        return S3Store(url)
    raise ValueError(f"unsupported storage URL scheme in {url.split('://', 1)[0]!r}: use file:// or s3://")
