"""``bwc audit verify``: recompute every leaf and the tree from the database and check every checkpoint.

What is checked, in one pass over the events in ``seq`` order (pages of ``PAGE`` rows, O(log n) memory for
the tree):
- every checkpoint note's signature (by the configured key), its origin, and that its size and root are
  the ones its row says; sizes grow with the row id;
- seq is gap-free from 1 (a deleted or truncated event is the first missing seq);
- each event's content hashes to its recorded leaf hash and, below the latest checkpoint, to the leaf the
  stored tree signed (an edited, inserted or reordered event is the first seq that does not);
- at each checkpoint's size the recomputed root equals the signed one. Since every checkpoint's root is
  the recomputed tree's root at its size, all checkpoints are consistent with each other and with the log.
  Where only a root differs (leaf hashes and tree rewritten too), the first bad seq lies after the last
  checkpoint that still matched: that bound is what is reported;
- the log is not shorter than the latest checkpoint (rows deleted at the end, or ``TRUNCATE``).
The first problem found is reported; the log is read-only here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import merkle, notes
from audit.notes import Verifier
from storage.events import canonical_json, iso_utc, leaf_bytes
from storage.models import AuditCheckpoint, AuditEvent, AuditTreeNode

PAGE = 20_000


@dataclass(frozen=True)
class Finding:
    """The first problem: the first bad seq (None when only a checkpoint row is wrong) and what is wrong."""

    seq: int | None
    message: str


@dataclass(frozen=True)
class Report:
    events: int
    checkpoints: int
    finding: Finding | None

    @property
    def ok(self) -> bool:
        return self.finding is None

    def as_json(self) -> dict[str, object]:
        bad = self.finding
        return {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "first_bad_seq": bad.seq if bad else None,
            "problem": bad.message if bad else None,
        }


class _Bad(Exception):
    def __init__(self, seq: int | None, message: str) -> None:
        self.finding = Finding(seq, message)


def verify_log(session: Session, verifier: Verifier) -> Report:
    """Check the whole audit log against its checkpoints; see the module docstring for what is checked."""
    rows = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars().all()
    count = 0
    try:
        checkpoints = _checked_checkpoints(rows, verifier)
        count = _check_events(session, checkpoints)
    except _Bad as bad:
        return Report(count, len(rows), bad.finding)
    return Report(count, len(rows), None)


def _checked_checkpoints(rows: Sequence[AuditCheckpoint], verifier: Verifier) -> list[notes.Checkpoint]:
    checkpoints: list[notes.Checkpoint] = []
    for row in rows:
        try:
            checkpoint = notes.open_checkpoint(row.note, verifier)
        except notes.NoteError as exc:
            raise _Bad(None, f"checkpoint #{row.id} (size {row.size}): {exc.message}") from None
        if checkpoint.size != row.size or checkpoint.root.hex() != row.root_hash:
            raise _Bad(None, f"checkpoint #{row.id}: its row says size {row.size}, its signed note another")
        if checkpoints and checkpoint.size <= checkpoints[-1].size:
            raise _Bad(None, f"checkpoint #{row.id} (size {row.size}) is not larger than the one before it")
        checkpoints.append(checkpoint)
    return checkpoints


def _check_events(session: Session, checkpoints: list[notes.Checkpoint]) -> int:
    tree_size = checkpoints[-1].size if checkpoints else 0
    pending = iter(checkpoints)
    target = next(pending, None)
    matched = 0  # size of the last checkpoint whose root matched
    stack: list[tuple[int, bytes]] = []
    seq = 0
    leaf_of = _LeafHasher()
    while True:
        page = _events_page(session, seq)
        signed = _tree_leaves(session, seq, seq + len(page)) if page and seq < tree_size else {}
        for row in page:
            seq += 1
            if row[0] != seq:
                raise _Bad(seq, f"event {seq} is missing (the next stored event is {row[0]})")
            h = leaf_of(row, signed.get(seq - 1))
            level, acc = 0, h
            while stack and stack[-1][0] == level:
                acc = merkle.node_hash(stack.pop()[1], acc)
                level += 1
            stack.append((level, acc))
            while target is not None and target.size == seq:
                if merkle.fold([x for _, x in stack]) != target.root:
                    raise _Bad(matched + 1, f"the tree differs from checkpoint {target.size} after seq {matched}")
                matched, target = target.size, next(pending, None)
        if len(page) < PAGE:
            break
    if target is not None:
        if target.size == 0 and seq == 0:
            return seq
        raise _Bad(seq + 1, f"event {seq + 1} is missing: the log ends at {seq}, checkpoint {target.size} covers more")
    return seq


EventRow = tuple[int, datetime, str, str, str, str, str]


def _events_page(session: Session, after: int) -> Sequence[EventRow]:
    e = AuditEvent
    stmt = select(e.seq, e.at, e.actor, e.kind, e.subject, e.details, e.leaf_hash).where(e.seq > after)
    return session.execute(stmt.order_by(e.seq).limit(PAGE)).tuples().all()


def _tree_leaves(session: Session, first: int, end: int) -> dict[int, bytes]:
    rows = session.execute(
        select(AuditTreeNode.idx, AuditTreeNode.node_hash).where(
            AuditTreeNode.level == 0, AuditTreeNode.idx >= first, AuditTreeNode.idx < end
        )
    )
    return {idx: bytes(h) for idx, h in rows}


class _LeafHasher:
    """Leaf hashes of stored rows, fast: the canonical leaf text built from the stored canonical details.

    That text is the leaf whenever the details round-trip through JSON (all but non-string keys); when it
    does not match, the leaf is rebuilt the slow, defining way (``leaf_bytes``) before calling the row bad.
    """

    def __init__(self) -> None:
        self._quoted: dict[str, str] = {}

    def _q(self, value: str) -> str:
        q = self._quoted.get(value)
        if q is None:
            q = canonical_json(value)
            if len(self._quoted) < 10_000:
                self._quoted[value] = q
        return q

    def __call__(self, row: EventRow, signed: bytes | None) -> bytes:
        seq, at, actor, kind, subject, details, recorded_hex = row
        recorded = bytes.fromhex(recorded_hex) if len(recorded_hex) == 64 else b""
        q: Callable[[str], str] = self._q
        fast = (
            f'{{"actor":{q(actor)},"at":"{iso_utc(at)}","details":{details},'
            f'"kind":{q(kind)},"seq":{seq},"subject":{canonical_json(subject)}}}'
        )
        h = hashlib.sha256(b"\x00" + fast.encode()).digest()
        if h == recorded and signed in (None, h):
            return h
        try:
            slow = merkle.leaf_hash(leaf_bytes(seq, at, actor, kind, subject, details))
        except ValueError:
            raise _Bad(seq, f"event {seq} has details that are not JSON (edited)") from None
        if slow != recorded:
            raise _Bad(seq, f"event {seq} does not hash to its recorded leaf hash (edited, inserted or moved)")
        if signed is not None and slow != signed:
            raise _Bad(seq, f"event {seq} is not the leaf the checkpointed tree holds (rewritten with its hash)")
        return slow
