"""Logging for the service's own packages: they are top-level packages, so no single ``bwc`` logger parents them."""

from __future__ import annotations

import logging

PACKAGES = ("api", "audit", "config", "ingest", "storage")


def set_level(level: str) -> None:
    """Set the level of every logger of the project (each module logs under its own ``__name__``)."""
    for name in PACKAGES:
        logging.getLogger(name).setLevel(level.upper())
