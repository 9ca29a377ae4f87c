"""What happened to one file handed to the pipeline, for the watcher, the CLI and tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Status = Literal["stored", "duplicate", "skipped_seen", "waiting", "ignored", "not_stable", "failed"]
# Statuses after which the file needs no further attention from the watcher.
FINAL_STATUSES: frozenset[str] = frozenset({"stored", "duplicate", "skipped_seen", "ignored"})


@dataclass(frozen=True)
class IngestOutcome:
    """One file's result: ``stored`` (new recording or sidecar), ``duplicate`` (same bytes seen again),
    ``skipped_seen`` (this very file was handled before), ``waiting`` (a sidecar whose media is not in
    yet), ``ignored`` (not media nor sidecar), ``not_stable`` (still being written) or ``failed``."""

    status: Status
    path: str
    station: str
    kind: str = "media"  # media | sidecar | other
    recording_id: int | None = None
    sidecar_id: int | None = None
    sha256: str | None = None
    reason: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    after_ingest: str | None = None  # kept | moved | deleted, when done in this call
    sidecars: tuple[IngestOutcome, ...] = ()  # the sidecars stored along with a media file

    @property
    def failed(self) -> bool:
        return self.status == "failed"

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES
