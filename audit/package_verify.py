"""``bwc verify-package``: check an export offline, with no database and no settings (SPEC §10).

Every member is read once (streamed) and hashed; the bag's manifests, its Payload-Oxum, the checkpoint's
signature, every event's inclusion proof and the digests ``case.json`` gives are checked against what was read.
Each finding names the member it is about. The key is the bag's own unless one is given (``--key``): a bag
re-signed by someone else is consistent with itself, so an expert compares the key with the published one.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit import merkle, notes
from audit.export import AUDIT_DIR
from audit.export_bag import BAGIT_TXT
from config.errors import BadInput

TAG_MANIFEST, MANIFEST = "tagmanifest-sha256.txt", "manifest-sha256.txt"
KEEP_LIMIT = 16 * 1024 * 1024  # members kept in memory for the checks below (tags, case.json, proofs) are small


@dataclass
class PackageReport:
    """What was checked and every problem, each as (member, what is wrong)."""

    files: int = 0
    events: int = 0
    checkpoint: dict[str, Any] | None = None
    findings: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def bad(self, member: str, problem: str) -> None:
        self.findings.append((member, problem))

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "files": self.files,
            "events": self.events,
            "checkpoint": self.checkpoint,
            "findings": [{"member": m, "problem": p} for m, p in self.findings],
        }


@dataclass
class _Bag:
    digests: dict[str, str] = field(default_factory=dict)  # path inside the bag -> sha256 of what was read
    sizes: dict[str, int] = field(default_factory=dict)
    small: dict[str, bytes] = field(default_factory=dict)


def verify_package(path: Path, key: str | None = None) -> PackageReport:
    """Check the export at ``path``; ``key`` is a signed-note verifier key to trust instead of the bag's own."""
    report = PackageReport()
    bag = _read(path, report)
    if bag.small.get("bagit.txt") != BAGIT_TXT:
        report.bad("bagit.txt", "missing or not a BagIt 1.0 declaration")
    tags = [p for p in bag.digests if "/" not in p and p != TAG_MANIFEST]
    _check_manifest(bag, TAG_MANIFEST, tags, report)
    _check_manifest(bag, MANIFEST, [p for p in bag.digests if p.startswith("data/")], report)
    _check_oxum(bag, report)
    verifier = _verifier(bag, key, report)
    if verifier is not None:
        _check_checkpoint(bag, verifier, report)
        _check_events(bag, verifier, report)
    _check_case(bag, report)
    report.files = len(bag.digests)
    return report


def _read(path: Path, report: PackageReport) -> _Bag:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadInput(f"{path.name} is not a readable ZIP file: {exc}", code="not_a_package") from None
    bag = _Bag()
    with zf:
        roots = {n.split("/", 1)[0] for n in zf.namelist() if n.count("/") == 1 and n.endswith("/bagit.txt")}
        if len(roots) != 1:
            raise BadInput(f"{path.name} does not hold exactly one bag folder with a bagit.txt", code="not_a_package")
        root = roots.pop()
        for info in zf.infolist():
            name = info.filename
            if info.is_dir():
                continue
            if not name.startswith(root + "/"):
                report.bad(name, "outside the bag folder")
                continue
            rel = name[len(root) + 1 :]
            _hash_member(zf, info, rel, bag, report)
    return bag


def _hash_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, rel: str, bag: _Bag, report: PackageReport) -> None:
    hasher, size = hashlib.sha256(), 0
    keep = info.file_size <= KEEP_LIMIT and not rel.startswith(("data/recordings/", "data/sidecars/"))
    kept = bytearray()
    try:
        with zf.open(info) as member:
            while chunk := member.read(1024 * 1024):
                hasher.update(chunk)
                size += len(chunk)
                if keep:
                    kept += chunk
    except (zipfile.BadZipFile, OSError, EOFError) as exc:  # zipfile's CRC-32 check, a truncated member
        report.bad(rel, f"damaged inside the ZIP ({exc})")
        return
    bag.digests[rel], bag.sizes[rel] = hasher.hexdigest(), size
    if keep:
        bag.small[rel] = bytes(kept)


def _check_manifest(bag: _Bag, manifest: str, expected: list[str], report: PackageReport) -> None:
    """Every listed file is there with that digest, and every file that should be listed is."""
    data = bag.small.get(manifest)
    if data is None:
        report.bad(manifest, "missing")
        return
    listed: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not name:
            report.bad(manifest, f"line {number} is not '<sha256>  <path>'")
            continue
        listed[name] = digest
    for name, digest in listed.items():
        actual = bag.digests.get(name)
        if actual is None:
            report.bad(name, f"listed in {manifest} but missing (or {manifest} was altered)")
        elif actual != digest:
            report.bad(name, f"SHA-256 differs from {manifest}: the file or {manifest} was altered")
    for name in expected:
        if name not in listed:
            report.bad(name, f"not listed in {manifest}")


def _check_oxum(bag: _Bag, report: PackageReport) -> None:
    info = bag.small.get("bag-info.txt", b"").decode("utf-8", "replace")
    oxum = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("Payload-Oxum:")), "")
    payload = [p for p in bag.sizes if p.startswith("data/")]
    if oxum != f"{sum(bag.sizes[p] for p in payload)}.{len(payload)}":
        report.bad("bag-info.txt", f"Payload-Oxum {oxum!r} does not match the payload")


def _verifier(bag: _Bag, key: str | None, report: PackageReport) -> notes.Verifier | None:
    where = f"{AUDIT_DIR}/verifier-key.txt"
    try:
        verifier = notes.parse_verifier(key if key is not None else bag.small.get(where, b"").decode())
    except (notes.NoteError, UnicodeDecodeError) as exc:
        report.bad("--key" if key is not None else where, f"unreadable verifier key: {exc}")
        return None
    pem = bag.small.get(f"{AUDIT_DIR}/public-key.pem", b"")
    try:
        public = serialization.load_pem_public_key(pem)
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    except (ValueError, TypeError):
        raw = b""
    if raw != verifier.public_key:
        report.bad(f"{AUDIT_DIR}/public-key.pem", "not the key of verifier-key.txt (or --key)")
    return verifier


def _check_checkpoint(bag: _Bag, verifier: notes.Verifier, report: PackageReport) -> None:
    note = bag.small.get(f"{AUDIT_DIR}/checkpoint", b"").decode("utf-8", "replace")
    try:
        checkpoint = notes.open_checkpoint(note, verifier)
    except notes.NoteError as exc:
        report.bad(f"{AUDIT_DIR}/checkpoint", f"signature or form: {exc.message}")
        return
    report.checkpoint = {"origin": checkpoint.origin, "size": checkpoint.size, "root_hash": checkpoint.root.hex()}
    body = bag.small.get(f"{AUDIT_DIR}/checkpoint.body", b"")
    if body != checkpoint.text().encode():
        report.bad(f"{AUDIT_DIR}/checkpoint.body", "not the signed text of the checkpoint")
    try:
        Ed25519PublicKey.from_public_bytes(verifier.public_key).verify(
            bag.small.get(f"{AUDIT_DIR}/checkpoint.sig", b""), checkpoint.text().encode()
        )
    except InvalidSignature:
        report.bad(f"{AUDIT_DIR}/checkpoint.sig", "not a valid signature of the checkpoint")


def _check_events(bag: _Bag, verifier: notes.Verifier, report: PackageReport) -> None:
    checkpoint_note = bag.small.get(f"{AUDIT_DIR}/checkpoint", b"").decode("utf-8", "replace")
    for name in sorted(p for p in bag.digests if p.startswith(f"{AUDIT_DIR}/events/") and p.endswith(".json")):
        proof_name = name[: -len(".json")] + ".tlog-proof"
        leaf, proof = bag.small.get(name), bag.small.get(proof_name)
        if leaf is None or proof is None:
            report.bad(proof_name if leaf is not None else name, "missing (an event needs its leaf and its proof)")
            continue
        try:
            text = proof.decode()
            notes.verify_proof(text, leaf, verifier)
        except (notes.NoteError, merkle.MerkleError, UnicodeDecodeError) as exc:
            report.bad(f"{name} / {proof_name}", f"inclusion proof fails: {exc}")
            continue
        if notes.parse_proof(text)[2] != checkpoint_note:
            report.bad(proof_name, "proves against another checkpoint than the bag's")
            continue
        report.events += 1


def _check_case(bag: _Bag, report: PackageReport) -> None:
    try:
        case = json.loads(bag.small.get("data/case.json", b""))
        files = [(f["file"], f["sha256"]) for f in case.get("recordings", []) + case.get("sidecars", [])]
    except (ValueError, TypeError, KeyError, AttributeError):
        report.bad("data/case.json", "not the JSON of an export")
        return
    for name, digest in files:
        if name in bag.digests and bag.digests[name] != digest:
            report.bad(name, "its SHA-256 is not the one data/case.json records")
