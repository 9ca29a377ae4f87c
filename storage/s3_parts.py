"""Multipart uploads and copies, part by part (SPEC §5): kept apart from :mod:`storage.s3_store`, which decides
what to put where and how to prove it.

Parts are read into reused buffers by one thread, which also feeds the evidence hasher, and sent by a few worker
threads, each computing the proof its part carries: none of its own under ``signed`` (botocore's signed payload
SHA-256, which the server checks), ``Content-MD5`` where the server checks only that, ``ChecksumSHA256``
elsewhere. hashlib releases the GIL, so parts hash in parallel.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO

from storage.objects import MultiHasher, Progress, StoreError, read_chunks
from storage.s3_proof import multipart_etag
from storage.s3_support import MAX_PARTS, BufferPool, Part, ViewReader, b64, composite_checksum, s3_errors, version_of

if TYPE_CHECKING:
    from storage.s3_store import S3Store


def fill(
    source: BinaryIO, buffers: BufferPool, hasher: MultiHasher, progress: Progress | None
) -> tuple[bytearray, int]:
    """Take a free buffer (waiting for an uploaded part to release one), fill it, hash it."""
    buffer = buffers.get()
    chunk = next(read_chunks(source, buffer), None)
    if chunk is None:
        buffers.put(buffer)
        return buffer, 0
    hasher.update(chunk)
    if progress:
        progress(len(chunk))
    return buffer, len(chunk)


def upload_parts(
    store: S3Store,
    source: BinaryIO,
    buffers: BufferPool,
    filled: list[tuple[bytearray, int]],
    hasher: MultiHasher,
    key: str,
    upload_id: str,
    progress: Progress | None,
) -> list[Part]:
    """Upload parts a few at a time; each buffer returns to the pool when its part is sent."""

    # The per-part proof is the one the server checks: Content-MD5 on RGW (which ignores ChecksumSHA256, so
    # a part SHA-256 there would be a wasted pass), ChecksumSHA256 elsewhere. hashlib releases the GIL, so
    # parts hash in parallel while the reading thread computes the evidence SHA-256.
    proof = store.integrity_proof()
    with_md5 = proof == "md5"

    def send(number: int, buffer: bytearray, size: int) -> Part:
        try:
            view = memoryview(buffer)[:size]
            md5: bytes | None = None
            digest: bytes | None = None
            headers: dict[str, str] = {}
            if with_md5:
                md5 = hashlib.md5(view).digest()
                headers = {"ContentMD5": b64(md5)}
            elif proof != "signed":  # under ``signed`` botocore's payload SHA-256 is the part's proof
                digest = hashlib.sha256(view).digest()
                headers = {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": b64(digest)}
            with s3_errors(store._where, "UploadPart"):
                resp = store.client.upload_part(
                    Bucket=store.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=ViewReader(view),
                    ContentLength=size,
                    **headers,
                )
            if proof == "signed":
                # The server's MD5 of the bytes it checked against the signature: the object's ETag is made of these.
                md5 = bytes.fromhex(str(resp["ETag"]).strip('"'))
            return Part(number, resp["ETag"], digest, size, md5)
        finally:
            buffers.put(buffer)

    futures: list[Future[Part]] = []
    pending: set[Future[Part]] = set()
    with ThreadPoolExecutor(store.parts_in_flight, thread_name_prefix="s3-part") as pool:
        try:
            for buffer, size in filled:
                futures.append(pool.submit(send, len(futures) + 1, buffer, size))
            pending.update(futures)
            while True:
                for f in [f for f in pending if f.done()]:
                    f.result()  # stop reading as soon as a part has failed
                    pending.discard(f)
                buffer, size = fill(source, buffers, hasher, progress)
                if not size:
                    break
                if len(futures) == MAX_PARTS:
                    raise StoreError(f"object too large for {MAX_PARTS} parts of this size on {store._where}")
                futures.append(pool.submit(send, len(futures) + 1, buffer, size))
                pending.add(futures[-1])
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def copy_parts(store: S3Store, source: dict[str, str], key: str, parts: list[Part]) -> str | None:
    """UploadPartCopy with the upload's own part boundaries, so the composite checksum stays comparable."""
    with s3_errors(store._where, "CreateMultipartUpload"):
        upload_id = store.client.create_multipart_upload(Bucket=store.bucket, Key=key, **store._sha256_args())[
            "UploadId"
        ]
    try:
        done = []
        start = 0
        for part in parts:
            end = start + part.size - 1
            with s3_errors(store._where, "UploadPartCopy"):
                resp = store.client.upload_part_copy(
                    Bucket=store.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=part.number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
            start = end + 1
            done.append(
                {
                    "PartNumber": part.number,
                    "ETag": resp["CopyPartResult"]["ETag"],
                    **({"ChecksumSHA256": b64(part.digest)} if part.digest is not None else {}),
                }
            )
        with s3_errors(store._where, "CompleteMultipartUpload"):
            resp = store.client.complete_multipart_upload(
                Bucket=store.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
    except BaseException:
        store._abort(key, upload_id)
        raise
    version: str | None = version_of(resp)
    return version


def composite_of(parts: Sequence[Part]) -> str | None:
    """S3's multipart SHA-256 of the parts, where each part was sent with one (not under the ``md5`` proof)."""
    digests = [p.digest for p in parts]
    return composite_checksum([d for d in digests if d is not None]) if None not in digests else None


def multipart_etag_of(parts: Sequence[Part]) -> str | None:
    md5s = [p.md5 for p in parts]
    return multipart_etag([m for m in md5s if m is not None]) if md5s and None not in md5s else None
