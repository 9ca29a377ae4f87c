"""Log lines, tracebacks included, never carry a secret."""

from __future__ import annotations

import io
import logging

from config.logs import MaskingFormatter, mask_handlers


def test_masking_formatter_masks_messages_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("storage.test_logs")
    log.addHandler(handler)
    try:
        mask_handlers({"RAWSECRETVALUE"}, "%(levelname)s %(message)s", [handler])
        assert isinstance(handler.formatter, MaskingFormatter)
        try:
            raise ConnectionError("cannot reach http://admin:pa55w0rd@minio:9000 with RAWSECRETVALUE")
        except ConnectionError:
            log.exception("store down at %s", "postgresql://bwc:hunter2@db/bwc")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert text.startswith("ERROR store down at postgresql://bwc:***@db/bwc\n")
    assert "ConnectionError: cannot reach http://admin:***@minio:9000 with ***" in text
    for secret in ("pa55w0rd", "hunter2", "RAWSECRETVALUE"):
        assert secret not in text
