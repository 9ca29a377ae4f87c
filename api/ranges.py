"""HTTP Range (RFC 9110 §14) for one byte range: what a video player asks for when seeking."""

from __future__ import annotations

import re

from config.errors import BwcError

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiable(BwcError):
    """The range lies wholly outside the object: answer 416 with ``Content-Range: bytes */size``."""

    code = "range_not_satisfiable"
    status = 416


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte to send, or None for the whole object.

    Syntactically invalid and multi-range headers are ignored (RFC 9110 allows serving the whole
    representation instead); a satisfiable range is clipped to the object.
    """
    if not header:
        return None
    m = _RANGE.match(header)
    if m is None:
        return None
    first_text, last_text = m.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last N bytes
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"suffix of {suffix} bytes of a {size}-byte object")
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid: ignore
    if first >= size:
        raise RangeNotSatisfiable(f"range starts at {first}, object has {size} bytes")
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)
