"""Object operations per filesystem kind: POSIX folders, S3, any other fsspec protocol.

The :class:`~proseo.storage.storage.Storage` facade deals in keys, checksums and
retries; a backend only moves bytes between a stream and an absolute fsspec path and
answers "is it there, how big, what is below". Each backend keeps the write atomic in
the way its storage allows:

* ``file://`` writes a hidden temporary sibling, fsyncs it and ``os.replace``-s it
  into place (and fsyncs the directory), so a crash never leaves half a file under
  the final name;
* ``s3://`` (in :mod:`proseo.storage.s3`) sends one PUT or a multipart upload that is
  completed only after the last part and aborted on any failure;
* other fsspec protocols write a temporary sibling and ``mv`` it (atomic only as far
  as that filesystem's ``mv`` is).

A write with ``exclusive=True`` is create-only: it never replaces an object that is
already there, and raises :class:`KeyTaken` instead (the facade then compares bytes).
On file:// the temporary file is moved into place by ``renameat2(RENAME_NOREPLACE)``,
or hard-linked to the final name where the kernel or file system lacks that flag;
both fail atomically if the name exists, so of two concurrent writers exactly one
wins. On S3 the PUT or CompleteMultipartUpload carries ``If-None-Match: *``. Other
fsspec protocols have no such primitive: see :meth:`Backend.write` for the window.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import io
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Mapping
from typing import IO, Any

import fsspec

from proseo.errors import StorageError
from proseo.storage.hashing import CHUNK, Readable, copy_stream
from proseo.storage.keys import Root, is_temp_name, temp_name
from proseo.storage.noreplace import KeyTaken, place_new


def _token() -> str:
    return uuid.uuid4().hex[:12]


class Backend:
    """Any fsspec filesystem, by absolute fsspec path (the generic fallback)."""

    #: Chunk size of reads from this backend.
    read_chunk = CHUNK

    def __init__(self, fs: fsspec.AbstractFileSystem, *, block_size: int) -> None:
        self.fs = fs
        self.block_size = block_size

    def norm(self, path: str) -> str:
        """The filesystem's own spelling of a path (memory:// adds a leading slash, ...)."""
        return str(self.fs._strip_protocol(path)).rstrip("/") or "/"

    def write(
        self,
        source: Readable,
        path: str,
        *,
        size_hint: int | None = None,
        chunk: int = CHUNK,
        durable: bool = True,
        exclusive: bool = False,
    ) -> None:
        """Copy ``source`` to ``path``; nothing appears under ``path`` unless all of it arrived.

        ``size_hint`` (if known) lets S3 choose its part size; ``chunk`` is the read size.
        ``durable=False`` lets a caller defer flushing to one :meth:`sync` for many writes.
        ``exclusive=True`` raises :class:`KeyTaken` rather than replace an existing object.

        Here (a filesystem with no create-only move) that is a check before the copy and
        another just before the ``mv``: an object that another writer moves into place
        between the second check and our ``mv`` is replaced. file:// and s3:// have
        backends of their own without that window.
        """
        if exclusive and self.exists(path):
            raise KeyTaken(errno.EEXIST, "an object is already stored here", path)
        parent, _, name = path.rpartition("/")
        tmp = f"{parent}/{temp_name(name, _token())}"
        try:
            with self.fs.open(tmp, "wb") as out:
                copy_stream(source, out.write, chunk)
            if exclusive and self.exists(path):
                raise KeyTaken(errno.EEXIST, "an object is already stored here", path)
            self.fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise
        finally:
            self.fs.invalidate_cache(parent)

    def open_read(self, path: str) -> IO[bytes]:
        """A binary stream of the object (FileNotFoundError if there is none)."""
        return self.fs.open(path, "rb")

    def info(self, path: str) -> dict[str, Any]:
        """fsspec info of an object; FileNotFoundError if it is missing or not an object.

        Deliberately not ``fs.isfile``/``fs.exists``: fsspec's isfile swallows every
        exception, so a dropped connection would read as "no such object".
        """
        self.fs.invalidate_cache(path)
        info = self.fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(path)
        return info

    def size(self, path: str) -> int:
        return int(self.info(path)["size"])

    def exists(self, path: str) -> bool:
        try:
            self.info(path)
        except FileNotFoundError:
            return False
        return True

    def delete(self, path: str) -> None:
        """Remove an object; missing is fine."""
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        finally:
            self.fs.invalidate_cache(path)

    def sync(self, path: str) -> None:
        """Make deferred (``durable=False``) writes durable; nothing to do where writes already are."""

    def find(self, path: str) -> list[str]:
        """Absolute paths of every object at or below ``path`` (temporary files excluded)."""
        self.fs.invalidate_cache(path)
        try:
            found = self.fs.find(path)
        except FileNotFoundError:
            return []
        return [p for p in found if not p.endswith("/") and not is_temp_name(p.rpartition("/")[2])]


class LocalBackend(Backend):
    """A POSIX folder: plain ``os`` calls, temp file + fsync + ``os.replace`` for writes.

    ``fsync=False`` keeps the atomic rename but skips flushing to disk: about five times
    more small files per second, at the price that after a power loss (not a process
    crash) a just-written object may be empty. For scratch areas and benchmarks.
    """

    def __init__(self, fs: fsspec.AbstractFileSystem, *, block_size: int, fsync: bool = True) -> None:
        super().__init__(fs, block_size=block_size)
        self.fsync = fsync

    def write(
        self,
        source: Readable,
        path: str,
        *,
        size_hint: int | None = None,
        chunk: int = CHUNK,
        durable: bool = True,
        exclusive: bool = False,
    ) -> None:
        atomic_local_write(source, path, chunk=chunk, fsync=self.fsync and durable, exclusive=exclusive)

    def sync(self, path: str) -> None:
        """Flush every write on ``path``'s filesystem with one ``syncfs`` (Linux), else ``sync``.

        One journal commit for a whole batch instead of two fsyncs per file: ingestion
        writes a batch with ``durable=False``, calls this, then commits the catalogue, so
        a product is on disk before the catalogue says it exists.
        """
        if not self.fsync:
            return
        _syncfs(path)

    def open_read(self, path: str) -> IO[bytes]:
        return open(path, "rb")  # the caller closes it

    def stage(self, path: str, target: str, *, check: Callable[[str], None]) -> None:
        """Place the object at local ``target`` without copying bytes where possible.

        A hard link when ``target`` is on the same file system (the stored file is
        immutable: writes place whole new files by rename or link, never write in
        place, and product writes never replace an existing object), else a
        kernel-side copy. ``check(staged_path)`` verifies the staged file before it
        appears under ``target``; if it raises, nothing is left behind.
        """
        directory, name = os.path.split(os.path.abspath(target))
        os.makedirs(directory, exist_ok=True)
        tmp = os.path.join(directory, temp_name(name, _token()))
        try:
            try:
                os.link(path, tmp)
            except FileNotFoundError:
                raise
            except OSError:  # another file system, or hard links not allowed: copy in the kernel
                shutil.copyfile(path, tmp)
                os.chmod(tmp, READ_ONLY)  # an input, like the linked ones
            check(tmp)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def info(self, path: str) -> dict[str, Any]:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise FileNotFoundError(path)
        return {"name": path, "size": st.st_size, "type": "file"}

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            if not os.path.isdir(path):  # a "directory" key names no object: nothing to delete
                os.unlink(path)

    def find(self, path: str) -> list[str]:
        if os.path.isfile(path):
            return [] if is_temp_name(os.path.basename(path)) else [path]
        found = []
        for directory, _, files in os.walk(path):
            found += [f"{directory}/{f}" for f in files if not is_temp_name(f)]
        return found


#: Stored products and staged inputs: readable by all, writable by nobody (but root).
READ_ONLY = 0o444


def atomic_local_write(
    source: Readable,
    path: str,
    *,
    check: Callable[[], None] | None = None,
    chunk: int = CHUNK,
    fsync: bool = True,
    exclusive: bool = False,
) -> None:
    """Stream ``source`` into a local file atomically, creating parent directories.

    ``check`` runs after the last byte and before the rename: if it raises, the
    temporary file is removed and ``path`` is left as it was. ``fsync`` makes the data
    and the rename durable before returning (what a stored product needs; a download
    to scratch can be repeated and does without). ``exclusive=True`` never replaces
    an existing file: :class:`KeyTaken` is raised and the temporary file removed; such
    a file (a product's bytes) is also made read-only before it appears, because job
    steps stage their inputs as hard links to it: a processor that wrote into an input
    would otherwise change the stored product.
    """
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, temp_name(name, _token()))
    try:
        with open(tmp, "xb") as out:  # "x": never clobber; mode 0666 & ~umask like any new file
            copy_stream(source, out.write, chunk)
            if exclusive:
                os.fchmod(out.fileno(), READ_ONLY)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        if check is not None:
            check()
        if exclusive:
            place_new(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(directory)


def _syncfs(path: str) -> None:
    while not os.path.exists(path) and path not in ("", "/"):
        path = os.path.dirname(path)  # nothing written yet under the root: sync its filesystem anyway
    libc = _libc()
    if libc is not None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    os.sync()


@functools.cache
def _libc() -> Any:
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        return lib if hasattr(lib, "syncfs") else None
    except OSError:  # pragma: no cover - not Linux
        return None


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def make_backend(root: Root, options: Mapping[str, Any] | None, *, block_size: int) -> Backend:
    """The backend for a parsed root URL."""
    if root.protocol == "file":
        opts = dict(options or {})
        fsync = bool(opts.pop("fsync", True))
        if opts:
            raise StorageError(
                f"unknown options for file:// storage: {sorted(opts)} (only 'fsync')", url=root.url
            )
        return LocalBackend(fsspec.filesystem("file"), block_size=block_size, fsync=fsync)
    if root.protocol in ("s3", "s3a"):
        from proseo.storage.s3 import S3Backend, s3_options  # s3.py builds on Backend (import cycle)

        return S3Backend(fsspec.filesystem("s3", **s3_options(options)), block_size=block_size)
    try:
        fs = fsspec.filesystem(root.protocol, **dict(options or {}))
    except (ImportError, ValueError) as exc:
        raise StorageError(f"unsupported storage protocol {root.protocol!r}: {exc}", url=root.url) from exc
    return Backend(fs, block_size=block_size)


def stream_size(stream: IO[bytes]) -> int | None:
    """Size of an open source stream if it is cheap to know (it lets S3 pick a part size)."""
    size = getattr(stream, "size", None)
    if isinstance(size, int):
        return size
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None
