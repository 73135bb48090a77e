"""One storage interface over fsspec for file:// and s3:// (and any fsspec protocol).

A :class:`Storage` is a root URL addressed by relative keys. Every copy streams in
chunks and checksums the bytes as they pass; no whole file is ever held in memory
(except objects smaller than one block, sent to S3 in a single PUT). Writes are
atomic: a temporary file renamed into place on POSIX, a multipart upload completed
only after the last byte (and aborted otherwise) on S3, so a crashed copy never
leaves a half-written object under its final key.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from proseo.errors import ChecksumMismatch, StorageError, StorageNotFound
from proseo.storage.base import CHUNK, FileInfo, Hasher, check_key, hash_file
from proseo.storage.retry import with_retries

Progress = Callable[[int], None] | None
REMOTE_CHUNK = 2**20  # write size into remote files
REMOTE_READ = 4 * 2**20  # ranged GET size when reading remote objects
Expected = tuple[int | None, str | None, str | None] | None


def s3_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Facility ``storage_options`` -> s3fs arguments; the AWS environment fills the gaps."""
    opts = dict(options)
    kwargs: dict[str, Any] = {"use_listings_cache": False}
    endpoint = (
        opts.pop("endpoint_url", None)
        or os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL")
    )
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    region = opts.pop("region", None) or opts.pop("region_name", None)
    if region:
        kwargs["client_kwargs"] = {"region_name": region}
    for name in ("key", "secret", "token", "anon"):
        if name in opts:
            kwargs[name] = opts.pop(name)
    kwargs.update(opts)
    return kwargs


def _thread_safe(progress: Progress) -> Progress:
    if progress is None:
        return None
    lock = threading.Lock()

    def report(n: int) -> None:
        with lock:
            progress(n)

    return report


class Storage:
    """A storage root (``file:///abs/dir`` or ``s3://bucket[/prefix]``) addressed by relative keys."""

    def __init__(
        self,
        url: str,
        *,
        options: Mapping[str, Any] | None = None,
        block_size: int = 8 * 2**20,
        max_retries: int = 4,
        retry_backoff: float = 0.5,
    ) -> None:
        self.root_url = url.rstrip("/")
        self.options = dict(options or {})
        self.block_size = block_size
        self.attempts = max_retries + 1
        self.backoff = retry_backoff
        protocol = self.root_url.split("://", 1)[0] if "://" in self.root_url else "file"
        self.protocol = protocol
        if protocol == "file":
            root = self.root_url.removeprefix("file://")
            if not root.startswith("/"):
                raise StorageError("a file:// storage root must be an absolute path", url=url)
            self.fs = fsspec.filesystem("file")
            self._root = root.rstrip("/") or "/"
        else:
            kwargs = s3_options(self.options) if protocol in ("s3", "s3a") else dict(self.options)
            self.fs, root = fsspec.core.url_to_fs(self.root_url, **kwargs)
            self._root = root.rstrip("/")

    @property
    def _read_chunk(self) -> int:
        return CHUNK if self.protocol == "file" else REMOTE_READ

    # --- addressing --------------------------------------------------------------------

    def url_for(self, key: str) -> str:
        return f"{self.root_url}/{check_key(key)}"

    def _path(self, key: str) -> str:
        return f"{self._root}/{check_key(key)}"

    def _retry(self, action: Callable[[], Any], key: str) -> Any:
        return with_retries(action, what=self.url_for(key), attempts=self.attempts, backoff=self.backoff)

    # --- writing -------------------------------------------------------------------------

    def _write_stream(
        self, source: BinaryIO, key: str, progress: Progress, size_hint: int | None
    ) -> FileInfo:
        """Copy a readable stream to ``key`` atomically, hashing as the bytes pass."""
        path, url = self._path(key), self.url_for(key)
        hasher = Hasher()
        if self.protocol == "file":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = f"{path}.part-{uuid.uuid4().hex[:12]}"
            try:
                with open(tmp, "wb") as out:
                    while chunk := source.read(CHUNK):
                        hasher.update(chunk)
                        out.write(chunk)
                        if progress:
                            progress(len(chunk))
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return hasher.info(url)
        if size_hint is not None and size_hint < self.block_size:
            data = source.read()  # smaller than one block: one PUT, no multipart round trips
            hasher.update(data)
            self.fs.pipe_file(path, data)
            if progress:
                progress(len(data))
        else:
            target = self.fs.open(path, "wb", block_size=self.block_size, autocommit=False)
            try:
                # Small writes keep s3fs's part buffer near one block (it copies each part ~3x).
                while chunk := source.read(REMOTE_CHUNK):
                    hasher.update(chunk)
                    target.write(chunk)
                    if progress:
                        progress(len(chunk))
                target.close()
                target.commit()
            except BaseException:
                try:
                    target.discard()
                finally:
                    target.closed = True
                raise
        self.fs.invalidate_cache(path)
        return hasher.info(url)

    def put_file(self, local_path: str | Path, key: str, *, progress: Progress = None) -> FileInfo:
        """Upload a local file under ``key``; returns its size and checksums."""
        local = Path(local_path)

        def attempt() -> FileInfo:
            with local.open("rb") as src:
                return self._write_stream(src, key, progress, local.stat().st_size)

        return self._retry(attempt, key)

    def put_bytes(self, data: bytes, key: str) -> FileInfo:
        """Store a small object (a Job Order, a manifest)."""
        import io

        return self._retry(lambda: self._write_stream(io.BytesIO(data), key, None, len(data)), key)

    def copy_in(
        self,
        source_url: str,
        key: str,
        *,
        source_options: Mapping[str, Any] | None = None,
        progress: Progress = None,
    ) -> FileInfo:
        """Copy an object from any URL (file://, s3://, ...) into this storage under ``key``."""
        protocol = source_url.split("://", 1)[0] if "://" in source_url else "file"
        kwargs = s3_options(source_options or {}) if protocol in ("s3", "s3a") else dict(source_options or {})
        fs, path = fsspec.core.url_to_fs(source_url, **kwargs)

        def attempt() -> FileInfo:
            try:
                size = fs.size(path)
                with fs.open(path, "rb", block_size=self.block_size) as src:
                    return self._write_stream(src, key, progress, size)
            except FileNotFoundError as exc:
                raise StorageNotFound("no such object", url=source_url) from exc

        return self._retry(attempt, key)

    # --- reading -------------------------------------------------------------------------

    def _open_read(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            if self.protocol == "file":
                return open(path, "rb")
            # No read cache: each read is one ranged GET, so memory stays at one chunk.
            return self.fs.open(path, "rb", cache_type="none")
        except FileNotFoundError as exc:
            raise StorageNotFound("no such object", url=self.url_for(key)) from exc

    def get_file(
        self,
        key: str,
        local_path: str | Path,
        *,
        expected_size: int | None = None,
        expected_md5: str | None = None,
        expected_sha256: str | None = None,
        progress: Progress = None,
    ) -> FileInfo:
        """Download ``key`` to a local file, verifying size and checksums when given."""
        local = Path(local_path)
        local.parent.mkdir(parents=True, exist_ok=True)
        url = self.url_for(key)

        def attempt() -> FileInfo:
            hasher = Hasher()
            tmp = local.with_name(f"{local.name}.part-{uuid.uuid4().hex[:12]}")
            try:
                with self._open_read(key) as src, tmp.open("wb") as out:
                    while chunk := src.read(self._read_chunk):
                        hasher.update(chunk)
                        out.write(chunk)
                        if progress:
                            progress(len(chunk))
                info = hasher.info(url)
                _verify(info, expected_size, expected_md5, expected_sha256)
                os.replace(tmp, local)
                return info
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise

        return self._retry(attempt, key)

    def get_bytes(self, key: str) -> bytes:
        def attempt() -> bytes:
            with self._open_read(key) as src:
                return src.read()

        return self._retry(attempt, key)

    def checksum(self, key: str) -> FileInfo:
        """Size and checksums of a stored object (streams it once)."""

        def attempt() -> FileInfo:
            hasher = Hasher()
            with self._open_read(key) as src:
                while chunk := src.read(self._read_chunk):
                    hasher.update(chunk)
            return hasher.info(self.url_for(key))

        return self._retry(attempt, key)

    # --- listing and housekeeping --------------------------------------------------------

    def exists(self, key: str) -> bool:
        path = self._path(key)
        if self.protocol == "file":
            return os.path.isfile(path)
        self.fs.invalidate_cache(path)
        return self._retry(lambda: self.fs.isfile(path), key)

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            return self._retry(lambda: self.fs.size(path), key)
        except FileNotFoundError as exc:
            raise StorageNotFound("no such object", url=self.url_for(key)) from exc

    def delete(self, key: str) -> None:
        """Remove an object; a missing object is fine (deleting is idempotent)."""
        path = self._path(key)
        try:
            if self.protocol == "file":
                os.unlink(path)
            else:
                self._retry(lambda: self.fs.rm_file(path), key)
                self.fs.invalidate_cache(path)
        except FileNotFoundError:
            pass

    def list(self, prefix: str = "") -> Iterator[str]:
        """Relative keys under ``prefix`` (recursive), in name order; temporary files excluded."""
        base = self._root if not prefix else f"{self._root}/{prefix.strip('/')}"
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return iter(())
        start = len(self._root) + 1
        return iter(sorted(p[start:] for p in found if ".part-" not in p.rsplit("/", 1)[-1]))

    # --- many files at once --------------------------------------------------------------

    def put_many(
        self, items: Sequence[tuple[str | Path, str]], *, workers: int = 8, progress: Progress = None
    ) -> list[FileInfo]:
        report = _thread_safe(progress)
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="put") as pool:
            return list(pool.map(lambda item: self.put_file(item[0], item[1], progress=report), items))

    def get_many(
        self,
        items: Sequence[tuple[str, str | Path, Expected]],
        *,
        workers: int = 8,
        progress: Progress = None,
    ) -> list[FileInfo]:
        report = _thread_safe(progress)

        def one(item: tuple[str, str | Path, Expected]) -> FileInfo:
            key, local, expected = item
            size, md5, sha = expected or (None, None, None)
            return self.get_file(
                key, local, expected_size=size, expected_md5=md5, expected_sha256=sha, progress=report
            )

        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="get") as pool:
            return list(pool.map(one, items))

    def __repr__(self) -> str:
        return f"Storage({self.root_url!r})"


def _verify(info: FileInfo, size: int | None, md5: str | None, sha256: str | None) -> None:
    problems = []
    if size is not None and info.size != size:
        problems.append(f"size {info.size} != expected {size}")
    if md5 is not None and info.md5 != md5.lower():
        problems.append(f"MD5 {info.md5} != expected {md5}")
    if sha256 is not None and info.sha256 != sha256.lower():
        problems.append(f"SHA-256 {info.sha256} != expected {sha256}")
    if problems:
        raise ChecksumMismatch("; ".join(problems), url=info.url)


_CACHE: dict[tuple[str, str], Storage] = {}
_CACHE_LOCK = threading.Lock()


def open_storage(url: str, options: Mapping[str, Any] | None = None) -> Storage:
    """A shared Storage per (url, options): filesystems and their connection pools are reused."""
    key = (url.rstrip("/"), json.dumps(dict(options or {}), sort_keys=True, default=str))
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = Storage(url, options=options)
        return _CACHE[key]


__all__ = ["FileInfo", "Storage", "hash_file", "open_storage", "s3_options"]
