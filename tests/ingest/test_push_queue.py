"""The station's queue and its reading of ``Retry-After``: pure parts of pushing, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from ingest.push_queue import PushQueue, queue_path
from ingest.station import queue_backoff, retry_after_seconds


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("7", 1.0) == 7.0
    assert retry_after_seconds(None, 3.0) == 3.0
    assert retry_after_seconds("soon", 3.0) == 3.0  # unreadable: our own back-off
    assert retry_after_seconds("-5", 3.0) == 0.0
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert retry_after_seconds(in_a_minute, 1.0) == pytest.approx(60, abs=2)


def test_the_queue_survives_reopening_and_a_changed_file_starts_a_new_upload(tmp_path: Path) -> None:
    queue = PushQueue(queue_path(tmp_path))
    queue.enqueue("DEV/a.mp4", "media", 10, 111, "aa" * 32)
    queue.update("DEV/a.mp4", upload_url="/api/v1/uploads/x", offset=4)
    queue.failed("DEV/a.mp4", "network: refused", next_attempt_at=2e9, now=1e9)

    again = PushQueue(queue_path(tmp_path)).get("DEV/a.mp4")  # as after a restart
    assert again is not None and again.upload_url == "/api/v1/uploads/x" and again.offset == 4
    assert again.attempts == 1 and again.last_error == "network: refused"
    assert queue_backoff(queue) == [("DEV/a.mp4", datetime.fromtimestamp(2e9, UTC))]

    changed = queue.enqueue("DEV/a.mp4", "media", 12, 222, "bb" * 32)
    assert changed.upload_url is None and changed.offset == 0 and changed.sha256 == "bb" * 32
    assert changed.state == "queued"
    queue.update("DEV/a.mp4", state="done")
    assert queue_backoff(queue) == []  # done files are never retried
