"""VERIFY.txt: how a court's expert checks an export with common tools (sha256sum, openssl), none of ours."""

from __future__ import annotations

from audit.export import AUDIT_DIR, ExportPlan

# The commands in steps 1-3 are run, exactly as written here, by the tests on an unzipped export.
RECIPE = [
    "sha256sum -c tagmanifest-sha256.txt",
    "sha256sum -c manifest-sha256.txt",
    f"openssl pkeyutl -verify -pubin -inkey {AUDIT_DIR}/public-key.pem -rawin "
    f"-in {AUDIT_DIR}/checkpoint.body -sigfile {AUDIT_DIR}/checkpoint.sig",
]

TEMPLATE = """\
HOW TO CHECK THIS EVIDENCE EXPORT (case {case})
===============================================

This folder is a BagIt bag (RFC 8493) made by BWC Evidence on {date}. It holds the
recordings and sidecar files of the case (data/recordings, data/sidecars), a description of
the case (data/case.json: actions, devices, officers, coverage verdicts and reasons, and the
SHA-256 of every file), the audit events about the case with their inclusion proofs
({audit}/events), the signed checkpoint of the audit log those proofs lead to
({audit}/checkpoint) and the public key that signed it ({audit}/public-key.pem).
Everything below uses only sha256sum (GNU coreutils) and openssl (3.0 or later). Run the
commands in this folder (the one holding this file) after unzipping.

1. The bag's own files are intact (expect every line to end in "OK"):

       {step1}

2. Every payload file is intact, recordings included (expect every line to end in "OK"):

       {step2}

   A recording's digest here is the same SHA-256 that data/case.json and the audit events
   give for it (field "sha256"), which was computed when the service first received it.

3. The audit log's checkpoint was signed by the service's key (expect "Signature Verified
   Successfully"):

       {step3}

   checkpoint.body is the signed text of {audit}/checkpoint (its origin, tree size and
   root hash); checkpoint.sig is the raw Ed25519 signature from its signature line.
   Compare public-key.pem, or the verifier key in {audit}/verifier-key.txt, with the key
   the agency published or a checkpoint it printed earlier: a bag signed by another key
   proves nothing.

4. Each event belongs to that log. {audit}/events/NNNNNNNN.json is event NNNNNNNN's exact
   bytes; NNNNNNNN.tlog-proof is its RFC 9162 inclusion proof in the C2SP tlog-proof form
   (c2sp.org/tlog-proof): "index I", then base64 SHA-256 hashes, then the checkpoint.
   The leaf hash is SHA-256 of a zero byte followed by the event's bytes:

       (printf '\\000'; cat {audit}/events/00000001.json) | openssl dgst -sha256

   and each step up the tree is SHA-256 of a one byte, the left hash and the right hash
   (RFC 9162 section 2.1.3.2 says which side each proof hash is on); the last one must be
   the root hash in checkpoint.body. Any RFC 9162 or C2SP tlog-proof verifier does this.

Changing any byte of any file makes step 1 or 2 print FAILED for that file; changing the
checkpoint makes step 3 fail; changing an event makes its file fail step 2.
"""


def verify_text(plan: ExportPlan) -> str:
    """The recipe for this bag."""
    return TEMPLATE.format(
        case=plan.case_number,
        date=plan.exported_at.date().isoformat(),
        audit=AUDIT_DIR,
        step1=RECIPE[0],
        step2=RECIPE[1],
        step3=RECIPE[2],
    )
