"""The background checkpointer of ``bwc run``: a signed checkpoint at least every interval while events arrive.

Every replica runs one; the PostgreSQL advisory lock in :func:`make_checkpoint` lets one write at a time
and the others then find the latest checkpoint already covering every event. A failed attempt is logged
and retried at the next interval, and one last checkpoint is made on shutdown.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from audit.checkpoints import make_checkpoint
from audit.notes import Signer
from storage.db import derived_transaction

log = logging.getLogger(__name__)


def checkpoint_once(sessions: sessionmaker[Session], signer: Signer) -> int | None:
    """One attempt in its own transaction: the size now signed, or None when it failed (logged)."""
    try:
        with derived_transaction(sessions) as session:  # its commit need not wait for the disk: see checkpoints
            return make_checkpoint(session, signer).size
    except Exception:
        log.exception("audit.checkpoint_failed")
        return None


def run_checkpointer(sessions: sessionmaker[Session], signer: Signer, stop: threading.Event, interval: float) -> None:
    """Checkpoint every ``interval`` seconds until ``stop`` is set, then once more."""
    while not stop.wait(interval):
        checkpoint_once(sessions, signer)
    checkpoint_once(sessions, signer)
