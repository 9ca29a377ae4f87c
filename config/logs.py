"""Logging for the service's own packages: they are top-level packages, so no single ``bwc`` logger parents them."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from config.settings import mask_text

PACKAGES = ("api", "audit", "config", "ingest", "storage")


def set_level(level: str) -> None:
    """Set the level of every logger of the project (each module logs under its own ``__name__``)."""
    for name in PACKAGES:
        logging.getLogger(name).setLevel(level.upper())


class MaskingFormatter(logging.Formatter):
    """A formatter whose every line, traceback included, has URL passwords and the known secrets masked."""

    def __init__(self, fmt: str | None, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = set(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record), self.secrets)


def mask_handlers(
    secrets: Iterable[str], fmt: str | None = None, handlers: Iterable[logging.Handler] | None = None
) -> None:
    """Give every handler (default: the root logger's) a masking formatter: a log line never carries a secret."""
    known = set(secrets)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        handler.setFormatter(MaskingFormatter(fmt or getattr(handler.formatter, "_fmt", None), known))
