"""One signed PutObject, straight to the content address, signed with a SHA-256 known before the send (SPEC §5).

Where the server checks every request's SigV4 ``x-amz-content-sha256`` against the bytes it receives (Ceph RGW
16, the ``signed`` proof of :mod:`storage.s3_proof`), the digest in the signature is a promise the server holds
the body to: it refuses the request unless the bytes it got have that SHA-256. So the file is hashed once, by a
local read pass (or not at all, where a caller already knows the digest), and the request is signed with that
digest. Then

* the key is the content address before anything is sent: bytes already stored are found by a HEAD and never
  uploaded (up to 128 MiB, and beyond 5 GiB; in between, where the bucket does not retain every new object, the
  parts go up while the pass still reads, to a temporary key RGW then copies by reference to the content address:
  ``S3Store._put_signed_while_hashing``, eleventh session, rgw14);
* the bytes sent are bound to the digest: a file that changed after it was hashed is refused by the server, so
  nothing lands under an address its bytes do not have;
* botocore does not hash the body again to sign it (its signer reads the whole body first, then sends it).

Why parts, and only above 128 MiB (measured on Ceph RGW 16 from the tests' fixture, each mode against a fresh
gateway in the same run). In CPU, one signed PutObject is the cheapest for both sides: radosgw spent 7.4 s on a
2 GiB one; parts of 8 MiB, each signed with its SHA-256, 7.9–9.0 s at 3 or 10 in flight (what ``aws s3 cp``
sends); parts of 64–128 MiB, 2–4 in flight, 7.4–7.6 s. An unsigned payload with a ``Content-MD5`` spares the
gateway its SHA-256 check (~0.8 s a GiB), but MD5 is half SHA-256's speed on the client, so the sum grows. But
one request keeps radosgw's work on one thread, one core: in wall time, 64 MiB parts three in flight took
0.86–0.88 × ``aws s3 cp``'s time where one PutObject took 0.79–0.81 × (three alternated pairs on a 2-core
machine whose cores client and gateway share, tenth session, bench/HISTORY.md rgw13), for a second SHA-256 of
every byte on the client (~0.6 s of CPU a GiB). A gateway on cores of its own gains more. So above
``S3Store.signed_parts_from`` (128 MiB) the hash pass takes each part's SHA-256 beside the file's
(:class:`PartDigests`, :func:`hash_pass`: one read, a second thread), and each part is read again with
``pread`` (:class:`FileSlice`) and signed with its digest, as soon as the pass has hashed it where the upload
goes to a temporary key (``PartDigests(on_part=…)``); below it, one PutObject.

botocore has no option to sign a precomputed payload digest. :class:`KnownPayloadAuth` is its S3 SigV4 signer
with one change, ``payload()`` taking the digest the body carries, registered under its own name in botocore's
signer table and chosen per operation through botocore's ``choose-signer`` event. :func:`check_signed` (a
``before-send`` handler) refuses to send a :class:`KnownDigestBody` under any other payload digest, so a
botocore that signed another way could never store bytes under a digest the server did not check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

import botocore.auth
from botocore.auth import S3SigV4Auth

from storage.objects import CHUNK_SIZE, MultiHasher, Progress, StoreError, read_chunks

SIGNER = "bwc-s3v4-known-payload"
SIGNED_OPERATIONS = ("PutObject", "UploadPart")


class KnownPayloadAuth(S3SigV4Auth):  # type: ignore[misc]  # botocore ships no types
    """S3 SigV4 that signs the SHA-256 a :class:`KnownDigestBody` carries instead of reading the body for it."""

    def payload(self, request: Any) -> str:
        body = getattr(request, "body", None)
        if isinstance(body, KnownDigestBody):
            return body.sha256
        return str(super().payload(request))


botocore.auth.AUTH_TYPE_MAPS.setdefault(SIGNER, KnownPayloadAuth)


def choose_signer(signature_version: Any = None, **_: Any) -> str | None:
    """``choose-signer`` handler: our signer wherever botocore would sign with plain S3 SigV4."""
    return SIGNER if signature_version in ("v4", "s3v4") else None


def check_signed(request: Any, **_: Any) -> None:
    """``before-send`` handler: a known-digest body goes out signed with its digest, or not at all."""
    body = getattr(request, "body", None)
    if not isinstance(body, KnownDigestBody):
        return
    value = request.headers.get("X-Amz-Content-SHA256")
    sent = value.decode("ascii") if isinstance(value, bytes) else value
    if sent != body.sha256:
        raise StoreError(f"refusing to send a body of sha256 {body.sha256} signed as {sent!r}")


def install(client: Any) -> None:
    """Make ``client`` sign known-digest bodies with their digest and refuse to send them otherwise."""
    for operation in SIGNED_OPERATIONS:
        client.meta.events.register_first(f"choose-signer.s3.{operation}", choose_signer)
        client.meta.events.register(f"before-send.s3.{operation}", check_signed)


class KnownDigestBody:
    """``size`` bytes of the source from its position now, whose SHA-256 is said to be ``sha256``.

    The server refuses the request unless the bytes it receives have that digest. The byte count and the extra
    digests (SM3) are taken anew on every pass (botocore rewinds the body to retry), so that those of the last
    one — the bytes the server accepted — are what is reported. ``progress`` hears the first pass only. A source
    shorter or longer than ``size`` (a file still being written) fails the read, before the request completes.
    """

    def __init__(
        self, source: BinaryIO, size: int, sha256: str, extra: tuple[str, ...], progress: Progress | None
    ) -> None:
        self.sha256 = sha256
        self._source = source
        self._start = source.tell()
        self._size = size
        self._extra = extra
        self._progress = progress
        self._pos = 0
        self._passes = 0
        self.hasher = MultiHasher(extra, with_sha256=False)
        self.changed: OSError | None = None  # the source's fault, which botocore would report as a broken send

    def read(self, size: int | None = -1) -> bytes:
        room = self._size - self._pos
        wanted = room if size is None or size < 0 else min(size, room)
        if wanted <= 0:
            return b""
        if self.changed is not None:  # botocore retries a broken send: the source is no better the second time
            raise self.changed
        data = self._source.read(wanted)
        if not data:
            # Content-Length is already said: a short body would leave the server waiting for the rest.
            self.changed = OSError(f"the source ended after {self._pos} of {self._size} bytes: it changed")
            raise self.changed
        if self._pos == 0:
            self._passes += 1
        self._pos += len(data)
        self.hasher.update(data)
        if self._progress is not None and self._passes == 1:
            self._progress(len(data))
        if self._pos == self._size and self._source.read(1):
            # Raised before the last bytes go out, so the server never completes the object.
            self.changed = OSError(f"the source grew past {self._size} bytes while being read: it changed")
            raise self.changed
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        pos = max(0, min(self._size, base + offset))
        self._source.seek(self._start + pos)
        self._pos = pos
        if pos == 0:
            self.hasher = MultiHasher(self._extra, with_sha256=False)
        return pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return self._size


class PartDigests:
    """The SHA-256 of each ``part_size`` slice of a source, taken beside its evidence SHA-256 in one read pass.

    The read happens once; each buffer is fed to the evidence hasher on the calling thread and to the part hasher
    on a second one (hashlib releases the GIL on large buffers), so the pass still takes about one SHA-256's wall
    time on two cores (:func:`hash_pass`).
    """

    def __init__(self, part_size: int, on_part: Callable[[int, bytes], None] | None = None) -> None:
        self.part_size = part_size
        self.digests: list[bytes] = []
        self._current = hashlib.sha256()
        self._filled = 0
        self._on_part = on_part  # hears (part number, digest) as each part is hashed: its upload can start
        self.abandoned = False

    def _done(self) -> None:
        self.digests.append(self._current.digest())
        self._current = hashlib.sha256()
        self._filled = 0
        if self._on_part is not None:
            self._on_part(len(self.digests), self.digests[-1])

    def update(self, chunk: memoryview) -> None:
        view = chunk
        while len(view):
            take = min(len(view), self.part_size - self._filled)
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == self.part_size:
                self._done()

    def finish(self) -> list[bytes]:
        if self._filled:
            self._done()
        return self.digests


def hash_pass(
    source: BinaryIO,
    hasher: MultiHasher,
    parts: PartDigests | None,
    stop: Callable[[], bool] = lambda: False,
    cancel: Callable[[], bool] | None = None,
) -> bool:
    """Read ``source`` to its end once, feeding ``hasher`` and ``parts``; False where ``cancel``, asked before every
    buffer, said the digest is no longer wanted (the pass then stops where it is). ``stop`` is asked before every
    buffer too, and once it says the parts are not wanted (the bucket's proof turned out not to be ``signed``) they
    are abandoned and the second thread does no more."""
    if parts is None and cancel is None:
        hasher.feed(source)
        return True
    with ThreadPoolExecutor(1, thread_name_prefix="part-sha256") as pool:
        for chunk in read_chunks(source, bytearray(CHUNK_SIZE)):
            if cancel is not None and cancel():
                return False
            if parts is not None and not parts.abandoned and stop():
                parts.abandoned = True
            pending = None if parts is None or parts.abandoned else pool.submit(parts.update, chunk)
            hasher.update(chunk)
            if pending is not None:
                pending.result()  # the buffer is read again by the next readinto
    return True


class FileSlice:
    """``size`` bytes of a file descriptor from ``offset``, read with ``pread``: parts in flight share no position."""

    def __init__(self, fd: int, offset: int, size: int) -> None:
        self._fd = fd
        self._offset = offset
        self._size = size
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        room = self._size - self._pos
        wanted = room if size is None or size < 0 else min(size, room)
        if wanted <= 0:
            return b""
        data = os.pread(self._fd, wanted, self._offset + self._pos)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, self._size)[whence]
        self._pos = max(0, min(self._size, base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos
