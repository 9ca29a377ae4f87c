"""Download headers: file names that keep Chinese unit names (RFC 6266 ``filename*``) with an ASCII fallback."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from fastapi import Response

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def content_disposition(name: str, kind: str = "attachment") -> str:
    """``attachment; filename="ascii"; filename*=UTF-8''percent-encoded`` for any file name."""
    clean = "".join(ch for ch in name if ch.isprintable() and ch not in '"\\/')
    folded = unicodedata.normalize("NFKD", clean).encode("ascii", "ignore").decode("ascii")
    fallback = _UNSAFE.sub("_", folded).strip("_") or "download"
    if "." in clean and "." not in fallback:
        fallback += "." + clean.rsplit(".", 1)[1].encode("ascii", "ignore").decode("ascii")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(clean, safe='')}"


def attachment(body: bytes, media: str, disposition: str) -> Response:
    """A file to save, not to show: its bytes, media type and ``Content-Disposition``."""
    return Response(body, media_type=media, headers={"Content-Disposition": disposition})
