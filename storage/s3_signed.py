"""One signed PutObject whose signed payload digest is the evidence digest (SPEC §5, the ``signed`` proof).

Where the server checks every request's SigV4 ``x-amz-content-sha256`` against the bytes it receives (Ceph RGW
16, :mod:`storage.s3_proof`), a file up to PutObject's 5 GiB goes up in one request: botocore reads the body once
to SHA-256 it for the signature, seeks back and sends it, and the server refuses the request unless the bytes it
got have that SHA-256. That digest is therefore the SHA-256 of the stored bytes — the evidence digest — and the
client hashes each byte once, with no MD5 and no part digests (measured on a 1 GiB file to RGW: 1.7 s of client
CPU against 4.5 s for the multipart put with a Content-MD5 per part, and less gateway CPU too).

The digest is read from the request botocore is about to send (a ``before-send`` handler: botocore's documented
event hooks), never recomputed. A file that changes between botocore's two reads is refused by the server.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from storage.objects import MultiHasher, Progress, StoreError

UNSIGNED = "UNSIGNED-PAYLOAD"


class SignedBody:
    """The source as botocore reads it for one signed PutObject: a pass to hash it, a seek back, a pass to send.

    Every pass starts at the source's position when this was made and hands out at most ``size`` bytes. The byte
    count and the extra digests (SM3) are taken anew on each pass, so that those of the last one — the bytes the
    server checked against the signature — are what is reported, even after a retry (botocore hashes and sends
    again). ``progress`` hears the first pass only.
    """

    def __init__(self, source: BinaryIO, size: int, extra: tuple[str, ...], progress: Progress | None) -> None:
        self._source = source
        self._start = source.tell()
        self._size = size
        self._extra = extra
        self._progress = progress
        self._pos = 0
        self._passes = 0
        self.hasher = MultiHasher(extra, with_sha256=False)
        self.signed_sha256: str | None = None

    def read(self, size: int | None = -1) -> bytes:
        room = self._size - self._pos
        wanted = room if size is None or size < 0 else min(size, room)
        if wanted <= 0:
            return b""
        data = self._source.read(wanted)
        if not data:
            # Content-Length is already said: a short body would leave the server waiting for the rest.
            raise OSError(f"the source ended after {self._pos} of {self._size} bytes: it changed while being read")
        if self._pos == 0:
            self._passes += 1
        self._pos += len(data)
        self.hasher.update(data)
        if self._progress is not None and self._passes == 1:
            self._progress(len(data))
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


def remember_signed_digest(request: Any, **_: Any) -> None:
    """``before-send`` handler: a :class:`SignedBody` learns the payload SHA-256 its request was signed with."""
    body = getattr(request, "body", None)
    if isinstance(body, SignedBody):
        value = request.headers.get("X-Amz-Content-SHA256")
        body.signed_sha256 = value.decode("ascii") if isinstance(value, bytes) else value


def signed_digest(body: SignedBody, where: str) -> str:
    """The hex SHA-256 the accepted request was signed with; refuse to go on if the payload was not signed."""
    digest = (body.signed_sha256 or "").lower()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise StoreError(
            f"PutObject on {where} went out without a signed payload ({body.signed_sha256!r}): the signed proof "
            "needs payload signing"
        )
    return digest
