"""Listing an S3 store's objects, and clearing what crashed uploads left there (open multipart uploads,
temporary ``incoming/`` objects). Kept apart from :mod:`storage.s3_store`, which only puts and reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from storage.objects import Leftover, ObjectInfo
from storage.s3_support import s3_errors

if TYPE_CHECKING:
    from storage.s3_store import S3Store

log = logging.getLogger(__name__)

# The key spaces our puts write: content addresses, and temporary objects of a digest not known up front.
OWN_KEY_SPACES = ("sha256/", "incoming/")


def iter_objects(store: S3Store) -> Iterator[ObjectInfo]:
    """Every object under ``sha256/`` (keys given without the URL's prefix), in S3's key order."""
    prefix = store._prefixed("")
    paginator = store.client.get_paginator("list_objects_v2")
    with s3_errors(store._where, "ListObjectsV2"):
        for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix + "sha256/"):
            for item in page.get("Contents", []):
                yield ObjectInfo(key=item["Key"][len(prefix) :], size=int(item["Size"]))


def remove_leftovers(store: S3Store, before: datetime) -> list[Leftover]:
    """Abort our multipart uploads idle since ``before`` and delete temporary objects written before it."""
    return _abort_uploads(store, before) + _delete_temporaries(store, before)


def _abort_uploads(store: S3Store, before: datetime) -> list[Leftover]:
    prefix = store._prefixed("")
    removed: list[Leftover] = []
    paginator = store.client.get_paginator("list_multipart_uploads")
    with s3_errors(store._where, "ListMultipartUploads"):
        pages = list(paginator.paginate(Bucket=store.bucket, Prefix=prefix))
    for upload in (u for page in pages for u in page.get("Uploads", [])):
        key = upload["Key"][len(prefix) :]
        if not key.startswith(OWN_KEY_SPACES) or upload["Initiated"] >= before:
            continue
        size, last = _parts(store, upload["Key"], upload["UploadId"])
        since = max(last, upload["Initiated"]) if last is not None else upload["Initiated"]
        if since >= before:
            continue  # old, but a part arrived lately: a long upload that is still alive
        with s3_errors(store._where, "AbortMultipartUpload"):
            store.client.abort_multipart_upload(Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        log.info("s3.leftover_upload_aborted key=%s upload_id=%s size=%d", key, upload["UploadId"], size)
        removed.append(Leftover("multipart_upload", key, size, since, upload_id=upload["UploadId"]))
    return removed


def _parts(store: S3Store, key: str, upload_id: str) -> tuple[int, datetime | None]:
    """Bytes uploaded so far and when the last part came."""
    size, last = 0, None
    paginator = store.client.get_paginator("list_parts")
    with s3_errors(store._where, "ListParts"):
        for page in paginator.paginate(Bucket=store.bucket, Key=key, UploadId=upload_id):
            for part in page.get("Parts", []):
                size += int(part["Size"])
                last = part["LastModified"] if last is None else max(last, part["LastModified"])
    return size, last


def _delete_temporaries(store: S3Store, before: datetime) -> list[Leftover]:
    """Temporary objects a crash left between completing an upload and promoting it (every version)."""
    prefix = store._prefixed("")
    removed: list[Leftover] = []
    paginator = store.client.get_paginator("list_object_versions")
    with s3_errors(store._where, "ListObjectVersions"):
        pages = list(paginator.paginate(Bucket=store.bucket, Prefix=prefix + "incoming/"))
    for item in (v for page in pages for v in page.get("Versions", [])):
        if item["LastModified"] >= before:
            continue
        version = item.get("VersionId")
        args: dict[str, Any] = {"Bucket": store.bucket, "Key": item["Key"]}
        if version and version != "null":
            args["VersionId"] = version
        with s3_errors(store._where, "DeleteObject"):
            store.client.delete_object(**args)
        removed.append(Leftover("temp_object", item["Key"][len(prefix) :], int(item["Size"]), item["LastModified"]))
    return removed
