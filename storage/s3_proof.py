"""Which proof of the stored bytes an S3 server gives, learnt once per bucket and recorded in it (SPEC §5).

Re-reading every object after upload doubles the transfer. A server that refuses a wrong digest proves on
receipt that it stored what we sent, so the strongest refusal a server makes is learnt by trying: first a wrong
``ChecksumSHA256`` (refused by AWS, MinIO and newer Ceph, whose HEAD then reports the stored SHA-256); then a
signed payload whose body is not the one signed (``signed``: Ceph RGW 16 checks every request's SigV4
``x-amz-content-sha256`` against the bytes it receives and refuses a mismatch with ``XAmzContentSHA256Mismatch``,
measured); then a wrong ``Content-MD5`` (a server that checks neither of those; RGW's multipart ETag is the MD5 of
the part MD5s, measured). Where nothing is refused (moto, a mock) only a re-read proves anything.

``signed`` is a per-request SHA-256 proof: stronger than Content-MD5, and for an object sent in one PutObject the
signed digest IS the evidence digest, known from one local pass before the send (:mod:`storage.s3_signed`), so
the client hashes each byte once and the object goes straight to its content address. It is a property of the
request, not of the scheme: botocore signs payloads over plain HTTP by default and sends ``UNSIGNED-PAYLOAD`` over
HTTPS, so the store asks for payload signing explicitly wherever this proof is used, and the probe does the
same — over HTTPS the proof means exactly what it means over HTTP.

The answer is written to ``bwc-meta/integrity-proof.json`` in the bucket so that every process and replica uses
the same one without probing again; SHA-256 stays the evidence digest whatever the proof of transfer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from storage.s3_support import DIGEST_REFUSALS, MISSING_CODES, error_code, s3_errors, version_of

log = logging.getLogger(__name__)

Proof = Literal["checksum", "signed", "md5", "reread"]
PROOFS: tuple[Proof, ...] = ("checksum", "signed", "md5", "reread")
RECORD_KEY = "bwc-meta/integrity-proof.json"
_PROBE_BODY = b"bwc-evidence integrity probe\n"


def md5_b64(data: bytes | memoryview) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def multipart_etag(part_md5s: Sequence[bytes]) -> str:
    """The ETag S3 gives a multipart object: hex MD5 of the concatenated binary part MD5s, ``-`` part count."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


def etag_of(resp: dict[str, Any]) -> str:
    return str(resp.get("ETag") or "").strip('"')


def learn_proof(
    client: Any, signing_client: Callable[[], Any], bucket: str, where: str, prefixed: Callable[[str], str]
) -> Proof:
    """The recorded proof of this bucket, or, the first time, the one the server turns out to give.

    ``signing_client`` makes a client that signs payloads (for the ``signed`` probe). A record written before
    that proof existed (no ``tried`` list naming it) and weaker than it is probed once more and rewritten, so a
    bucket learnt as ``md5`` moves to ``signed`` where the server checks signed payloads.
    """
    record = prefixed(RECORD_KEY)
    with s3_errors(where, "GetObject"):
        try:
            stored = json.loads(client.get_object(Bucket=bucket, Key=record)["Body"].read())
            kind = stored.get("proof")
            if kind in PROOFS and (kind == "checksum" or "signed" in stored.get("tried", ())):
                proof: Proof = kind
                return proof
        except ClientError as exc:
            if error_code(exc) not in MISSING_CODES:
                raise
        except ValueError:
            log.warning("s3.proof_record_unreadable bucket=%s key=%s: probing again", bucket, record)
    proof = _probe(client, signing_client, bucket, where, prefixed)
    body = json.dumps(
        {"proof": proof, "tried": list(PROOFS), "learnt_at": datetime.now(UTC).isoformat(), "by": "bwc-evidence"}
    )
    with s3_errors(where, "PutObject"):
        client.put_object(Bucket=bucket, Key=record, Body=body.encode(), ContentType="application/json")
    log.info("s3.proof_learnt bucket=%s proof=%s", bucket, proof)
    return proof


def _probe(
    client: Any, signing_client: Callable[[], Any], bucket: str, where: str, prefixed: Callable[[str], str]
) -> Proof:
    wrong_sha256 = base64.b64encode(hashlib.sha256(b"not the body").digest()).decode()
    if _refused(client, bucket, where, prefixed, ChecksumAlgorithm="SHA256", ChecksumSHA256=wrong_sha256):
        return "checksum"
    if _refused(signing_client(), bucket, where, prefixed, body=Turncoat(_PROBE_BODY, _PROBE_BODY.upper())):
        return "signed"
    if _refused(client, bucket, where, prefixed, ContentMD5=md5_b64(b"not the body")):
        return "md5"
    return "reread"


class Turncoat:
    """A body that reads as ``first`` until it is rewound after a read, and as ``second`` from then on.

    botocore signs a payload by reading the body once to SHA-256 it, seeking back and reading it again to send
    it: this is a file whose bytes changed between those two reads. A server that checks signed payloads must
    refuse it; one that stores ``second`` under ``first``'s signature checks nothing.
    """

    def __init__(self, first: bytes, second: bytes) -> None:
        if len(first) != len(second):
            raise ValueError("both versions of the body must have the same length")
        self._data, self._second = first, second
        self._pos = 0
        self._read = False

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else min(len(self._data), self._pos + size)
        chunk = self._data[self._pos : end]
        self._pos = end
        self._read = self._read or bool(chunk)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = max(0, min(len(self._data), (0, self._pos, len(self._data))[whence] + offset))
        if self._pos == 0 and self._read:
            self._data, self._read = self._second, False
        return self._pos

    def tell(self) -> int:
        return self._pos


def _refused(
    client: Any,
    bucket: str,
    where: str,
    prefixed: Callable[[str], str],
    body: bytes | Turncoat = _PROBE_BODY,
    **headers: str,
) -> bool:
    """Whether the server refuses the probe body under a wrong digest header; an accepted probe is removed."""
    key = prefixed(f"bwc-meta/probe-{uuid.uuid4().hex}")
    with s3_errors(where, "PutObject"):
        try:
            resp = client.put_object(Bucket=bucket, Key=key, Body=body, ContentLength=len(_PROBE_BODY), **headers)
        except ClientError as exc:
            if error_code(exc) in DIGEST_REFUSALS:
                return True
            raise
    try:
        args = {"Bucket": bucket, "Key": key}
        version = version_of(resp)
        client.delete_object(**args, **({"VersionId": version} if version else {}))
    except ClientError as exc:  # a bucket with default retention keeps it: harmless, and said
        log.warning("s3.probe_not_removed bucket=%s key=%s: %s", bucket, key, error_code(exc))
    return False
