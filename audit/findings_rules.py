"""The rules of the rectification ledger (SPEC §13) as plain functions: kinds, deadlines, transitions.

Decisions the SPEC leaves open, made here:

- Kinds: each coverage reason code (``shortfall``, ``no_footage``, ``uncertified``, ``integrity``, ...) on an
  action whose verdict is ``incomplete``; ``late_upload``, ``fixity_failed`` and ``sequence_hole`` (a hole in
  the device's sequence numbers just before it) on a recording; ``duplicate_conflict`` on a recording whose
  bytes came again under a name claiming another device or start time; ``manual`` for what only a person
  sees in the footage (with a category).
- Deadlines: :data:`DEFAULT_DUE_DAYS`, overridden per kind by ``BWC_FINDING_DUE_DAYS`` (a JSON object).
- An automatic finding closes by itself when its cause goes away, and reopens only when its cause *returns*
  (absent at the last look, present now): closing it by hand while the cause is still there is a person's
  decision that the next recompute respects. A waived finding stays waived whatever its cause does.
- ``overdue``: past ``due_at`` and still ``open`` or ``rectifying``. Closed in time: ``closed_at <= due_at``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from audit.coverage import INCOMPLETE, REASON_CODES
from config.errors import BadInput, Conflict
from storage.basics import iso

OPEN, RECTIFYING, CLOSED, WAIVED = "open", "rectifying", "closed", "waived"
STATUSES = (OPEN, RECTIFYING, CLOSED, WAIVED)
LIVE = frozenset({OPEN, RECTIFYING})

LATE_UPLOAD, FIXITY_FAILED, DUPLICATE_CONFLICT, MANUAL = "late_upload", "fixity_failed", "duplicate_conflict", "manual"
SEQUENCE_HOLE = "sequence_hole"
VERDICT_KINDS = frozenset(REASON_CODES)
RECORDING_KINDS = frozenset({LATE_UPLOAD, FIXITY_FAILED})
KINDS = (*REASON_CODES, LATE_UPLOAD, FIXITY_FAILED, SEQUENCE_HOLE, DUPLICATE_CONFLICT, MANUAL)
SUBJECT_TYPES = ("action", "recording", "device", "officer", "unit")

# Days to rectify. Evidence at risk (a failed fixity check, bytes claiming two cameras) first; a crew
# without a certified officer needs a roster change, which takes longest.
DEFAULT_DUE_DAYS: dict[str, float] = {
    "shortfall": 15,
    "no_footage": 15,
    "too_few_devices": 15,
    "no_audio": 15,
    "no_video": 15,
    "unplayable": 15,
    "uncertified": 30,
    "integrity": 7,
    LATE_UPLOAD: 7,
    FIXITY_FAILED: 7,
    DUPLICATE_CONFLICT: 7,
    SEQUENCE_HOLE: 7,
    MANUAL: 15,
}


class FindingConflict(Conflict):
    """The change does not fit the finding's status (closing a closed finding, waiving a waived one)."""

    code = "finding_status"


def due_days(kind: str, overrides: Mapping[str, float]) -> float:
    """The deadline of a kind in days: the setting's, else the default, else the manual one."""
    return float(overrides.get(kind, DEFAULT_DUE_DAYS.get(kind, DEFAULT_DUE_DAYS[MANUAL])))


def due_at(kind: str, opened_at: datetime, overrides: Mapping[str, float]) -> datetime:
    return opened_at + timedelta(days=due_days(kind, overrides))


def verdict_kinds(verdict: str | None, reasons: Iterable[Mapping[str, Any]]) -> set[str]:
    """The kinds an action's coverage causes: each reason code while the verdict is ``incomplete``."""
    if verdict != INCOMPLETE:
        return set()
    return {str(r["code"]) for r in reasons if r.get("code") in VERDICT_KINDS}


def is_overdue(status: str, due: datetime, now: datetime) -> bool:
    return status in LIVE and due < now


def parse_subject(subject: str) -> tuple[str, str]:
    """``action:A9`` → ("action", "A9"); anything else is bad input."""
    kind, sep, key = subject.strip().partition(":")
    if not sep or kind not in SUBJECT_TYPES or not key:
        raise BadInput(
            f"subject {subject!r} must be TYPE:KEY with TYPE one of {', '.join(SUBJECT_TYPES)}", code="bad_subject"
        )
    return kind, key


def entry(at: datetime, actor: str, change: str, **fields: Any) -> dict[str, Any]:
    """One line of a finding's history."""
    return {"at": iso(at), "actor": actor, "change": change, **{k: v for k, v in fields.items() if v is not None}}


@dataclass(frozen=True)
class Step:
    """What a cause's coming or going does to a finding: the change's name and the new status."""

    change: str
    status: str


def on_cause(status: str, automatic: bool, was_present: bool, present: bool) -> Step | None:
    """The finding's step when its cause is (or is not) there now; None when nothing changes."""
    if present == was_present:
        return None
    if present:
        if status == CLOSED:
            return Step("reopened", OPEN)
        return Step("cause_returned", status)
    if automatic and status in LIVE:
        return Step("closed", CLOSED)
    return Step("cause_gone", status)


def by_hand(status: str, change: str) -> str:
    """The status after a person's ``note``, ``rectifying``, ``close`` or ``waive``; refuses what does not fit."""
    if change == "note":
        return status
    if status not in LIVE:
        raise FindingConflict(f"the finding is {status}: it cannot be {_past(change)}")
    return {"rectifying": RECTIFYING, "close": CLOSED, "waive": WAIVED}[change]


def _past(change: str) -> str:
    return {"rectifying": "put under rectification", "close": "closed", "waive": "waived"}.get(change, change)
