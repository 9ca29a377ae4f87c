"""Checking the store's view of an object against what was sent, by the bucket's proof (SPEC §5): kept apart
from :mod:`storage.s3_store`, which puts; a failed check deletes the bad version and raises."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from storage.objects import StoreError, VerificationFailed
from storage.s3_proof import etag_of
from storage.s3_support import MISSING_CODES, checksum_matches, error_code, s3_errors, version_of

if TYPE_CHECKING:
    from storage.s3_store import S3Store

log = logging.getLogger(__name__)


def verify_stored(
    store: S3Store,
    key: str,
    version: str | None,
    sha256: str,
    *,
    full: str | None,
    composite: str | None,
    echo: bool = False,
    etag: str | None = None,
    size: int | None = None,
) -> str | None:
    """Compare the store's view of what it stored with what we computed; delete it and raise if they differ.

    Returns the version verified: the one given, or the one HEAD names where the write did not say (Ceph RGW
    answers CompleteMultipartUpload without a VersionId, measured), so that retention locks that version.

    HEAD with ChecksumMode=ENABLED returns the store's SHA-256: for multipart objects a composite that S3
    (and moto, measured) computes from the part bytes it stored, and for a server-side copy a digest the
    server computes over the copied bytes, so a match proves the stored bytes. For a single PutObject,
    though, moto echoes back whatever ChecksumSHA256 the client sent, even when the body it stored is
    different (measured: corrupting the body in flight still gave the sent checksum on PUT, HEAD and
    GetObjectAttributes). So a checksum that may be such an ``echo`` proves the bytes only where the server
    is known to refuse wrong checksums (``checksum`` proof). On a server that refuses a wrong Content-MD5
    instead (``md5``, Ceph RGW), each part was checked on arrival and the object's ETag (``etag``: hex MD5,
    or MD5 of the part MD5s for multipart) proves the assembly. On a server that checks signed payloads
    (``signed``), every request's body was checked on arrival against the SHA-256 it was signed with; the ETag the
    write answered (for multipart: made from the ETags the parts answered) and the ``size`` then prove that HEAD
    shows that very object, assembled from those parts. Anything less is re-read and hashed.
    """
    args: dict[str, Any] = {"Bucket": store.bucket, "Key": key}
    if version:
        args["VersionId"] = version
    with s3_errors(store._where, "HeadObject"):
        head = store.client.head_object(**args, ChecksumMode="ENABLED")
    reported = head.get("ChecksumSHA256")
    accepted = [c for c in (full, composite) if c]
    proof = store.integrity_proof()
    problem = None
    if reported is not None and not checksum_matches(reported, *accepted):
        problem = f"store reports ChecksumSHA256 {reported}, we sent {' or '.join(accepted)}"
    elif reported is not None and (proof == "checksum" or not echo):
        pass  # the store's own SHA-256 of what it holds, which matches ours
    elif size is not None and int(head.get("ContentLength", -1)) != size:
        problem = f"store holds {head.get('ContentLength')} bytes, we sent {size}"
    elif proof in ("md5", "signed") and etag is not None and etag_of(head) == etag:
        pass  # every request's body checked on arrival (MD5 or signed SHA-256), and exactly those parts assembled
    else:
        # No checksum from the store, or one it may only have echoed, and no MD5 proof: read it back.
        actual = rehash(store, key, version)
        if actual != sha256:
            problem = f"stored bytes re-read to sha256 {actual}"
    if problem is None:
        return version or version_of(head)
    log.error("s3.verification_failed key=%s version=%s bucket=%s: %s", key, version, store.bucket, problem)
    with contextlib.suppress(StoreError):
        store._delete(key, version)
    raise VerificationFailed(f"object {sha256} on {store._where} did not verify: {problem}")


def rehash(store: S3Store, key: str, version: str | None) -> str | None:
    args: dict[str, Any] = {"Bucket": store.bucket, "Key": key}
    if version:
        args["VersionId"] = version
    hasher = hashlib.sha256()
    with s3_errors(store._where, "GetObject"):
        try:
            body = store.client.get_object(**args)["Body"]
        except ClientError as exc:
            if error_code(exc) in MISSING_CODES:
                return None
            raise
        with contextlib.closing(body):
            for chunk in body.iter_chunks(1024 * 1024):
                hasher.update(chunk)
    return hasher.hexdigest()
