"""Signed notes, checkpoints and tlog-proofs: byte-exact against Go's reference vector, and every forgery fails."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import merkle, notes
from audit.notes import Checkpoint, NoteError, Signer

# The example key and note of golang.org/x/mod/sumdb/note (its documentation and note_test.go).
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = (
    GO_TEXT
    + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "bwc.example/audit"


def _signer(name: str = ORIGIN) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


def test_signing_reproduces_the_go_reference_note_byte_for_byte() -> None:
    signer = notes.parse_signer(GO_SKEY)
    assert str(signer.verifier) == GO_VKEY
    assert notes.sign_note(GO_TEXT, signer) == GO_NOTE
    assert notes.open_note(GO_NOTE, notes.parse_verifier(GO_VKEY)) == GO_TEXT


def test_a_tampered_or_foreign_note_is_refused() -> None:
    verifier = notes.parse_verifier(GO_VKEY)
    with pytest.raises(NoteError, match="does not verify"):
        notes.open_note(GO_NOTE.replace("cryptography", "cryptographY"), verifier)
    other = _signer("PeterNeumann")  # same name, another key: its id differs, so the note has no signature of ours
    with pytest.raises(NoteError, match="no signature by PeterNeumann"):
        notes.open_note(notes.sign_note(GO_TEXT, other), verifier)
    with pytest.raises(NoteError, match="no blank line"):
        notes.open_note(GO_TEXT, verifier)


def test_unknown_signatures_are_ignored_and_one_good_one_suffices() -> None:
    signer, witness = _signer(), _signer("witness.example")
    note = notes.sign_note("hello\n", signer)
    cosigned = note + notes.sign_note("hello\n", witness).split("\n\n", 1)[1]
    assert notes.open_note(cosigned, signer.verifier) == "hello\n"
    assert notes.open_note(cosigned, witness.verifier) == "hello\n"


def test_verifier_key_text_round_trips_and_its_id_is_checked() -> None:
    signer = _signer()
    text = str(signer.verifier)
    name, hex_id, material = text.split("+", 2)
    assert name == ORIGIN and len(hex_id) == 8 and base64.b64decode(material)[0] == 0x01
    assert notes.parse_verifier(text) == signer.verifier
    with pytest.raises(NoteError, match="does not match"):
        notes.parse_verifier(f"{name}+{'0' * 8}+{material}")
    with pytest.raises(NoteError, match="does not match"):
        notes.parse_verifier(f"other.example+{hex_id}+{material}")
    with pytest.raises(NoteError, match="no spaces"):
        notes.check_name("has space")


def test_a_checkpoint_is_signed_parsed_back_and_bound_to_its_key() -> None:
    signer = _signer()
    checkpoint = Checkpoint(ORIGIN, 42, merkle.node_hash(b"a" * 32, b"b" * 32))
    note = notes.sign_checkpoint(checkpoint, signer)
    body = note.split("\n")
    assert body[:3] == [ORIGIN, "42", base64.b64encode(checkpoint.root).decode()]
    assert body[3] == "" and body[4].startswith(f"— {ORIGIN} ")
    assert notes.open_checkpoint(note, signer.verifier) == checkpoint
    with pytest.raises(NoteError, match="no signature"):
        notes.open_checkpoint(note, _signer().verifier)  # a signature by another key of the same name
    forged = note.replace("\n42\n", "\n43\n")
    with pytest.raises(NoteError, match="does not verify"):
        notes.open_checkpoint(forged, signer.verifier)
    with pytest.raises(NoteError, match="must be signed by a key of that name"):
        notes.sign_checkpoint(checkpoint, _signer("elsewhere.example"))


def test_a_proof_text_verifies_and_every_broken_one_fails() -> None:
    signer = _signer()
    leaves = [f"event {i}".encode() for i in range(11)]
    hashes = [merkle.leaf_hash(x) for x in leaves]
    checkpoint = Checkpoint(ORIGIN, 11, merkle.tree_hash(hashes))
    note = notes.sign_checkpoint(checkpoint, signer)
    text = notes.format_proof(6, merkle.inclusion_proof(6, 11, hashes), note)
    assert text.startswith("c2sp.org/tlog-proof@v1\nindex 6\n") and text.endswith(note)
    assert notes.verify_proof(text, leaves[6], signer.verifier) == (6, checkpoint)
    assert notes.parse_proof(text.replace("\nindex", "\nextra AAAA\nindex", 1))[0] == 6
    lines = text.split("\n")
    flipped = "\n".join([*lines[:2], base64.b64encode(b"\x00" * 32).decode(), *lines[3:]])
    broken = {
        "flipped element": (flipped, leaves[6], signer.verifier, merkle.MerkleError),
        "wrong index": (text.replace("index 6", "index 7"), leaves[6], signer.verifier, merkle.MerkleError),
        "wrong leaf": (text, leaves[5], signer.verifier, merkle.MerkleError),
        "other key": (text, leaves[6], _signer().verifier, NoteError),
        "wrong size": (text.replace(f"\n{ORIGIN}\n11\n", f"\n{ORIGIN}\n12\n"), leaves[6], signer.verifier, NoteError),
        "no header": (text.replace("c2sp.org/tlog-proof@v1", "tlog-proof"), leaves[6], signer.verifier, NoteError),
    }
    for name, (proof, leaf, verifier, error) in broken.items():
        with pytest.raises(error):
            notes.verify_proof(proof, leaf, verifier)
            pytest.fail(name)
