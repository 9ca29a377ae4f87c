"""What the S3 store is built from: its URL, S3's checksum arithmetic, part buffers and error mapping."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from config.settings import mask_text, mask_url
from storage.objects import StoreError, StoreUnavailable, VerificationFailed

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PARTS = 10_000  # S3's limit on parts per multipart upload
MAX_COPY_SIZE = 5 * 1024**3  # CopyObject's limit; larger objects are copied part by part
MAX_PUT_SIZE = 5 * 1024**3  # PutObject's limit; larger objects go up in parts
LOCK_MODES = ("COMPLIANCE", "GOVERNANCE")
MISSING_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
# Codes with which servers refuse a body whose digest header does not match it: the bytes changed on the way.
DIGEST_REFUSALS = {"BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch", "XAmzContentSHA256Mismatch"}
_UNAVAILABLE_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "NoSuchBucket",
    "SlowDown",
    "RequestTimeout",
    "ServiceUnavailable",
}


@dataclass(frozen=True)
class S3Location:
    """What an ``s3://BUCKET[/PREFIX]?…`` URL names; secrets stay out of ``repr``."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    lock_mode: str = "COMPLIANCE"
    addressing_style: str | None = None
    max_attempts: int = 3
    lock_requested: bool = False  # the URL names a lock mode: a bucket we create gets Object Lock

    def __repr__(self) -> str:
        endpoint = mask_url(self.endpoint_url) if self.endpoint_url else None
        return f"S3Location(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={endpoint!r})"


def parse_s3_url(url: str) -> S3Location:
    """Read bucket, prefix and client options from a storage URL."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError("S3 storage URL must look like s3://BUCKET[/PREFIX]?endpoint_url=…")
    query = dict(parse_qsl(parts.query))
    unknown = set(query) - {
        "endpoint_url",
        "region",
        "aws_access_key_id",
        "aws_secret_access_key",
        "object_lock_mode",
        "addressing_style",
        "max_attempts",
    }
    if unknown:
        raise ValueError(f"unknown S3 storage URL parameter(s): {', '.join(sorted(unknown))}")
    lock_mode = query.get("object_lock_mode", "COMPLIANCE").upper()
    if lock_mode not in LOCK_MODES:
        raise ValueError(f"object_lock_mode must be COMPLIANCE or GOVERNANCE, not {lock_mode!r}")
    style = query.get("addressing_style")
    if style not in (None, "path", "virtual", "auto"):
        raise ValueError(f"addressing_style must be path, virtual or auto, not {style!r}")
    return S3Location(
        bucket=parts.netloc,
        prefix=parts.path.strip("/"),
        endpoint_url=query.get("endpoint_url") or None,
        region=query.get("region") or None,
        access_key=query.get("aws_access_key_id") or None,
        secret_key=query.get("aws_secret_access_key") or None,
        lock_mode=lock_mode,
        addressing_style=style,
        max_attempts=int(query.get("max_attempts", "3")),
        lock_requested="object_lock_mode" in query,
    )


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def composite_checksum(part_digests: Sequence[bytes]) -> str:
    """S3's multipart SHA-256: the digest of the concatenated binary part digests, base64 (no ``-N``)."""
    return b64(hashlib.sha256(b"".join(part_digests)).digest())


def checksum_matches(reported: str | None, *accepted: str) -> bool:
    """Compare a reported ``ChecksumSHA256``; S3 appends ``-N`` to composite values, moto does not."""
    return reported is not None and reported.split("-", 1)[0] in accepted


@dataclass(frozen=True)
class Part:
    """One uploaded part: its number, the store's ETag, length, and whichever of SHA-256 and MD5 was sent."""

    number: int
    etag: str
    digest: bytes | None
    size: int
    md5: bytes | None = None


class BufferPool:
    """At most ``limit`` part buffers, made on first need and reused; ``get`` waits for a released one."""

    def __init__(self, limit: int, size: int) -> None:
        self._free: queue.Queue[bytearray] = queue.Queue()
        self._limit = limit
        self._made = 0
        self._size = size

    def get(self) -> bytearray:
        if self._free.empty() and self._made < self._limit:
            self._made += 1
            return bytearray(self._size)
        return self._free.get()

    def put(self, buffer: bytearray) -> None:
        self._free.put(buffer)


class ViewReader:
    """A seekable, read-only file over a memoryview, so a part buffer is uploaded without copying it whole."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._pos = 0

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        data = bytes(self._view[self._pos : end])
        self._pos = end
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._view))[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos

    def __len__(self) -> int:
        return len(self._view)


def version_of(resp: dict[str, Any]) -> str | None:
    """The response's VersionId; "null" (an unversioned bucket) counts as none, moto refuses it back."""
    version = resp.get("VersionId")
    return None if version in (None, "", "null") else str(version)


def error_code(exc: ClientError) -> str:
    """The S3 error code of a failed call (``NoSuchKey``, ``404``, ``PreconditionFailed``…)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextlib.contextmanager
def s3_errors(where: str, what: str) -> Iterator[None]:
    """Turn botocore failures into store errors whose messages name the store but no secret."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        message = mask_text(f"{what} on {where} failed: {code or 'error'} (HTTP {status})")
        if code in DIGEST_REFUSALS:
            raise VerificationFailed(f"{message}: the store refused the bytes as they arrived") from exc
        if status >= 500 or status in (401, 403) or code in _UNAVAILABLE_CODES:
            raise StoreUnavailable(message) from exc
        raise StoreError(message) from exc
    except BotoCoreError as exc:  # connection refused, timeouts, no credentials
        raise StoreUnavailable(mask_text(f"{what} on {where} failed: {type(exc).__name__}: {exc}")) from exc
