"""What the upload routes share: the file name a station sends, back-pressure, and the calls into ingest.

Both ways a station pushes — one-shot ``POST /recordings`` and resumable ``/uploads`` (tus) — end in the one
ingest path (:func:`ingest.service.receive`); nothing here stores or commits on its own.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO, cast
from urllib.parse import unquote

from api.body import BodyReader
from config.errors import BadInput
from ingest.naming import classify
from ingest.outcome import IngestOutcome
from ingest.service import Claim, receive
from ingest.upload_sessions import BUSY_RETRY_SECONDS, Busy
from storage.runtime import Runtime

SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
DEVICE = re.compile(r"^[^/\\\x00-\x1f]{1,128}$")
MAX_NAME = 1024


def upload_relpath(header: str) -> str:
    """The station-relative path a station names (percent-encoded UTF-8 allowed), or BadInput.

    Media files and sidecars are accepted (SPEC §4: a sidecar is stored and linked to its recording).
    """
    name = unquote(header.strip())
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        name = name.encode("latin-1").decode("utf-8")  # raw UTF-8 bytes arrive as latin-1 text
    name = name.replace("\\", "/").lstrip("/")
    parts = PurePosixPath(name).parts
    if not parts or len(name) > MAX_NAME or any(p in ("..", ".") for p in parts) or any(ord(c) < 32 for c in name):
        raise BadInput(f"file name {header[:200]!r} is not a file name", code="bad_filename")
    kind = classify(parts[-1])
    if kind not in ("media", "sidecar"):
        raise BadInput(f"file name {parts[-1]!r} is not a media file nor a sidecar ({kind})", code="not_media")
    return "/".join(parts)


def check_sha256(value: str) -> str:
    if not SHA256_HEX.match(value):
        raise BadInput("the SHA-256 must be 64 hex digits", code="bad_sha256")
    return value.lower()


def check_device(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    if not DEVICE.match(value.strip()):
        raise BadInput("the device id must be 1–128 characters without slashes or control characters")
    return value.strip()


def parse_metadata(header: str | None) -> dict[str, str]:
    """tus ``Upload-Metadata``: comma-separated ``key base64value`` pairs (values are UTF-8 here)."""
    found: dict[str, str] = {}
    for pair in (header or "").split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        try:
            found[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadInput(f"Upload-Metadata {key!r} is not base64 UTF-8", code="bad_metadata") from None
    return found


class UploadSlots:
    """How many uploads this process takes at once; one more is told to come back (503, ``Retry-After``).

    Only a count: whether one upload is already receiving bytes elsewhere is decided by the kernel's lock on
    its part file (:func:`ingest.upload_sessions.hold`), which holds across processes too.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._active = 0
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        with self._lock:
            if self._active >= self.limit:
                raise Busy(
                    f"{self._active} uploads are running (the limit is {self.limit}); try again shortly",
                    retry_after=BUSY_RETRY_SECONDS,
                    code="too_many_uploads",
                )
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1


def receive_upload(rt: Runtime, body: BodyReader, claim: Claim) -> IngestOutcome:
    """One-shot upload: the body streams into the store (spooled for ffprobe on the way) and is committed."""
    return receive(rt, cast(BinaryIO, body), claim)


def receive_part_file(rt: Runtime, part: Path, claim: Claim, received_sha256: str | None = None) -> IngestOutcome:
    """A finished resumable upload: its part file, never written again, goes through the same ingest path (a
    local store on the same file system takes the file itself instead of a copy; with ``received_sha256``, the
    digest hashed on arrival, it does not read it again)."""
    return receive(rt, part, claim, received_sha256=received_sha256)
