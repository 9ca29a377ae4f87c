"""Object store on AWS S3 or any S3-compatible service (MinIO, Ceph RGW, SeaweedFS), SPEC §5.

A ``put`` streams the source once through reused part buffers, hashing (SHA-256 plus extra digests) in the
same pass that uploads, and never holds more than ``parts_in_flight + 1`` parts in memory; under the ``signed``
proof a file is hashed by a local pass first and sent once, signed with that digest (:mod:`storage.s3_signed`);
a file above ``signed_parts_from`` has its parts' SHA-256s taken in that same pass and goes up in parts, each
signed with its own: while the pass reads, to a temporary key copied to the content address (RGW copies by
reference), or straight to the address where the bucket would retain a temporary object or the file is over 5 GiB.
Every object is verified against the store's own view before ``put`` returns, by the strongest proof the server
gives (:mod:`storage.s3_proof`); see :func:`storage.s3_verify.verify_stored` for when that still means a re-read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import stat
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from botocore.exceptions import BotoCoreError, ClientError

from config.settings import mask_text, mask_url
from storage import s3_housekeeping, s3_parts, s3_proof, s3_verify
from storage.objects import (
    CHUNK_SIZE,
    DigestMismatch,
    Leftover,
    MultiHasher,
    ObjectInfo,
    ObjectMissing,
    Progress,
    StoredObject,
    StoreError,
    VerificationFailed,
    object_key,
    sha256_of_stream,
)
from storage.s3_proof import Proof, learn_proof
from storage.s3_support import (
    MAX_COPY_SIZE,
    MAX_PARTS,
    MAX_PUT_SIZE,
    MIN_PART_SIZE,
    MISSING_CODES,
    BufferPool,
    Part,
    ViewReader,
    b64,
    error_code,
    parse_s3_url,
    s3_errors,
    version_of,
)

# boto3, botocore's client and signer modules and storage.s3_signed (which subclasses botocore's signer) cost
# ~0.4 s of CPU to import; they are imported where the client is made (S3Store.client), so that ``bwc ingest``
# does it while it hashes the file (ingest.transfer) and a command that never reaches the store not at all.
if TYPE_CHECKING:
    from storage.s3_signed import KnownDigestBody

log = logging.getLogger(__name__)

_EXISTS = ("PreconditionFailed", "ConditionalRequestConflict")  # IfNoneMatch: * met an object already there


# Parts signed from the hash pass (rgw13): on Ceph RGW 16 with the gateway beside the client on 2 cores, 64 MiB
# parts three in flight took 0.86-0.88 x aws s3 cp's wall where one PutObject took 0.79-0.81 x (three pairs, the
# same minutes), the gateway on both cores instead of one, for ~1 s more client CPU for 2.5 GiB (a second SHA-256).
SIGNED_PART_SIZE = 64 * 1024 * 1024
SIGNED_PARTS_FROM = 128 * 1024 * 1024  # smaller files: one PutObject (a part or two gain nothing)
SIGNED_IN_FLIGHT = 3


class S3Store:
    """Content-addressed, write-once objects in one bucket (optionally under a prefix)."""

    remote = True

    def __init__(self, url: str, *, part_size: int = CHUNK_SIZE, parts_in_flight: int = 3) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum part size)")
        self.url = url
        self.location = parse_s3_url(url)
        self.bucket = self.location.bucket
        self.part_size = part_size
        self.parts_in_flight = max(1, parts_in_flight)
        self.copy_limit = MAX_COPY_SIZE  # tests lower it to exercise UploadPartCopy
        # Under ``signed``: a file above ``signed_parts_from`` goes up in parts of ``signed_part_size``, each signed
        # with the SHA-256 the hash pass took of it (storage.s3_signed.PartDigests), ``signed_in_flight`` at a time
        # (measured shapes in bench/HISTORY.md, rgw13); tests lower them.
        self.signed_part_size = SIGNED_PART_SIZE
        self.signed_parts_from = SIGNED_PARTS_FROM
        self.signed_in_flight = SIGNED_IN_FLIGHT
        self._pass_parts: dict[tuple[str, int], tuple[int, list[bytes]]] = {}
        self._pass_lock = threading.Lock()
        self._lock_enabled: bool | None = None
        self._default_retention = False  # the bucket's Object Lock rule retains every new object
        self._proof: Proof | None = None
        self._proof_lock = threading.Lock()
        self._session: Any = None
        self._client: Any = None
        self._client_lock = threading.Lock()
        endpoint = self.location.endpoint_url
        self._where = f"s3://{self.bucket}" + (f" at {mask_url(endpoint)}" if endpoint else "")

    @property
    def client(self) -> Any:
        """The boto3 client, made on first use (under the ``signed`` proof, one that signs every payload).

        Making it is the costly part of opening the store (imports and botocore's S3 model: ~0.5 s of CPU), so it
        waits until a request is due; :func:`ingest.transfer.transfer` has it made on a worker thread while the
        file is hashed, and a command that never reaches the store does not pay for it.
        """
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._make_client(sign_payload=False)
                client = self._client
        return client

    def _make_client(self, *, sign_payload: bool) -> Any:
        """A client on the bucket's endpoint; ``sign_payload`` makes SigV4 sign every body's SHA-256.

        Unsigned by default: where the proof is a checksum or Content-MD5 header, SHA-256-signing the payload
        too (botocore does over plain HTTP unless told not to) hashes every byte once more for nothing. Under the
        ``signed`` proof the signature is the proof, so it is asked for explicitly, over HTTP and HTTPS alike.
        """
        import boto3.session  # here, not at the top: see ``client``
        from botocore.config import Config

        loc = self.location
        if self._session is None:
            self._session = boto3.session.Session(
                aws_access_key_id=loc.access_key, aws_secret_access_key=loc.secret_key, region_name=loc.region
            )
        s3_options: dict[str, Any] = {"payload_signing_enabled": sign_payload}
        if loc.addressing_style:
            s3_options["addressing_style"] = loc.addressing_style
        return self._session.client(
            "s3",
            endpoint_url=loc.endpoint_url,
            config=Config(
                s3=s3_options,
                retries={"max_attempts": loc.max_attempts, "mode": "standard"},
                connect_timeout=10,
                read_timeout=120,
                max_pool_connections=self.parts_in_flight + 4,
                # We send and check SHA-256 ourselves; botocore's default CRC32s would be a wasted pass.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def _signing_client(self) -> Any:
        return self._make_client(sign_payload=True)

    # -- keys and errors -------------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        """The object's key in the bucket: its content address, under the prefix if any."""
        return self._prefixed(object_key(sha256))

    def _prefixed(self, key: str) -> str:
        return f"{self.location.prefix}/{key}" if self.location.prefix else key

    # -- bucket ----------------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Create the bucket if missing (with Object Lock when the URL asks for a lock mode); remember its lock."""
        with s3_errors(self._where, "HeadBucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if error_code(exc) not in MISSING_CODES | {"NoSuchBucket"}:
                    raise
                self._create_bucket()
        self._lock_enabled = None
        self.object_lock_enabled()
        self._proof = None
        self.integrity_proof()

    def _create_bucket(self) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        if self.location.lock_requested:
            args["ObjectLockEnabledForBucket"] = True
        try:
            self.client.create_bucket(**args)
            log.info("s3.bucket_created bucket=%s object_lock=%s", self.bucket, "ObjectLockEnabledForBucket" in args)
        except ClientError as exc:
            if error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def object_lock_enabled(self) -> bool:
        """Whether the bucket has Object Lock (asked once, then remembered)."""
        if self._lock_enabled is None:
            with s3_errors(self._where, "GetObjectLockConfiguration"):
                try:
                    conf = self.client.get_object_lock_configuration(Bucket=self.bucket).get(
                        "ObjectLockConfiguration", {}
                    )
                    enabled = conf.get("ObjectLockEnabled") == "Enabled"
                    self._default_retention = enabled and bool(conf.get("Rule", {}).get("DefaultRetention"))
                except ClientError as exc:
                    if error_code(exc) != "ObjectLockConfigurationNotFoundError":
                        raise
                    enabled = False
            self._lock_enabled = enabled
        return self._lock_enabled

    def integrity_proof(self) -> Proof:
        """How this bucket's server proves what it stored (learnt once per bucket, then read from the bucket)."""
        with self._proof_lock:
            if self._proof is None:
                self._proof = learn_proof(self.client, self._signing_client, self.bucket, self._where, self._prefixed)
                if self._proof == "signed":
                    from storage import s3_signed

                    # Every request's body is then SHA-256-signed and checked by the server on arrival.
                    client = self._signing_client()
                    s3_signed.install(client)
                    self._client = client
            return self._proof

    @property
    def prefers_known_digest(self) -> bool:
        """Whether callers should hash the source first, so that the upload goes straight to its final key.

        A known digest skips the upload of bytes already stored and the server-side copy from a temporary key,
        at the price of a local read pass (memory speed, far cheaper than the network). Under ``signed`` the
        digest is what the request is signed with (:mod:`storage.s3_signed`), so the store needs it before
        sending anyway. Only under the per-part ``Content-MD5`` proof is the one-pass upload to a temporary key
        kept, where the bucket's Object Lock rule does not retain every new object (a temporary object there could
        not be deleted until its retention ran out).
        """
        if self.integrity_proof() not in ("md5", "signed"):
            return True
        return self.object_lock_enabled() and self._default_retention

    # -- put -------------------------------------------------------------------------------------------

    def hash_first(self, source: BinaryIO, cancel: Callable[[], bool] | None = None) -> str | None:
        """The SHA-256 of ``source`` read to its end, for a caller that hashes first (``prefers_known_digest``);
        None where ``cancel``, asked as the pass goes, says the digest is not wanted after all.

        A file large enough to go up in signed parts also has each part's SHA-256 taken in the same read (on a
        second thread), kept by content (digest and size) for the ``put`` that follows: the part digests of given
        bytes are a fact about those bytes, so a later put of other bytes can never use them.
        """
        size = _file_size(source)
        parts = self._part_digests_for(size)
        hasher = MultiHasher()
        from storage.s3_signed import hash_pass

        if not hash_pass(source, hasher, parts, lambda: self._proof is not None and self._proof != "signed", cancel):
            return None
        sha256: str = hasher.sha256.hexdigest()
        if parts is not None and not parts.abandoned and size is not None:
            with self._pass_lock:
                while len(self._pass_parts) >= 16:
                    del self._pass_parts[next(iter(self._pass_parts))]
                self._pass_parts[(sha256, size)] = (parts.part_size, parts.finish())
        return sha256

    def _sends_while_hashing(self, size: int) -> bool:
        """Whether a file of ``size`` bytes, digest unknown, goes up while it is hashed (to a temporary key, then one
        copy): above ``signed_parts_from``, within one CopyObject, and where the bucket's rule would not retain the
        temporary object. Otherwise it is hashed first and sent straight to its address."""
        return (
            self.signed_parts_from < size <= self.copy_limit
            and -(-size // self.signed_part_size) <= MAX_PARTS
            and not (self.object_lock_enabled() and self._default_retention)
        )

    def _part_digests_for(self, size: int | None) -> Any:
        """A part hasher where a file of ``size`` bytes would go up in signed parts, else None."""
        if size is None or size <= self.signed_parts_from or self._proof not in (None, "signed"):
            return None
        if -(-size // self.signed_part_size) > MAX_PARTS:
            return None
        from storage.s3_signed import PartDigests

        return PartDigests(self.signed_part_size)

    def put(
        self,
        source: BinaryIO,
        *,
        expected_sha256: str | None = None,
        extra_digests: Sequence[str] = (),
        retain_until: datetime | None = None,
        progress: Progress | None = None,
    ) -> StoredObject:
        """Store a stream write-once under its SHA-256, verified; with ``expected_sha256``, refuse other bytes."""
        expected = expected_sha256.lower() if expected_sha256 else None
        if expected is not None and not _is_sha256(expected):
            raise DigestMismatch(f"expected digest {expected_sha256!r} is not a SHA-256 hex digest")
        hasher = MultiHasher(extra_digests)
        if expected is not None and self._head(self.key(expected)) is not None:
            # Already stored: hash locally (no upload) so a wrong body is still refused and extras are known.
            return self._known(source, hasher, expected, retain_until, progress)
        size = _file_size(source)
        if self.integrity_proof() == "signed" and size is not None and size > self.part_size:
            if expected is None and self._sends_while_hashing(size):
                return self._put_signed_while_hashing(source, size, tuple(extra_digests), retain_until, progress)
            if size <= MAX_PUT_SIZE or (expected is None and self._part_digests_for(size) is not None):
                return self._put_signed(source, size, tuple(extra_digests), expected, retain_until, progress)
        part_size = self._part_size_for(source)
        buffers = BufferPool(self.parts_in_flight + 1, part_size)
        first, n_first = s3_parts.fill(source, buffers, hasher, progress)
        # read_chunks fills a buffer completely unless the source ended, so a short first part is the whole.
        second, n_second = s3_parts.fill(source, buffers, hasher, progress) if n_first == part_size else (first, 0)
        if not n_second:
            return self._put_single(memoryview(first)[:n_first], hasher, expected, retain_until)
        return self._put_multipart(
            source, buffers, [(first, n_first), (second, n_second)], hasher, expected, retain_until, progress
        )

    def put_file(
        self,
        path: Path,
        *,
        expected_sha256: str | None = None,
        extra_digests: Sequence[str] = (),
        retain_until: datetime | None = None,
        received_sha256: str | None = None,
    ) -> StoredObject:
        """A bucket cannot take a local file as it is: it is streamed like any other source (and hashed again on
        the way, so ``received_sha256`` is not needed)."""
        with open(path, "rb") as f:
            return self.put(f, expected_sha256=expected_sha256, extra_digests=extra_digests, retain_until=retain_until)

    def _part_size_for(self, source: BinaryIO) -> int:
        """The configured part size, grown for a file too large for S3's 10,000 parts at that size."""
        try:
            size = os.fstat(source.fileno()).st_size
        except (AttributeError, OSError, io.UnsupportedOperation):
            return self.part_size
        needed = -(-size // MAX_PARTS)  # ceiling division
        return max(self.part_size, -(-needed // (1024 * 1024)) * 1024 * 1024)

    def _sha256_args(self) -> dict[str, str]:
        """``ChecksumAlgorithm=SHA256`` where the server keeps part checksums; none where it ignores them (md5)."""
        return {} if self.integrity_proof() in ("md5", "signed") else {"ChecksumAlgorithm": "SHA256"}

    def _known(
        self,
        source: BinaryIO,
        hasher: MultiHasher,
        expected: str,
        retain_until: datetime | None,
        progress: Progress | None,
    ) -> StoredObject:
        hasher.feed(source, progress)
        _check_expected(hasher, expected)
        return self._existing(expected, hasher, retain_until)

    def _existing(self, sha256: str, hasher: MultiHasher, retain_until: datetime | None) -> StoredObject:
        """The answer for bytes that were stored already; a later retention date extends the old one."""
        info = self.head(sha256)
        if info is None:
            raise VerificationFailed(f"object {sha256} vanished from {self._where} while being stored")
        retention = info.retention_until
        if retain_until is not None and self.object_lock_enabled() and (retention is None or retention < retain_until):
            retention = self._retain(self.key(sha256), info.version_id, retain_until)
        return StoredObject(
            key=self.key(sha256),
            sha256=sha256,
            size=info.size,
            created=False,
            version_id=info.version_id,
            retention_until=retention,
            extra_digests=hasher.extra_hexdigests(),
        )

    def _put_single(
        self, view: memoryview, hasher: MultiHasher, expected: str | None, retain_until: datetime | None
    ) -> StoredObject:
        sha256 = _check_expected(hasher, expected)
        key = self.key(sha256)
        if expected is None and self._head(key) is not None:
            return self._existing(sha256, hasher, retain_until)
        digest = hasher.sha256.digest()
        proof = self.integrity_proof()
        md5 = hashlib.md5(view) if proof == "md5" else None
        body: ViewReader | KnownDigestBody = ViewReader(view)
        if proof == "signed":  # signed with the digest just taken: botocore need not hash the buffer again
            from storage.s3_signed import KnownDigestBody

            body = KnownDigestBody(cast(BinaryIO, body), len(view), sha256, (), None)
        with s3_errors(self._where, "PutObject"):
            try:
                resp = self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=body,
                    ContentLength=len(view),
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=b64(digest),
                    IfNoneMatch="*",  # write-once even when two writers race
                    **({"ContentMD5": b64(md5.digest())} if md5 else {}),
                )
            except ClientError as exc:
                if error_code(exc) not in _EXISTS:
                    raise
                return self._existing(sha256, hasher, retain_until)
        version = version_of(resp)
        # Under ``signed`` the server checked the body against botocore's SHA-256 of this same buffer; the ETag
        # it answered then names the version HEAD must show.
        etag = md5.hexdigest() if md5 else s3_proof.etag_of(resp) if proof == "signed" else None
        version = s3_verify.verify_stored(
            self, key, version, sha256, full=b64(digest), composite=None, echo=True, etag=etag, size=len(view)
        )
        return self._created(key, sha256, hasher, version, retain_until)

    def _put_signed(
        self,
        source: BinaryIO,
        size: int,
        extra: tuple[str, ...],
        expected: str | None,
        retain_until: datetime | None,
        progress: Progress | None,
    ) -> StoredObject:
        """One PutObject to the content address, signed with the file's SHA-256 (:mod:`storage.s3_signed`).

        Without ``expected`` the file is hashed first by a local pass (extras too, so the send pass hashes
        nothing); with it, the server itself refuses bytes that do not have it, and the extras come from the send.
        """
        from storage.s3_signed import KnownDigestBody, hash_pass

        start = source.tell()
        hasher: MultiHasher | None = None
        part_digests: tuple[int, list[bytes]] | None = None
        if expected is None:
            hasher = MultiHasher(extra)
            parts = self._part_digests_for(size)
            hash_pass(source, hasher, parts)
            source.seek(start)
            if hasher.size != size:
                raise OSError(f"the source holds {hasher.size} bytes, not {size}: it changed while being read")
            sha256 = hasher.sha256.hexdigest()
            if self._head(self.key(sha256)) is not None:
                return self._existing(sha256, hasher, retain_until)
            if parts is not None:
                part_digests = (parts.part_size, parts.finish())
        else:
            sha256 = expected
            with self._pass_lock:
                part_digests = self._pass_parts.pop((sha256, size), None)
            if extra:  # the extras come from the send, which parts in flight cannot feed in order
                part_digests = None
        if part_digests is not None:
            return self._put_signed_parts(source, size, sha256, *part_digests, hasher, retain_until, progress)

        key = self.key(sha256)
        body = KnownDigestBody(source, size, sha256, () if hasher else extra, progress)
        try:
            with s3_errors(self._where, "PutObject"):
                resp = self.client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentLength=size, IfNoneMatch="*"
                )
        except StoreError as exc:
            if body.changed is not None:  # the source, not the store: botocore saw only a broken send
                raise body.changed from None
            if isinstance(exc.__cause__, ClientError) and error_code(exc.__cause__) in _EXISTS:
                # Stored meanwhile by another writer; a claim is still checked, and the extras taken, locally.
                source.seek(start)
                return (
                    self._existing(sha256, hasher, retain_until)
                    if hasher
                    else self._known(source, MultiHasher(extra), sha256, retain_until, None)
                )
            if isinstance(exc, VerificationFailed) and expected is not None:
                source.seek(start)  # refused: a claim the file does not bear, or bytes damaged on the way?
                actual = sha256_of_stream(source)
                if actual != expected:
                    raise DigestMismatch(f"expected sha256 {expected}, got {actual}") from exc
            raise
        version = s3_verify.verify_stored(
            self, key, version_of(resp), sha256, full=None, composite=None, etag=s3_proof.etag_of(resp), size=size
        )
        return self._created(key, sha256, hasher or body.hasher, version, retain_until)

    def _put_signed_parts(
        self,
        source: BinaryIO,
        size: int,
        sha256: str,
        part_size: int,
        digests: list[bytes],
        hasher: MultiHasher | None,
        retain_until: datetime | None,
        progress: Progress | None,
    ) -> StoredObject:
        """A multipart upload straight to the content address, each part signed with its SHA-256 from the hash pass.

        Parts are read again from the file (page cache) with ``pread``, a few in flight, each checked by the server
        against the digest it is signed with: a part whose bytes changed after the hash pass is refused, the upload
        aborted, and nothing lands under any key.
        """
        start = source.tell()
        key = self.key(sha256)
        upload_id = self._create_upload(key)
        try:
            with ThreadPoolExecutor(max(1, self.signed_in_flight), thread_name_prefix="s3-signed-part") as pool:
                send = self._signed_sender(source, start, size, part_size, key, upload_id, progress)
                parts = _all_parts([pool.submit(send, i + 1, d) for i, d in enumerate(digests)])
            resp = self._complete_signed(source, start, size, key, upload_id, parts)
        except BaseException as exc:
            self._abort(key, upload_id)
            if isinstance(exc, VerificationFailed):  # refused: the file changed since its pass, or damage on the way?
                source.seek(start)
                actual = sha256_of_stream(source)
                if actual != sha256:
                    raise DigestMismatch(f"expected sha256 {sha256} (the hash pass), got {actual}") from exc
            raise
        if resp is None:  # stored meanwhile by another writer
            self._abort(key, upload_id)
            return self._existing(sha256, hasher or _counted(size), retain_until)
        etag = s3_parts.multipart_etag_of(parts)
        version = s3_verify.verify_stored(
            self, key, version_of(resp), sha256, full=None, composite=None, etag=etag, size=size
        )
        return self._created(key, sha256, hasher or _counted(size), version, retain_until)

    def _put_signed_while_hashing(
        self,
        source: BinaryIO,
        size: int,
        extra: tuple[str, ...],
        retain_until: datetime | None,
        progress: Progress | None,
    ) -> StoredObject:
        """Parts signed with their SHA-256s go up while the hash pass still reads the file; then one server-side copy.

        The content address is known only at the end of the pass, so the upload goes to a temporary key: each part
        is sent as soon as the pass has hashed it (its SHA-256 taken from the very bytes the file's digest was
        taken from, on the pass's second thread), read again with ``pread`` and checked by the server against its
        signature, so the object holds exactly the bytes the digest was taken from. Ceph RGW copies a multipart
        object within its bucket by reference (its parts are shared, not rewritten: 0.15 s and 0.1 s of gateway CPU
        for 1 GiB, measured), so the copy to the content address costs what a HEAD does, where hashing the whole file
        before the first byte went out cost ~0.7 s a GiB of wall time (bench/HISTORY.md, rgw14).
        """
        from storage.s3_signed import PartDigests, hash_pass

        start = source.tell()
        temp = self._prefixed(f"incoming/{uuid.uuid4().hex}")
        upload_id = self._create_upload(temp)
        hasher = MultiHasher(extra)
        sha256: str | None = None
        try:
            with ThreadPoolExecutor(max(1, self.signed_in_flight), thread_name_prefix="s3-signed-part") as pool:
                send = self._signed_sender(source, start, size, self.signed_part_size, temp, upload_id, progress)
                futures: list[Future[Part]] = []
                parts_hasher = PartDigests(self.signed_part_size, lambda n, d: futures.append(pool.submit(send, n, d)))
                try:
                    hash_pass(source, hasher, parts_hasher)
                    parts_hasher.finish()
                except BaseException:
                    for f in futures:  # the pool would otherwise send every queued part before the abort
                        f.cancel()
                    raise
                if hasher.size != size:
                    grew = f"grew past {size} bytes" if hasher.size > size else f"ended after {hasher.size} bytes"
                    raise OSError(f"the source {grew} of {size} while being hashed: it changed")
                sha256 = hasher.sha256.hexdigest()
                stored = self._head(self.key(sha256)) is not None
                if stored:  # bytes already stored: the parts not yet sent never will be
                    for f in futures:
                        f.cancel()
                parts = [] if stored else _all_parts(futures)
            resp = None if stored else self._complete_signed(source, start, size, temp, upload_id, parts)
        except BaseException as exc:
            self._abort(temp, upload_id)
            if isinstance(exc, VerificationFailed) and sha256 is not None:
                source.seek(start)  # refused: the file changed after the pass read it, or damage on the way?
                actual = sha256_of_stream(source)
                if actual != sha256:
                    raise OSError(f"the source changed after it was hashed (sha256 {sha256}, now {actual})") from exc
            raise
        if resp is None:  # stored already, before the pass ended or by another writer meanwhile
            self._abort(temp, upload_id)
            return self._existing(sha256, hasher, retain_until)
        etag = s3_parts.multipart_etag_of(parts)
        version = s3_verify.verify_stored(
            self, temp, version_of(resp), sha256, full=None, composite=None, etag=etag, size=size
        )
        return self._promote_temporary(temp, version, parts, sha256, None, hasher, retain_until)

    def _create_upload(self, key: str) -> str:
        with s3_errors(self._where, "CreateMultipartUpload"):
            upload_id: str = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        return upload_id

    def _signed_sender(
        self,
        source: BinaryIO,
        start: int,
        size: int,
        part_size: int,
        key: str,
        upload_id: str,
        progress: Progress | None,
    ) -> Callable[[int, bytes], Part]:
        """What sends part ``number`` of the file, read with ``pread``, signed with ``digest``; thread-safe."""
        from storage.s3_signed import FileSlice, KnownDigestBody

        fd = source.fileno()
        lock = threading.Lock()

        def heard(n: int) -> None:
            if progress is not None:
                with lock:
                    progress(n)

        def send(number: int, digest: bytes) -> Part:
            offset = (number - 1) * part_size
            n = min(part_size, size - offset)
            slice_ = cast(BinaryIO, FileSlice(fd, start + offset, n))
            body = KnownDigestBody(slice_, n, digest.hex(), (), heard if progress is not None else None)
            try:
                with s3_errors(self._where, "UploadPart"):
                    resp = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body, ContentLength=n
                    )
            except StoreError:
                if body.changed is not None:
                    raise body.changed from None
                raise
            # The server's MD5 of the bytes it checked against the signature: the object's ETag is made of these.
            return Part(number, resp["ETag"], None, n, bytes.fromhex(str(resp["ETag"]).strip('"')))

        return send

    def _complete_signed(
        self, source: BinaryIO, start: int, size: int, key: str, upload_id: str, parts: list[Part]
    ) -> dict[str, Any] | None:
        """Complete a signed parted upload of the whole file; None where ``key`` was stored meanwhile (aborted)."""
        if os.pread(source.fileno(), 1, start + size):  # before the object exists: a file that grew is not stored
            raise OSError(f"the source grew past {size} bytes while being sent: it changed")
        source.seek(start + size)  # the whole file was read (a counting wrapper reports the position)
        with s3_errors(self._where, "CompleteMultipartUpload"):
            try:
                resp: dict[str, Any] = self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
                    IfNoneMatch="*",
                )
            except ClientError as exc:
                if error_code(exc) not in _EXISTS:
                    raise
                return None
        return resp

    def _put_multipart(
        self,
        source: BinaryIO,
        buffers: BufferPool,
        filled: list[tuple[bytearray, int]],
        hasher: MultiHasher,
        expected: str | None,
        retain_until: datetime | None,
        progress: Progress | None,
    ) -> StoredObject:
        # A known digest goes straight to its final key; an unknown one lands on a temporary key first.
        target = self.key(expected) if expected is not None else self._prefixed(f"incoming/{uuid.uuid4().hex}")
        with s3_errors(self._where, "CreateMultipartUpload"):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=target, **self._sha256_args())[
                "UploadId"
            ]
        try:
            parts = s3_parts.upload_parts(self, source, buffers, filled, hasher, target, upload_id, progress)
            sha256 = _check_expected(hasher, expected)
            with s3_errors(self._where, "CompleteMultipartUpload"):
                try:
                    resp = self.client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=upload_id,
                        MultipartUpload={
                            "Parts": [
                                {
                                    "PartNumber": p.number,
                                    "ETag": p.etag,
                                    **({"ChecksumSHA256": b64(p.digest)} if p.digest is not None else {}),
                                }
                                for p in parts
                            ]
                        },
                        IfNoneMatch="*",
                    )
                except ClientError as exc:
                    if error_code(exc) not in _EXISTS:
                        raise
                    self._abort(target, upload_id)
                    return self._existing(sha256, hasher, retain_until)
        except BaseException:
            self._abort(target, upload_id)
            raise
        version = version_of(resp)
        composite = s3_parts.composite_of(parts)
        etag = s3_parts.multipart_etag_of(parts)
        version = s3_verify.verify_stored(self, target, version, sha256, full=None, composite=composite, etag=etag)
        if expected is not None:
            return self._created(target, sha256, hasher, version, retain_until)
        return self._promote_temporary(target, version, parts, sha256, composite, hasher, retain_until)

    def _promote_temporary(
        self,
        temp: str,
        version: str | None,
        parts: list[Part],
        sha256: str,
        composite: str | None,
        hasher: MultiHasher,
        retain_until: datetime | None,
    ) -> StoredObject:
        """:meth:`_promote`, then the temporary object is deleted whatever came of it."""
        try:
            return self._promote(temp, version, parts, sha256, composite, hasher, retain_until)
        finally:
            try:
                self._delete(temp, version)
            except StoreError as exc:  # a leftover temporary object, not a lost one: report, don't mask
                log.warning("s3.temp_delete_failed key=%s bucket=%s: %s", temp, self.bucket, exc)

    def _promote(
        self,
        temp: str,
        temp_version: str | None,
        parts: list[Part],
        sha256: str,
        composite: str | None,
        hasher: MultiHasher,
        retain_until: datetime | None,
        *,
        etag: str | None = None,
    ) -> StoredObject:
        """Server-side copy of a verified temporary object to its content address, unless already there.

        ``parts`` are the upload's parts (their boundaries and MD5s); none for an object sent whole, whose ``etag``
        (the server's MD5 of it) the copy must keep.
        """
        key = self.key(sha256)
        if self._head(key) is not None:
            return self._existing(sha256, hasher, retain_until)
        source: dict[str, str] = {"Bucket": self.bucket, "Key": temp}
        if temp_version:
            source["VersionId"] = temp_version
        size = hasher.size
        if size <= self.copy_limit or (not parts and size <= MAX_COPY_SIZE):
            with s3_errors(self._where, "CopyObject"):
                resp = self.client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource=source, ChecksumAlgorithm="SHA256"
                )
            version = version_of(resp)
        else:
            version = s3_parts.copy_parts(self, source, key, parts)
        full = b64(hasher.sha256.digest()) if parts else None
        if parts:  # copies keep the part boundaries, and servers that keep MD5s keep the ETag
            etag = s3_parts.multipart_etag_of(parts)
        version = s3_verify.verify_stored(
            self, key, version, sha256, full=full, composite=composite, etag=etag, size=size
        )
        return self._created(key, sha256, hasher, version, retain_until)

    def _created(
        self, key: str, sha256: str, hasher: MultiHasher, version: str | None, retain_until: datetime | None
    ) -> StoredObject:
        retention = None
        if retain_until is not None and self.object_lock_enabled():
            retention = self._retain(key, version, retain_until)
        log.info("s3.put key=%s size=%d version=%s bucket=%s", key, hasher.size, version, self.bucket)
        return StoredObject(
            key=key,
            sha256=sha256,
            size=hasher.size,
            created=True,
            version_id=version,
            retention_until=retention,
            extra_digests=hasher.extra_hexdigests(),
        )

    def _retain(self, key: str, version: str | None, until: datetime) -> datetime:
        """Lock a verified object version until ``until``: set after verification, so bad bytes stay deletable."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version:
            args["VersionId"] = version
        with s3_errors(self._where, "PutObjectRetention"):
            self.client.put_object_retention(
                **args, Retention={"Mode": self.location.lock_mode, "RetainUntilDate": until}
            )
        return until

    # -- verification ------------------------------------------------------------------------------------

    def verify(self, sha256: str) -> bool:
        """Fixity: stream the stored object and re-hash it; a missing object fails."""
        return s3_verify.rehash(self, self.key(sha256), None) == sha256

    # -- reads -------------------------------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        with s3_errors(self._where, "HeadObject"):
            try:
                resp: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    return None
                raise
        return resp

    def head(self, sha256: str) -> ObjectInfo | None:
        """What the store knows of an object (size, version, retention, legal hold), or None when absent."""
        resp = self._head(self.key(sha256))
        if resp is None:
            return None
        return ObjectInfo(
            key=self.key(sha256),
            size=int(resp["ContentLength"]),
            version_id=version_of(resp),
            retention_until=resp.get("ObjectLockRetainUntilDate"),
            legal_hold=resp.get("ObjectLockLegalHoldStatus") == "ON",
        )

    def read(self, sha256: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``start``..``end`` (inclusive), streamed in chunks of at most ``CHUNK_SIZE``."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(sha256)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        with s3_errors(self._where, "GetObject"):
            try:
                body = self.client.get_object(**args)["Body"]
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    raise ObjectMissing(f"object {sha256} is missing from {self._where}") from exc
                if error_code(exc) == "InvalidRange":
                    return
                raise
        with contextlib.closing(body), s3_errors(self._where, "GetObject"):
            yield from body.iter_chunks(CHUNK_SIZE)

    def set_legal_hold(self, sha256: str, on: bool) -> None:
        """Hold or release the object's current version; without Object Lock on the bucket this is a no-op."""
        key = self.key(sha256)
        if self._head(key) is None:
            raise ObjectMissing(f"object {sha256} is missing from {self._where}")
        if not self.object_lock_enabled():
            return  # S3 refuses legal holds on buckets without Object Lock; the service never deletes objects
        with s3_errors(self._where, "PutObjectLegalHold"):
            self.client.put_object_legal_hold(Bucket=self.bucket, Key=key, LegalHold={"Status": "ON" if on else "OFF"})

    def holds_in_store(self) -> bool:
        """True where the bucket has Object Lock: S3 itself then refuses to delete held or retained versions."""
        return self.object_lock_enabled()

    # -- clean-up ----------------------------------------------------------------------------------------

    def iter_objects(self) -> Iterator[ObjectInfo]:
        """Every content object in the bucket under the URL's prefix, in key order."""
        return s3_housekeeping.iter_objects(self)

    def remove_leftovers(self, before: datetime) -> list[Leftover]:
        """Abort our multipart uploads idle since ``before``; delete temporary objects older than it."""
        return s3_housekeeping.remove_leftovers(self, before)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            log.warning(
                "s3.abort_failed key=%s upload_id=%s bucket=%s: %s", key, upload_id, self.bucket, mask_text(str(exc))
            )

    def _delete(self, key: str, version: str | None) -> None:
        """Delete a version for good (a versioned bucket would otherwise keep it behind a delete marker).

        Only temporary keys and versions that just failed verification come here; a held or retained version is
        refused even where the bucket itself would not refuse it (no Object Lock).
        """
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version:
            args["VersionId"] = version
        with s3_errors(self._where, "HeadObject"):
            try:
                head = self.client.head_object(**args)
            except ClientError as exc:
                if error_code(exc) in MISSING_CODES:
                    return
                raise
        until = head.get("ObjectLockRetainUntilDate")
        if head.get("ObjectLockLegalHoldStatus") == "ON" or (until is not None and until > datetime.now(UTC)):
            raise StoreError(f"refusing to delete {key} on {self._where}: it is under legal hold or retention")
        with s3_errors(self._where, "DeleteObject"):
            self.client.delete_object(**args)


def _file_size(source: BinaryIO) -> int | None:
    """The size of a seekable source backed by a regular file, read from its start; None for any other stream."""
    try:
        if not source.seekable() or source.tell() != 0:
            return None
        st = os.fstat(source.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _all_parts(futures: list[Future[Part]]) -> list[Part]:
    """Every part's answer in order; at the first failure the parts not yet started are cancelled."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def _counted(size: int) -> MultiHasher:
    """A hasher that only says ``size``: for a send whose digest the server checked and that needs no extras."""
    hasher = MultiHasher((), with_sha256=False)
    hasher.size = size
    return hasher


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _check_expected(hasher: MultiHasher, expected: str | None) -> str:
    sha256: str = hasher.sha256.hexdigest()
    if expected is not None and sha256 != expected:
        raise DigestMismatch(f"expected sha256 {expected}, got {sha256}")
    return sha256
