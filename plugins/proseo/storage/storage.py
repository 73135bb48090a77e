"""The storage facade: a root URL addressed by relative keys, the same on every backend.

Ingestion, stage-in and stage-out call only this. Every transfer streams in chunks
and checksums the bytes as they pass; every write is atomic and, unless asked to
replace, create-only (a stored object is never replaced by other bytes); every operation is
retried on transient errors (the whole transfer, with exponential backoff and jitter)
and ends either in a result or in a :class:`~proseo.errors.StorageError` that names the
URL. Progress callbacks receive byte counts; when an attempt fails, the bytes it had
reported are taken back with one negative call, so a progress bar never overshoots.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any, TypeVar

from proseo.errors import ProseoError, StorageError, StorageNotFound
from proseo.storage import createonly
from proseo.storage.backends import Backend, LocalBackend, atomic_local_write, make_backend, stream_size
from proseo.storage.createonly import MISSING as _MISSING
from proseo.storage.createonly import Source, SourceOpener, discard
from proseo.storage.hashing import (
    CHUNK,
    FileInfo,
    HashingReader,
    Progress,
    copy_stream,
    for_download,
    for_staging,
    hash_local,
    verify,
)
from proseo.storage.keys import check_prefix, parse_root
from proseo.storage.parallel import Expected, expected_facts, in_parallel, serialised
from proseo.storage.retry import GaveUp, with_retries
from proseo.storage.s3 import S3_MIN_PART

T = TypeVar("T")
LocalPath = str | os.PathLike[str]


class Storage:
    """A storage root (``file:///abs/dir`` or ``s3://bucket[/prefix]``) addressed by relative keys.

    ``options`` go to the filesystem (for S3: endpoint_url, region, key, secret, anon,
    and anything s3fs accepts; for file:// only ``fsync``, default true).
    ``block_size`` is the S3 part size (>= 5 MiB);
    ``max_retries`` and ``retry_backoff`` govern retries of transient failures.
    Instances are thread-safe; share them through :func:`open_storage`.
    """

    def __init__(
        self,
        url: str,
        *,
        options: Mapping[str, Any] | None = None,
        block_size: int = 16 * 2**20,
        max_retries: int = 4,
        retry_backoff: float = 0.5,
    ) -> None:
        self._root = parse_root(url)
        self.root_url: str = self._root.url
        self.protocol: str = self._root.protocol
        self.options: dict[str, Any] = dict(options or {})
        self.block_size = block_size
        self.max_retries = max(0, max_retries)
        self.retry_backoff = retry_backoff
        self._backend: Backend = make_backend(self._root, self.options, block_size=block_size)
        self._base = self._backend.norm(self._root.path)

    def __repr__(self) -> str:
        return f"Storage({self.root_url!r})"

    # --- addressing ----------------------------------------------------------------------

    def url_for(self, key: str) -> str:
        """Absolute URL of ``key`` (raises StorageError for an invalid key)."""
        return self._root.join(key)

    def key_of(self, url: str) -> str:
        """The key of an absolute URL stored under this root (StorageError if it is elsewhere)."""
        return self._root.key_of(url)

    def _locate(self, key: str) -> tuple[str, str]:
        url = self._root.join(key)  # validates the key
        return url, f"{self._base.rstrip('/')}/{key}"

    def _run(self, url: str, action: Callable[[Progress | None], T], progress: Progress | None = None) -> T:
        """Run one operation with retries; turn whatever escapes into a StorageError naming ``url``."""

        def attempt() -> T:
            sent = 0

            def report(n: int) -> None:
                nonlocal sent
                sent += n
                progress(n)  # type: ignore[misc]  # only handed out when progress is set

            try:
                return action(report if progress is not None else None)
            except BaseException:
                if sent and progress is not None:
                    progress(-sent)  # take back what this failed attempt reported
                raise

        try:
            return with_retries(attempt, what=url, max_retries=self.max_retries, backoff=self.retry_backoff)
        except GaveUp as exc:
            raise StorageError(str(exc), url=url) from exc.last
        except ProseoError:
            raise
        except Exception as exc:  # local-side errors too; the message names the local path
            raise StorageError(f"{type(exc).__name__}: {exc}", url=url) from exc

    @staticmethod
    def _open(backend: Backend, path: str, url: str) -> IO[bytes]:
        """Open an object for reading; a missing one is StorageNotFound (never retried)."""
        try:
            return backend.open_read(path)
        except _MISSING as exc:
            raise StorageNotFound("no such object", url=url) from exc

    # --- writing -------------------------------------------------------------------------
    #
    # Writes are create-only unless ``replace=True``: stored products are immutable
    # (zero-copy staging hard-links them, the catalogue records their checksums), so a
    # key that already holds the same bytes (size and SHA-256) is left alone and the
    # result says ``already_stored`` (a retried job step or a repeated ingestion stays
    # idempotent), and a key that holds other bytes raises ObjectExists. Only files
    # that belong to one try (processor logs, Job Orders) are written with replace=True.

    def put_file(
        self,
        local_path: LocalPath,
        key: str,
        *,
        progress: Progress | None = None,
        durable: bool = True,
        replace: bool = False,
    ) -> FileInfo:
        """Upload a local file under ``key``; returns its URL, size and checksums.

        A local file that cannot be opened raises the plain OSError (it is the caller's
        file, not a storage object); storage failures raise StorageError. With
        ``durable=False`` the write is atomic but its flush to disk waits for :meth:`sync`
        (one flush for a whole batch instead of one per file). Create-only unless
        ``replace=True`` (see above).
        """
        url, path = self._locate(key)
        with open(local_path, "rb") as src:
            size = os.fstat(src.fileno()).st_size

            @contextlib.contextmanager
            def source() -> Iterator[Source]:
                src.seek(0)
                yield Source(src, size, CHUNK)

            return self._write(key, url, path, source, progress, durable=durable, replace=replace)

    def put_bytes(self, data: bytes, key: str, *, replace: bool = False) -> FileInfo:
        """Store a small object (a Job Order, a manifest) from memory; create-only unless ``replace``."""
        url, path = self._locate(key)

        @contextlib.contextmanager
        def source() -> Iterator[Source]:
            yield Source(io.BytesIO(data), len(data), CHUNK)

        return self._write(key, url, path, source, None, durable=True, replace=replace)

    def copy_in(
        self,
        source_url: str,
        key: str,
        *,
        source_options: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        replace: bool = False,
    ) -> FileInfo:
        """Copy an object from any URL (file://, s3://, ...) under ``key``, streaming and hashing it."""
        url, path = self._locate(key)
        source_root = parse_root(source_url)
        backend = make_backend(source_root, source_options, block_size=max(self.block_size, S3_MIN_PART))
        source_path = backend.norm(source_root.path)

        @contextlib.contextmanager
        def source() -> Iterator[Source]:
            with self._open(backend, source_path, source_root.url) as src:
                yield Source(src, stream_size(src), backend.read_chunk)

        return self._write(key, url, path, source, progress, durable=True, replace=replace)

    def _write(
        self,
        key: str,
        url: str,
        path: str,
        source: SourceOpener,
        progress: Progress | None,
        *,
        durable: bool,
        replace: bool,
    ) -> FileInfo:
        """One write with retries (:func:`proseo.storage.createonly.write`)."""

        def action(report: Progress | None) -> FileInfo:
            return createonly.write(
                self._backend,
                source,
                key=key,
                url=url,
                path=path,
                root=self.root_url,
                report=report,
                durable=durable,
                replace=replace,
                look_first_from=self.block_size,
            )

        return self._run(url, action, progress)

    def sync(self) -> None:
        """Make every write so far with ``durable=False`` durable (one ``syncfs`` on file://)."""
        self._run(self.root_url, lambda _: self._backend.sync(self._base))

    # --- reading -------------------------------------------------------------------------

    def get_file(
        self,
        key: str,
        local_path: LocalPath,
        *,
        expected_size: int | None = None,
        expected_md5: str | None = None,
        expected_sha256: str | None = None,
        expected_xxh128: str | None = None,
        progress: Progress | None = None,
        link: bool = False,
    ) -> FileInfo:
        """Download ``key`` to ``local_path`` (atomically), verifying the expected facts given.

        On a mismatch nothing is left under ``local_path`` (the partial file is removed)
        and ChecksumMismatch names the URL and what differed. A download checks MD5 and
        XXH3-128 as the bytes stream, and SHA-256 instead of XXH3-128's speed only when no
        XXH3-128 is expected (:func:`~proseo.storage.hashing.for_download`); digests it did
        not compute are "" in the result. ``link=True`` lets a file:// storage stage
        without copying (:meth:`LocalBackend.stage`); every byte is still read and
        verified, by the fastest digest expected alone (XXH3-128, else SHA-256).
        """
        url, path = self._locate(key)
        expected = (expected_size, expected_md5, expected_sha256, expected_xxh128)
        if link and isinstance(self._backend, LocalBackend):
            return self._stage_local(url, path, local_path, expected, progress)
        digests = for_download(expected_xxh128)

        def action(report: Progress | None) -> FileInfo:
            with self._open(self._backend, path, url) as src:
                reader = HashingReader(src, report, digests)

                def check() -> None:
                    verify(
                        reader.info(url),
                        size=expected_size,
                        md5=expected_md5,
                        sha256=expected_sha256,
                        xxh128=expected_xxh128,
                    )

                # A download is a staging copy that can be repeated: atomic, but not fsynced.
                atomic_local_write(
                    reader, os.fspath(local_path), check=check, chunk=self._backend.read_chunk, fsync=False
                )
            return reader.info(url)

        return self._run(url, action, progress)

    def _stage_local(
        self,
        url: str,
        path: str,
        local_path: LocalPath,
        expected: tuple[int | None, str | None, str | None, str | None],
        progress: Progress | None,
    ) -> FileInfo:
        backend = self._backend
        assert isinstance(backend, LocalBackend)
        size, md5, sha256, xxh128 = expected
        digests = for_staging(md5, sha256, xxh128)
        facts: list[FileInfo] = []

        def check(staged: str) -> None:
            info = hash_local(staged, url, digests=digests, progress=progress)
            verify(info, size=size, md5=md5, sha256=sha256, xxh128=xxh128)
            facts.append(info)

        def action(_: Progress | None) -> FileInfo:
            try:
                backend.stage(path, os.fspath(local_path), check=check)
            except FileNotFoundError as exc:
                raise StorageNotFound("no such object", url=url) from exc
            return facts[-1]

        return self._run(url, action)

    def get_bytes(self, key: str) -> bytes:
        """The whole content of a small object."""
        url, path = self._locate(key)

        def action(_: Progress | None) -> bytes:
            with self._open(self._backend, path, url) as src:
                return src.read()

        return self._run(url, action)

    def read_range(self, key: str, start: int, stop: int, chunk: int = 2**20) -> Iterator[bytes]:
        """Bytes ``[start, stop)`` of an object, streamed in chunks (HTTP Range downloads).

        Opening is retried like every operation; a failure mid-stream ends the stream
        with a StorageError (the client asks again from where it stopped).
        """
        url, path = self._locate(key)
        src = self._run(url, lambda _: self._open(self._backend, path, url))
        try:
            src.seek(start)
            left = max(0, stop - start)
            while left:
                data = src.read(min(chunk, left))
                if not data:
                    break
                left -= len(data)
                yield data
        except OSError as exc:
            raise StorageError(f"reading bytes {start}..{stop}: {exc}", url=url) from exc
        finally:
            src.close()

    def checksum(self, key: str) -> FileInfo:
        """Size and checksums of a stored object, computed by streaming it once."""
        url, path = self._locate(key)

        def action(_: Progress | None) -> FileInfo:
            with self._open(self._backend, path, url) as src:
                reader = HashingReader(src)
                copy_stream(reader, discard, self._backend.read_chunk)
            return reader.info(url)

        return self._run(url, action)

    # --- facts and housekeeping ------------------------------------------------------------

    def exists(self, key: str) -> bool:
        """True if an object is stored under ``key`` (asks the storage, never a cache)."""
        url, path = self._locate(key)
        return self._run(url, lambda _: self._backend.exists(path))

    def size(self, key: str) -> int:
        """Size in bytes of the object under ``key`` (StorageNotFound if there is none)."""
        url, path = self._locate(key)

        def action(_: Progress | None) -> int:
            try:
                return self._backend.size(path)
            except _MISSING as exc:
                raise StorageNotFound("no such object", url=url) from exc

        return self._run(url, action)

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; a missing object is fine (deleting is idempotent)."""
        url, path = self._locate(key)
        self._run(url, lambda _: self._backend.delete(path))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Relative keys at or below ``prefix`` (a key or "" for all; recursive, sorted).

        ``prefix`` matches whole path segments: "a" lists "a/1.bin", not "ab.bin".
        Objects still being written (temporary names on file://) are never listed.
        """
        prefix = check_prefix(prefix)
        base = self._base.rstrip("/")
        where = f"{base}/{prefix}" if prefix else (base or "/")
        url = self._root.join(prefix) if prefix else self.root_url
        paths = self._run(url, lambda _: self._backend.find(where))
        start = len(base) + 1
        return iter(sorted(p[start:] for p in paths if p.startswith(base + "/")))

    # --- many files at once ----------------------------------------------------------------

    def put_many(
        self,
        items: Sequence[tuple[LocalPath, str]],
        *,
        workers: int = 8,
        progress: Progress | None = None,
        replace: bool = False,
    ) -> builtins.list[FileInfo]:  # a bare "list" here would mean Storage.list
        """Upload (local_path, key) pairs in parallel; results in the order of ``items``.

        Create-only unless ``replace`` (see :meth:`put_file`). The first failure is
        raised once the transfers already running have finished (those not yet started
        are cancelled); objects that did arrive stay stored.
        """
        report = serialised(progress)
        return in_parallel(
            [
                functools.partial(self.put_file, local, key, progress=report, replace=replace)
                for local, key in items
            ],
            workers,
        )

    def get_many(
        self,
        items: Sequence[tuple[str, LocalPath, Expected]],
        *,
        workers: int = 8,
        progress: Progress | None = None,
        link: bool = False,
    ) -> builtins.list[FileInfo]:  # a bare "list" here would mean Storage.list
        """Download (key, local_path, expected) triples in parallel, verifying what is expected."""
        report = serialised(progress)

        def one(key: str, local: LocalPath, expected: Expected) -> FileInfo:
            size, md5, sha256, xxh128 = expected_facts(expected)
            return self.get_file(
                key,
                local,
                expected_size=size,
                expected_md5=md5,
                expected_sha256=sha256,
                expected_xxh128=xxh128,
                progress=report,
                link=link,
            )

        return in_parallel([functools.partial(one, *item) for item in items], workers)


_CACHE: dict[tuple[str, str], Storage] = {}
_CACHE_LOCK = threading.Lock()


def open_storage(url: str, options: Mapping[str, Any] | None = None) -> Storage:
    """The shared Storage of a (url, options) pair: filesystems and connection pools are reused."""
    cache_key = (parse_root(url).url, json.dumps(dict(options or {}), sort_keys=True, default=repr))
    with _CACHE_LOCK:
        storage = _CACHE.get(cache_key)
        if storage is None:
            storage = _CACHE[cache_key] = Storage(url, options=options)
        return storage
