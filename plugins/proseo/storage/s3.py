"""S3 through s3fs: explicit uploads, streamed downloads, configuration from options and environment.

s3fs's file objects would do, but not well enough for products of many gigabytes: its
writer buffers a block and copies it several times, and its reader issues one ranged
GET per chunk. Here uploads are a single PUT when the object fits in one part, else a
multipart upload that is completed only after the last part and aborted on any
failure (S3 shows the object only on completion, so a failed copy leaves nothing);
downloads are one streamed GET read in bounded pieces. Everything still goes through
s3fs's client (``call_s3``), so its session, credentials and per-request retries apply.

Create-only writes use S3's conditional writes: ``If-None-Match: *`` on the PUT, or on
CompleteMultipartUpload (the parts are invisible until then), so the object store
itself decides which of concurrent writers wins; the loser gets 412 PreconditionFailed
(:class:`~proseo.storage.noreplace.KeyTaken` here) and its multipart upload is aborted.
A 409 ConditionalRequestConflict (a concurrent write still in progress) is transient
and the whole upload is retried. AWS S3 has honoured the header since August 2024 and
moto 5 does (sequentially: see :mod:`proseo.devtools.s3server`); an S3-compatible server
that ignores it gives no such guarantee, so check it before relying on one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Mapping
from typing import IO, Any

import fsspec
import fsspec.asyn

from proseo.errors import StorageError
from proseo.storage.backends import Backend
from proseo.storage.hashing import CHUNK, Readable, read_exactly
from proseo.storage.noreplace import KeyTaken

log = logging.getLogger(__name__)

S3_MIN_PART = 5 * 2**20
S3_MAX_PARTS = 10_000


def s3_part_size(block_size: int, size_hint: int | None) -> int:
    """The block size, grown (in MiB steps) where a known size would need > 10,000 parts."""
    if size_hint is None or size_hint <= block_size * S3_MAX_PARTS:
        return block_size
    return -(-size_hint // (S3_MAX_PARTS * 2**20)) * 2**20


class S3Backend(Backend):
    """S3 through s3fs: explicit single PUT / multipart upload, one streamed GET per read."""

    read_chunk = 4 * 2**20

    def __init__(self, fs: fsspec.AbstractFileSystem, *, block_size: int) -> None:
        if block_size < S3_MIN_PART:
            raise StorageError(f"block_size {block_size} is below S3's minimum part size {S3_MIN_PART}")
        super().__init__(fs, block_size=block_size)

    def write(
        self,
        source: Readable,
        path: str,
        *,
        size_hint: int | None = None,
        chunk: int = CHUNK,
        durable: bool = True,  # a completed PUT or multipart upload is durable already
        exclusive: bool = False,
    ) -> None:
        bucket, key, _ = self.fs.split_path(path)
        part_size = s3_part_size(self.block_size, size_hint)
        condition = {"IfNoneMatch": "*"} if exclusive else {}
        first = [read_exactly(source, part_size)]  # a list, so _multipart can drop the only reference
        try:
            if len(first[0]) < part_size:  # fits in one part: a single PUT is atomic on its own
                self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=first.pop(), **condition)
                return
            self._multipart(source, bucket, key, first, part_size, condition)
        except OSError as exc:
            if exclusive and precondition_failed(exc):
                raise KeyTaken(errno.EEXIST, "an object is already stored here", path) from exc
            raise
        finally:
            self.fs.invalidate_cache(path)

    def _multipart(
        self,
        source: Readable,
        bucket: str,
        key: str,
        first: list[bytes],
        part_size: int,
        condition: dict[str, str],
    ) -> None:
        upload = self.fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            data: bytes | None = first.pop()
            while data:
                if len(parts) == S3_MAX_PARTS:
                    raise StorageError(
                        f"more than {S3_MAX_PARTS} parts of {part_size} bytes; raise block_size",
                        url=f"s3://{bucket}/{key}",
                    )
                number = len(parts) + 1
                out = self.fs.call_s3(
                    "upload_part", Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=data
                )
                parts.append({"PartNumber": number, "ETag": out["ETag"]})
                data = None  # drop the sent part before reading the next: one part in memory
                data = read_exactly(source, part_size)
            self.fs.call_s3(
                "complete_multipart_upload",
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            try:
                self.fs.call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload)
            except Exception as exc:  # the original error matters more; S3 lifecycle rules clean up
                log.warning("s3://%s/%s: could not abort multipart upload %s: %s", bucket, key, upload, exc)
            raise

    def open_read(self, path: str) -> IO[bytes]:
        # One streamed GET rather than s3fs's file object, whose ranged GETs cost a
        # request per chunk and hold each chunk about three times over (aiohttp, botocore).
        return S3Stream(self.fs, path)  # type: ignore[return-value]  # read/close/context suffice


def precondition_failed(exc: BaseException) -> bool:
    """True if S3 answered 412 PreconditionFailed (s3fs raises FileExistsError or EINVAL for it)."""
    current: BaseException | None = exc
    while current is not None:
        response = getattr(current, "response", None)  # botocore's ClientError, s3fs keeps it as cause
        if isinstance(response, dict):
            code = (response.get("Error") or {}).get("Code")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return code == "PreconditionFailed" or status == 412
        current = current.__cause__
    return False


class S3Stream:
    """The body of one GET, read synchronously in bounded pieces on s3fs's event loop."""

    def __init__(self, fs: Any, path: str) -> None:
        bucket, key, version = fs.split_path(path)
        extra = {"VersionId": version} if version else {}
        response = fs.call_s3("get_object", Bucket=bucket, Key=key, **extra)
        self._loop = fs.loop
        self._body = response["Body"]
        self.size: int | None = response.get("ContentLength")

    def read(self, size: int = -1, /) -> bytes:
        return fsspec.asyn.sync(self._loop, self._read, size)

    async def _read(self, size: int) -> bytes:
        if size < 0:
            return bytes(await self._body.read())
        parts: list[bytes] = []
        got = 0
        while got < size:  # aiohttp hands out what it has buffered; collect up to ``size``
            data = await self._body.read(min(size - got, 2**20))
            if not data:
                break
            parts.append(data)
            got += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            fsspec.asyn.sync(self._loop, self._body.aclose)

    def __enter__(self) -> S3Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def s3_options(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Facility ``storage_options`` -> s3fs arguments; the usual AWS environment fills the gaps.

    Understands ``endpoint_url``, ``region`` (or ``region_name``), ``key``, ``secret``,
    ``token``, ``anon``; everything else goes to s3fs unchanged. The endpoint falls back
    to ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; credentials and region to what
    botocore reads itself (``AWS_ACCESS_KEY_ID``, ``AWS_DEFAULT_REGION``, profiles ...).
    Listing caches are off: another process may add or delete objects at any time.
    """
    opts = dict(options or {})
    client_kwargs = dict(opts.pop("client_kwargs", None) or {})
    endpoint = (
        opts.pop("endpoint_url", None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    region = opts.pop("region", None) or opts.pop("region_name", None)
    if endpoint:
        opts["endpoint_url"] = endpoint
    if region:
        client_kwargs.setdefault("region_name", region)
    if client_kwargs:
        opts["client_kwargs"] = client_kwargs
    opts.setdefault("use_listings_cache", False)
    return opts
