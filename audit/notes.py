"""C2SP signed notes, checkpoints and proofs: the texts that leave the service (SPEC §9).

Formats, exactly as the specifications give them, so that existing transparency-log tools read them:
- signed note (c2sp.org/signed-note): the text (ending in a newline), a blank line, then signature lines
  ``— <key name> base64(key id ‖ signature)``; Ed25519 signatures (type 0x01) over the text, key id
  SHA-256(name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4]. The verifier key is
  ``<name>+<8 hex key id>+<base64(0x01 ‖ public key)>``, as Go's ``golang.org/x/mod/sumdb/note`` prints it.
- checkpoint (c2sp.org/tlog-checkpoint): the text is ``<origin>\\n<size>\\n<base64 root>\\n``; we sign with
  the key whose name is the origin.
- proof (c2sp.org/tlog-proof): ``c2sp.org/tlog-proof@v1``, ``index N``, one base64 hash per line from the
  leaf's sibling up, an empty line, then the checkpoint verbatim. No ``extra`` line is written; one is
  accepted and ignored (it is not authenticated).
Signatures by unknown keys are ignored, as the signed-note rules require; a note needs one good signature
from the key we were given, and a bad one from that key rejects it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import merkle
from config.errors import BwcError

ED25519 = 0x01
EM_DASH = "\u2014"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
MAX_SIGNATURES = 16
_NAME = re.compile(r"^[^\s+]+$")


class NoteError(BwcError):
    """A note, checkpoint, proof or key text that is malformed or whose signature does not verify."""

    code = "note_invalid"
    status = 422


@dataclass(frozen=True)
class Verifier:
    """A named Ed25519 public key, as a signed-note verifier."""

    name: str
    public_key: bytes  # 32 bytes, RFC 8032 encoding

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public_key)

    def __str__(self) -> str:
        """The verifier key text ``<name>+<hex key id>+<base64(0x01 ‖ key)>``."""
        material = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def find(self, name: str, key_id: bytes) -> Verifier | None:
        """The key that made a signature line naming ``name`` and ``key_id``, if it is this one."""
        return self if name == self.name and key_id == self.key_id else None


@dataclass(frozen=True)
class Keyring(Verifier):
    """The current key plus the retired ones that signed older checkpoints (after a key rotation).

    It is a :class:`Verifier` for the current key, so everything that checks a note takes it as it is; a
    signature by a retired key of the same name also checks out, since the log's history stays what it was.
    """

    previous: tuple[Verifier, ...] = ()

    def find(self, name: str, key_id: bytes) -> Verifier | None:
        for candidate in (Verifier(self.name, self.public_key), *self.previous):
            if candidate.find(name, key_id) is not None:
                return candidate
        return None


@dataclass(frozen=True)
class Signer:
    """A named Ed25519 private key that signs notes."""

    name: str
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return Verifier(self.name, raw)


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the origin (log identity), the tree size and its root hash."""

    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        """The checkpoint's note text, the bytes that are signed."""
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"


def check_name(name: str) -> str:
    """A key name (and so an origin) must be non-empty, without spaces or ``+``."""
    if not _NAME.match(name):
        raise NoteError(f"key name {name!r} must be non-empty and hold no spaces or '+'")
    return name


def key_id(name: str, public_key: bytes) -> bytes:
    """The signed-note key id: SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def parse_verifier(text: str) -> Verifier:
    """Read a verifier key ``<name>+<hex id>+<base64>``, checking that its id matches its key."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3:
        raise NoteError("a verifier key is <name>+<8 hex digits>+<base64 key>")
    name, hex_id, material = parts
    raw = _b64(material, "verifier key")
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are supported")
    verifier = Verifier(check_name(name), raw[1:])
    if verifier.key_id.hex() != hex_id.lower() or len(hex_id) != 8:
        raise NoteError(f"verifier key id {hex_id} does not match its key")
    return verifier


def parse_signer(text: str) -> Signer:
    """Read a Go-style signer key ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>``."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("a signer key is PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")
    raw = _b64(parts[4], "signer key")
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("only Ed25519 signer keys (type 0x01, 32 bytes) are supported")
    signer = Signer(check_name(parts[2]), Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.key_id.hex() != parts[3].lower():
        raise NoteError("signer key id does not match its key")
    return signer


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: text, a blank line, one signature line."""
    _check_text(text)
    signature = signer.private_key.sign(text.encode())
    blob = base64.b64encode(signer.verifier.key_id + signature).decode()
    return f"{text}\n{EM_DASH} {check_name(signer.name)} {blob}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text once a signature by ``verifier`` checks out; :class:`NoteError` otherwise."""
    cut = note.rfind("\n\n")
    if cut < 0 or not note.endswith("\n"):
        raise NoteError("not a signed note: no blank line before the signatures, or no final newline")
    text, lines = note[: cut + 1], note[cut + 2 :].splitlines()
    _check_text(text)
    if not lines or len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a signed note needs 1 to {MAX_SIGNATURES} signature lines")
    verified = False
    for line in lines:
        prefix, _, rest = line.partition(" ")
        name, _, blob = rest.partition(" ")
        if prefix != EM_DASH or not name or not blob or " " in blob:
            raise NoteError(f"malformed signature line {line!r}")
        raw = _b64(blob, "signature")
        signed_by = verifier.find(name, raw[:4])
        if signed_by is None:
            continue  # someone else's signature (a witness, say): ignored, as the rules require
        try:
            Ed25519PublicKey.from_public_bytes(signed_by.public_key).verify(raw[4:], text.encode())
        except InvalidSignature:
            raise NoteError(f"the signature by {signed_by.name}+{signed_by.key_id.hex()} does not verify") from None
        verified = True
    if not verified:
        raise NoteError(f"no signature by {verifier.name}+{verifier.key_id.hex()} on the note")
    return text


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note; the signing key is named for the origin."""
    if signer.name != checkpoint.origin:
        raise NoteError(f"the checkpoint of {checkpoint.origin!r} must be signed by a key of that name")
    return sign_note(checkpoint.text(), signer)


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Read the first three lines of a checkpoint body (extension lines after them are allowed)."""
    lines = text.split("\n")
    if len(lines) < 4 or not lines[0]:
        raise NoteError("a checkpoint is an origin line, a size line and a root hash line")
    if not re.fullmatch(r"0|[1-9][0-9]*", lines[1]):
        raise NoteError(f"checkpoint size {lines[1]!r} is not a decimal number")
    root = _b64(lines[2], "root hash")
    if len(root) != merkle.HASH_SIZE:
        raise NoteError("checkpoint root hash is not 32 bytes")
    return Checkpoint(lines[0], int(lines[1]), root)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint in a signed note, once its signature and origin check out."""
    checkpoint = parse_checkpoint_text(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not the key's name {verifier.name!r}")
    return checkpoint


def format_proof(index: int, hashes: Sequence[bytes], checkpoint_note: str) -> str:
    """A c2sp.org/tlog-proof@v1 text: the index, the inclusion proof, the checkpoint verbatim."""
    lines = [PROOF_HEADER, f"index {index}", *(base64.b64encode(h).decode() for h in hashes)]
    return "\n".join(lines) + "\n\n" + checkpoint_note


def parse_proof(text: str) -> tuple[int, list[bytes], str]:
    """The index, the hashes and the checkpoint note of a tlog-proof text (nothing verified yet)."""
    head, sep, checkpoint_note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != PROOF_HEADER:
        raise NoteError(f"a proof starts with {PROOF_HEADER!r} and has a blank line before the checkpoint")
    rest = lines[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]  # unauthenticated application data: never trusted, not used here
    if not rest or not re.fullmatch(r"index (0|[1-9][0-9]*)", rest[0]):
        raise NoteError("a proof needs an 'index N' line")
    hashes = [_b64(line, "proof hash") for line in rest[1:]]
    if any(len(h) != merkle.HASH_SIZE for h in hashes):
        raise NoteError("a proof hash is not 32 bytes")
    return int(rest[0][6:]), hashes, checkpoint_note


def verify_proof(text: str, leaf: bytes, verifier: Verifier) -> tuple[int, Checkpoint]:
    """Check a tlog-proof for the leaf bytes ``leaf``: the checkpoint's signature, then inclusion."""
    index, hashes, checkpoint_note = parse_proof(text)
    checkpoint = open_checkpoint(checkpoint_note, verifier)
    merkle.verify_inclusion(index, checkpoint.size, merkle.leaf_hash(leaf), hashes, checkpoint.root)
    return index, checkpoint


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end in a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note's text must not hold control characters")


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"the {what} is not valid base64") from None
