"""``bwc audit verify``: recompute every leaf and the tree from the database and check every checkpoint.

What is checked, in one pass over the events in ``seq`` order (pages of ``PAGE`` rows, O(log n) memory for
the tree):
- every checkpoint note's signature (by the configured key), its origin, and that its size and root are
  the ones its row says; sizes grow with the row id;
- seq is gap-free from 1 (a deleted or truncated event is the first missing seq);
- each event's content hashes to its recorded leaf hash (an edited, inserted or reordered event is the first
  seq that does not: an event inserted with a correct leaf hash moves the next one, which is named);
- at each checkpoint's size the recomputed root equals the signed one. Since every checkpoint's root is
  the recomputed tree's root at its size, all checkpoints are consistent with each other and with the log.
  Where only a root differs (leaf hashes rewritten too), the first bad seq lies after the last checkpoint
  that still matched: that bound is what is reported. (The leaf hashes are stored once, in the events:
  since migration 0010 the tree keeps no second, signed copy of them to name such an event more closely.
  A second copy cost every bulk append about 5 % and bought a closer name only against an administrator
  who rewrites the hashes but not that copy; the signed roots catch both.);
- the log is not shorter than the latest checkpoint (rows deleted at the end, or ``TRUNCATE``).
The first problem found is reported; the log is read-only here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit import merkle, notes
from audit.notes import Verifier
from audit.tree import raw_rows
from storage.events import PLAIN, canonical_json, iso_utc, leaf_bytes
from storage.models import AuditCheckpoint, AuditEvent
from storage.tree_hashes import HASH_SIZE, leaf_hashes, subtree_roots

PAGE = 16_384  # events a query


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


def verify_log(session: Session, verifier: Verifier, kept: Sequence[str] = ()) -> Report:
    """Check the whole audit log against its checkpoints and any ``kept`` outside (notes saved earlier, which
    the database cannot rewrite); see the module docstring for what is checked."""
    rows = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars().all()
    count = 0
    try:
        checkpoints = _merged(_checked_checkpoints(rows, verifier), _kept(kept, verifier))
        count = _check_events(session, checkpoints)
    except _Bad as bad:
        return Report(count, len(rows) + len(kept), bad.finding)
    return Report(count, len(rows) + len(kept), None)


def _kept(kept: Sequence[str], verifier: Verifier) -> list[notes.Checkpoint]:
    found = []
    for i, note in enumerate(kept, start=1):
        try:
            found.append(notes.open_checkpoint(note, verifier))
        except notes.NoteError as exc:
            raise _Bad(None, f"the kept checkpoint no. {i}: {exc.message}") from None
    return found


def _merged(stored: list[notes.Checkpoint], kept: list[notes.Checkpoint]) -> list[notes.Checkpoint]:
    """All checkpoints by size; two signed roots for one size are a forked log."""
    by_size = {c.size: c for c in stored}
    for c in kept:
        if by_size.setdefault(c.size, c).root != c.root:
            raise _Bad(None, f"two different signed roots for size {c.size}: the log was rewritten after it")
    return [by_size[size] for size in sorted(by_size)]


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
    pending = iter(checkpoints)
    target = next(pending, None)
    matched = 0  # size of the last checkpoint whose root matched
    while target is not None and target.size == 0:  # a checkpoint of the empty log, before any event
        if target.root != merkle.EMPTY_ROOT:
            raise _Bad(None, "the checkpoint of size 0 does not sign the empty tree's root")
        target = next(pending, None)
    stack: list[bytes] = []  # the perfect subtrees so far; their levels are the set bits of the count
    seq = 0
    leaf_of = _LeafHasher(session)
    last = session.scalar(select(func.max(AuditEvent.seq))) or 0
    while seq < last:
        page = _events_page(session, seq)
        if not page:
            raise _Bad(seq + 1, f"event {seq + 1} is missing (events {seq + 1}..{seq + PAGE} are all gone)")
        gap = _first_gap(page, seq)
        rows = page if gap is None else page[:gap]
        hashes = leaf_of.page(rows)
        # the page's leaves join the tree as whole perfect subtrees, cut where a checkpoint falls inside it
        end = seq + len(rows)
        while seq < end:
            stop = target.size if target is not None and target.size <= end else end
            for level, idx in merkle.perfect_nodes(seq, stop):
                first = HASH_SIZE * ((idx << level) - (end - len(rows)))
                _push(stack, idx, subtree_roots(hashes[first : first + (HASH_SIZE << level)], level))
            seq = stop
            while target is not None and target.size == seq:
                if merkle.fold(stack) != target.root:
                    raise _Bad(matched + 1, f"the tree differs from checkpoint {target.size} after seq {matched}")
                matched, target = target.size, next(pending, None)
        if gap is not None:
            raise _Bad(seq + 1, f"event {seq + 1} is missing (the next stored event is {page[gap][0]})")
    if target is not None:
        raise _Bad(seq + 1, f"event {seq + 1} is missing: the log ends at {seq}, checkpoint {target.size} covers more")
    return seq


def _first_gap(page: Sequence[EventRow], after: int) -> int | None:
    """The position of the first row that is not ``after + 1 + position`` (rows come sorted by the key)."""
    if page[0][0] == after + 1 and page[-1][0] == after + len(page):
        return None  # unique, increasing integers from after+1 to after+len: none is missing
    return next((i for i, row in enumerate(page) if row[0] != after + 1 + i), None)


def _push(stack: list[bytes], idx: int, acc: bytes) -> None:
    """Add perfect subtree ``idx`` of its level at the end of the tree: it completes one larger subtree per
    trailing 1 bit of ``idx`` (binary addition of its size to the leaf count, which it is aligned to)."""
    sha256 = hashlib.sha256
    while idx & 1:
        acc = sha256(b"\x01" + stack.pop() + acc).digest()
        idx >>= 1
    stack.append(acc)


# Raw driver rows: at 100,000+ events a second SQLAlchemy's per-row result processing would cost more than
# the hashing. ``at`` is a datetime (psycopg) or SQLAlchemy's SQLite text ``YYYY-MM-DD HH:MM:SS.ffffff``.
EventRow = tuple[int, object, str, str, str, str, str]
EVENTS_SQL = (
    "SELECT seq, at, actor, kind, subject, details, leaf_hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq"
)


def _events_page(session: Session, after: int) -> list[EventRow]:
    # A bounded range, not LIMIT: the primary key answers it even before PostgreSQL has statistics on the table.
    return raw_rows(session, EVENTS_SQL, (after, after + PAGE))  # type: ignore[return-value]


class _LeafHasher:
    """Leaf hashes of stored rows, fast: the canonical leaf text built from the stored canonical details.

    That text is the leaf whenever the details round-trip through JSON (all but non-string keys) and the row
    holds what the service wrote; when it does not match, the row is read back through the model and its
    leaf rebuilt the slow, defining way (``leaf_bytes``) before it is called bad.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._quoted: dict[str, str] = {}
        self._at: tuple[object, str] = (None, "")

    def _q(self, value: str) -> str:
        q = f'"{value}"' if PLAIN.fullmatch(value) else canonical_json(value)
        if len(self._quoted) < 10_000:  # kinds and actors repeat; subjects mostly do not
            self._quoted[value] = q
        return q

    def _iso(self, at: object) -> str:
        if at == self._at[0]:  # bulk appends share one time
            return self._at[1]
        if isinstance(at, str) and len(at) == 26 and at[10] == " ":
            text = f"{at[:10]}T{at[11:]}Z"
        elif isinstance(at, datetime) and at.tzinfo is not None:
            text = iso_utc(at)
        else:
            text = "?"  # not what the service writes: the slow path decides
        self._at = (at, text)
        return text

    def page(self, rows: Sequence[EventRow]) -> bytes:
        """The checked leaf hashes of a page of rows, joined (hashed in one call of :mod:`storage.tree_hashes`).
        Compared in bulk: one row at a time only when something differs."""
        get, q, iso = self._quoted.get, self._q, self._iso
        hashes = leaf_hashes(
            [
                (
                    f'{{"actor":{get(actor) or q(actor)},"at":"{iso(at)}","details":{details},'
                    f'"kind":{get(kind) or q(kind)},"seq":{seq},"subject":{q(subject)}}}'
                ).encode()
                for seq, at, actor, kind, subject, details, _ in rows
            ]
        )
        try:
            recorded = "".join([row[6] for row in rows])
        except TypeError:  # a NULL leaf hash
            recorded = ""
        if hashes.hex() == recorded:
            return hashes
        return b"".join(self.check(row, hashes[HASH_SIZE * i : HASH_SIZE * (i + 1)]) for i, row in enumerate(rows))

    def check(self, row: EventRow, fast: bytes) -> bytes:
        """The row's leaf hash, or :class:`_Bad` when neither its fast nor its defining form matches."""
        if fast.hex() == row[6]:
            return fast
        return self._slow(row[0], row[6])

    def _slow(self, seq: int, recorded_hex: str) -> bytes:
        ev = self._session.get(AuditEvent, seq)
        assert ev is not None
        try:
            slow = merkle.leaf_hash(leaf_bytes(ev.seq, ev.at, ev.actor, ev.kind, ev.subject, ev.details))
        except (ValueError, TypeError):
            raise _Bad(seq, f"event {seq} cannot be read back as an event (edited)") from None
        if slow.hex() != recorded_hex:
            raise _Bad(seq, f"event {seq} does not hash to its recorded leaf hash (edited, inserted or moved)")
        return slow
