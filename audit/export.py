"""The court export of a case (SPEC §10): what goes into the bag, decided in one transaction.

Decisions:
- The export is an audit event (``case.exported``), and a fresh checkpoint is signed right after it in the same
  transaction, so every event of the case — the export itself included — travels with an inclusion proof against
  the checkpoint in the bag.
- Everything small (``case.json``, event leaves, proofs, checkpoint, keys) is built here, in memory; recordings and
  sidecars are only named here and streamed from the store by :mod:`audit.export_bag`, outside any transaction.
- A case holding a recording that failed fixity is not exported as if intact: refused with ``integrity_failed``.
- An event file holds the event's Merkle leaf bytes exactly (its canonical JSON), so that
  SHA-256(0x00 ‖ file) is the leaf hash the proof starts from.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import notes
from audit.checkpoints import event_proof, make_checkpoint
from audit.holds import case_hold_json
from audit.shapes import actions_json
from audit.signing import load_signer
from config.errors import Conflict, NotFound
from config.settings import Settings
from storage.basics import iso
from storage.events import append_event, canonical_json
from storage.models import Action, AuditEvent, Recording, Sidecar
from storage.shapes import recording_json

EVENT_KIND = "case.exported"
AUDIT_DIR = "data/audit"
CHUNK = 500


@dataclass(frozen=True)
class StoredMember:
    """A payload file streamed from the object store into the bag."""

    path: str  # inside the bag, under data/
    sha256: str
    size: int


@dataclass
class ExportPlan:
    """Everything a bag holds: small files by path, and the stored objects to stream."""

    case_number: str
    root: str  # the bag's folder inside the ZIP
    exported_at: datetime
    files: dict[str, bytes] = field(default_factory=dict)  # payload files made here (under data/)
    objects: list[StoredMember] = field(default_factory=list)


def safe_name(name: str) -> str:
    """A file or folder name any unzip, shell and ``sha256sum -c`` takes as it is."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "file"
    return cleaned[:120]


def plan_export(session: Session, settings: Settings, case_number: str, actor: str, now: datetime) -> ExportPlan:
    """Record the export, sign a checkpoint over it and gather the bag's contents; the caller commits."""
    actions = actions_json(session, [Action.case_number == case_number], now)
    if not actions:
        raise NotFound(f"no action has case number {case_number!r}", code="no_case")
    recording_ids = sorted({rid for a in actions for rid in a["recordings"]})
    recordings = _intact_recordings(session, case_number, recording_ids)
    sidecars = list(
        session.scalars(select(Sidecar).where(Sidecar.recording_id.in_(recording_ids)).order_by(Sidecar.id))
    )
    plan = ExportPlan(case_number, f"bwc-export-{safe_name(case_number)}", now)
    rec_files = {r.id: f"data/recordings/{r.id}-{safe_name(r.original_name)}" for r in recordings}
    side_files = {s.id: f"data/sidecars/{s.id}-{safe_name(s.original_name)}" for s in sidecars}
    plan.objects = [StoredMember(rec_files[r.id], r.sha256, r.size) for r in recordings]
    plan.objects += [StoredMember(side_files[s.id], s.sha256, s.size) for s in sidecars]

    details = {"recordings": recording_ids, "sidecars": [s.id for s in sidecars], "files": len(plan.objects)}
    append_event(session, EVENT_KIND, f"case:{case_number}", details, actor=actor)
    signer = load_signer(settings)
    checkpoint = make_checkpoint(session, signer)
    subjects = _subjects(case_number, actions, recordings, sidecars)
    events = _case_events(session, subjects, checkpoint.size)
    for seq in events:
        proof = event_proof(session, seq)
        plan.files[f"{AUDIT_DIR}/events/{seq:08d}.json"] = proof.leaf
        plan.files[f"{AUDIT_DIR}/events/{seq:08d}.tlog-proof"] = proof.proof.encode()
    plan.files.update(_checkpoint_files(checkpoint.note, signer.verifier))
    case = {
        "case_number": case_number,
        "exported_at": iso(now),
        "exported_by": actor,
        "legal_hold": case_hold_json(session, case_number),
        "checkpoint": {"origin": signer.name, "size": checkpoint.size, "root_hash": checkpoint.root_hash},
        "actions": actions,
        "devices": sorted({d for a in actions for d in a.get("devices", [])}),
        "officers": sorted({o for a in actions for o in a.get("officers", [])}),
        "recordings": [recording_json(r) | {"file": rec_files[r.id]} for r in recordings],
        "sidecars": [_sidecar_json(s, side_files[s.id]) for s in sidecars],
        "events": [f"{AUDIT_DIR}/events/{seq:08d}.json" for seq in events],
    }
    plan.files["data/case.json"] = (canonical_json(case) + "\n").encode()
    return plan


def _intact_recordings(session: Session, case_number: str, ids: list[int]) -> list[Recording]:
    """The case's recordings; refused when one failed fixity (an export must not present it as intact)."""
    recordings = list(session.scalars(select(Recording).where(Recording.id.in_(ids)).order_by(Recording.id)))
    damaged = [r.id for r in recordings if r.fixity_ok is False]
    if damaged:
        raise Conflict(
            f"case {case_number} holds recording(s) {damaged} that failed their fixity check; "
            "an export would not prove them intact",
            code="integrity_failed",
        )
    return recordings


def _subjects(
    case_number: str, actions: list[dict[str, Any]], recordings: list[Recording], sidecars: list[Sidecar]
) -> list[str]:
    subjects = [f"case:{case_number}"] + [f"action:{a['action_id']}" for a in actions]
    for r in recordings:
        subjects += [f"recording:{r.id}", f"recording:{r.sha256}"]
    for s in sidecars:
        subjects += [f"sidecar:{s.id}", f"sidecar:{s.sha256}"]
    return subjects


def _case_events(session: Session, subjects: list[str], size: int) -> list[int]:
    """The seqs of every event about the case, its actions, recordings and sidecars, up to the checkpoint."""
    found: set[int] = set()
    for start in range(0, len(subjects), CHUNK):
        query = select(AuditEvent.seq).where(AuditEvent.subject.in_(subjects[start : start + CHUNK]))
        found.update(session.scalars(query.where(AuditEvent.seq <= size)))
    return sorted(found)


def _checkpoint_files(note: str, verifier: notes.Verifier) -> dict[str, bytes]:
    """The signed checkpoint, and its body and raw signature apart, so that openssl alone can check it."""
    body = notes.open_note(note, verifier)
    signature = _own_signature(note, verifier)
    public = Ed25519PublicKey.from_public_bytes(verifier.public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        f"{AUDIT_DIR}/checkpoint": note.encode(),
        f"{AUDIT_DIR}/checkpoint.body": body.encode(),
        f"{AUDIT_DIR}/checkpoint.sig": signature,
        f"{AUDIT_DIR}/public-key.pem": public,
        f"{AUDIT_DIR}/verifier-key.txt": f"{verifier}\n".encode(),
    }


def _own_signature(note: str, verifier: notes.Verifier) -> bytes:
    """The raw 64-byte Ed25519 signature of ``verifier`` in a signed note (after its 4-byte key id)."""
    for line in note[note.rfind("\n\n") + 2 :].splitlines():
        _dash, name, blob = line.split(" ", 2)
        raw = base64.b64decode(blob)
        if name == verifier.name and raw[:4] == verifier.key_id:
            return raw[4:]
    raise AssertionError("a checkpoint we just signed carries our signature")


def _sidecar_json(sidecar: Sidecar, path: str) -> dict[str, Any]:
    return {
        "id": sidecar.id,
        "recording": sidecar.recording_id,
        "sha256": sidecar.sha256,
        "size": sidecar.size,
        "original_name": sidecar.original_name,
        "received_at": iso(sidecar.received_at),
        "file": path,
    }
