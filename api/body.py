"""A request body as a blocking file object, for the sync object store running in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import BinaryIO

import anyio.from_thread


class BodyReader:
    """Reads an ASGI body stream from a thread started by ``anyio.to_thread.run_sync``, one message at a
    time, so memory holds at most one network chunk beyond the store's own buffer; ``tee`` gets a copy."""

    def __init__(self, stream: AsyncIterator[bytes], tee: BinaryIO | None = None) -> None:
        self._stream = stream
        self._tee = tee
        self._pending = memoryview(b"")
        self._eof = False
        self.bytes_read = 0

    def tee(self, sink: BinaryIO | None) -> None:
        """Copy every chunk read from now on to ``sink`` as well."""
        self._tee = sink

    async def _next_chunk(self) -> bytes | None:
        while True:
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                return None
            if chunk:
                return chunk

    def _fill(self) -> bool:
        if not self._pending and not self._eof:
            chunk = anyio.from_thread.run(self._next_chunk)
            if chunk is None:
                self._eof = True
            else:
                if self._tee is not None:
                    self._tee.write(chunk)
                self._pending = memoryview(chunk)
        return bool(self._pending)

    def readinto(self, buffer: bytearray | memoryview) -> int:
        if not self._fill():
            return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        self.bytes_read += n
        return n

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            parts = []
            while self._fill():
                parts.append(bytes(self._pending))
                self.bytes_read += len(self._pending)
                self._pending = memoryview(b"")
            return b"".join(parts)
        if not self._fill():
            return b""
        data = bytes(self._pending[:size])
        self._pending = self._pending[len(data) :]
        self.bytes_read += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False
