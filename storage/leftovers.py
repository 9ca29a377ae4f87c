"""What crashes leave behind — partial objects, upload spool files, open S3 multipart uploads — removed at
start-up (``bwc init``, ``bwc run``, ``bwc watch``) once idle for ``leftover_minutes``, with one audit event.
Pushed uploads (tus) past their expiry go at the same time.

Only leftovers idle that long are touched, so a live ingest or upload in another process is never disturbed:
its partial file or spool file keeps being written, its multipart upload keeps receiving parts.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings, mask_url
from storage.basics import utcnow
from storage.db import transaction
from storage.events import append_event, event_details
from storage.models import AuditEvent
from storage.objects import Leftover
from storage.runtime import Runtime

log = logging.getLogger(__name__)

EVENT_KIND = "storage.leftovers_removed"
SPOOL_PREFIX = "upload-"  # HTTP uploads spool here for ffprobe (api/upload.py)
MAX_KEYS_IN_EVENT = 1000


def spool_dir(settings: Settings) -> Path:
    """Where uploads are spooled while they are stored and probed."""
    return settings.home / "spool"


@dataclass(frozen=True)
class Cleanup:
    removed: list[Leftover]
    cutoff: datetime

    @property
    def bytes(self) -> int:
        return sum(item.size for item in self.removed)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.removed:
            counts[item.kind] = counts.get(item.kind, 0) + 1
        return counts

    def summary(self) -> str:
        if not self.removed:
            return f"leftovers: none idle since {self.cutoff.isoformat(timespec='seconds')}"
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items()))
        return f"leftovers removed: {kinds} ({self.bytes} bytes)"


def remove_spool_leftovers(folder: Path, before: datetime) -> list[Leftover]:
    """Delete upload spool files last written before ``before`` (a crashed upload's copy for ffprobe)."""
    removed: list[Leftover] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return removed
    for entry in entries:
        if not entry.name.startswith(SPOOL_PREFIX) or not entry.is_file(follow_symlinks=False):
            continue
        st = entry.stat(follow_symlinks=False)
        since = datetime.fromtimestamp(st.st_mtime, UTC)
        if since >= before:
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        removed.append(Leftover("spool", f"spool/{entry.name}", st.st_size, since))
    return removed


def clean_leftovers(rt: Runtime, now: datetime | None = None, actor: str = "system") -> Cleanup:
    """Remove every leftover idle for ``leftover_minutes`` and record what went in one audit event."""
    from ingest.upload_sessions import remove_expired_uploads  # ingest sits above storage: imported late

    now = now or utcnow()
    cutoff = now - timedelta(minutes=rt.settings.leftover_minutes)
    removed = rt.store.remove_leftovers(cutoff) + remove_spool_leftovers(spool_dir(rt.settings), cutoff)
    removed += remove_expired_uploads(rt, now, cutoff)  # resumable uploads never resumed (tus expiration)
    cleanup = Cleanup(removed, cutoff)
    if removed:
        with transaction(rt.sessions) as s:
            append_event(s, EVENT_KIND, f"store:{mask_url(rt.store.url)}", _details(cleanup), actor=actor)
        log.warning("storage.leftovers_removed %s", cleanup.summary())
    return cleanup


def _details(cleanup: Cleanup) -> dict[str, Any]:
    items = cleanup.removed[:MAX_KEYS_IN_EVENT]
    return {
        "cutoff": cleanup.cutoff,
        "counts": cleanup.counts(),
        "bytes": cleanup.bytes,
        "keys": [{"kind": i.kind, "key": i.key, "size": i.size, **_upload(i)} for i in items],
        "keys_omitted": len(cleanup.removed) - len(items),
    }


def _upload(item: Leftover) -> dict[str, str]:
    return {"upload_id": item.upload_id} if item.upload_id else {}


def last_cleanup(session: Session) -> tuple[datetime, dict[str, Any]] | None:
    """When the last clean-up removed something, and what (for ``bwc ingest status``)."""
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.kind == EVENT_KIND).order_by(AuditEvent.seq.desc()).limit(1)
    )
    return (event.at, event_details(event)) if event is not None else None
