"""File facts (size, MD5, SHA-256, XXH3-128) computed on the bytes as they pass.

Every copy reads its source through a :class:`HashingReader`, so the checksums come
out of the same single pass that moves the data: verifying a product costs no second
read, which matters when products are tens of gigabytes on object storage.

Three digests, three jobs: MD5 is what the ESA interfaces ask for (the Checksum field),
SHA-256 is what we trust against anyone who could alter stored bytes, and XXH3-128
(``xxh128``, as the ``xxh128sum`` tool prints it) is what staging verifies every
byte with: about 6-14 GB/s on one core here against 1 GB/s for SHA-256 (SHA-NI) and
0.6 GB/s for MD5, so checking an input no longer costs more than reading it. It
guards against accidental corruption (a flipped bit, a truncated or swapped file),
not against a forger, which is why SHA-256 is still recorded and compared wherever
bytes enter the archive.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import xxhash

from proseo.errors import ChecksumMismatch

#: Chunk size of streaming copies: large enough for throughput, small enough for memory.
CHUNK = 8 * 2**20

Progress = Callable[[int], None]


class Readable(Protocol):
    """Anything with ``read(n) -> bytes`` (local files, fsspec files, BytesIO)."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class FileInfo:
    """Where a file is and what it contains: the facts the catalogue records.

    A digest that was not computed (a verification computes only what it checks) is "".
    ``already_stored`` is true when a create-only write found these very bytes under
    its key and wrote nothing; it is not a fact about the file, so equality ignores it.
    """

    url: str
    size: int
    md5: str
    sha256: str
    xxh128: str = ""
    already_stored: bool = field(default=False, compare=False)


class Digests(NamedTuple):
    """Which digests a pass computes."""

    md5: bool = True
    sha256: bool = True
    xxh128: bool = True


ALL = Digests()


def for_staging(md5: str | None, sha256: str | None, xxh128: str | None) -> Digests:
    """What zero-copy staging computes to verify a local file: the fastest digest expected.

    XXH3-128 alone when the catalogue has it; else SHA-256 alone (products catalogued
    before XXH3-128 was recorded); else MD5; with nothing expected, everything (the
    caller wants the facts).
    """
    if xxh128 is not None:
        return Digests(md5=False, sha256=False, xxh128=True)
    if sha256 is not None:
        return Digests(md5=False, sha256=True, xxh128=False)
    if md5 is not None:
        return Digests(md5=True, sha256=False, xxh128=False)
    return ALL


def for_download(xxh128: str | None) -> Digests:
    """What a streamed download (S3) computes: MD5 (S3's ETag of a single PUT) and XXH3-128
    always, SHA-256 only for products without an XXH3-128 to check."""
    return Digests(md5=True, sha256=xxh128 is None, xxh128=True)


def file_url(path: str | os.PathLike[str]) -> str:
    """``file://`` URL of a local path, absolute and not percent-encoded (as fsspec spells it)."""
    return "file://" + os.path.abspath(os.fspath(path))


class Hasher:
    """The digests of ``digests`` (all by default), fed chunk by chunk in one pass."""

    def __init__(self, digests: Digests = ALL) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False) if digests.md5 else None
        self._sha256 = hashlib.sha256() if digests.sha256 else None
        self._xxh128 = xxhash.xxh3_128() if digests.xxh128 else None
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        if self._md5 is not None:
            self._md5.update(chunk)
        if self._sha256 is not None:
            self._sha256.update(chunk)
        if self._xxh128 is not None:
            self._xxh128.update(chunk)
        self.size += len(chunk)

    def info(self, url: str) -> FileInfo:
        return FileInfo(
            url,
            self.size,
            self._md5.hexdigest() if self._md5 is not None else "",
            self._sha256.hexdigest() if self._sha256 is not None else "",
            self._xxh128.hexdigest() if self._xxh128 is not None else "",
        )


class HashingReader:
    """Wraps a source stream: hashes and reports every chunk read through it."""

    def __init__(self, source: Readable, progress: Progress | None = None, digests: Digests = ALL) -> None:
        self._source = source
        self._progress = progress
        self.hasher = Hasher(digests)

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if data:
            self.hasher.update(data)
            if self._progress is not None:
                self._progress(len(data))
        return data

    def info(self, url: str) -> FileInfo:
        return self.hasher.info(url)


def read_exactly(source: Readable, size: int) -> bytes:
    """Read ``size`` bytes, fewer only at end of stream (raw streams may return short reads)."""
    data = source.read(size)
    if not data or len(data) >= size:
        return data
    parts, got = [data], len(data)
    while got < size:
        more = source.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def copy_stream(source: Readable, target: Callable[[bytes], object], chunk: int = CHUNK) -> int:
    """Copy chunk by chunk until end of stream; returns the number of bytes copied."""
    total = 0
    while True:
        data = source.read(chunk)
        if not data:
            return total
        target(data)
        total += len(data)
        del data  # release this chunk before reading the next: one chunk in memory, not two


def hash_local(
    path: str | os.PathLike[str], url: str, *, digests: Digests = ALL, progress: Progress | None = None
) -> FileInfo:
    """Size and the chosen digests of a local file (those not chosen are "").

    Reads into one reused buffer: a fresh 8 MiB ``bytes`` per chunk would cost the
    kernel a page fault for every page of every chunk, more than XXH3-128 itself costs.
    """
    hasher = Hasher(digests)
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while n := handle.readinto(buffer):
            hasher.update(view[:n])
            if progress is not None:
                progress(n)
    return hasher.info(url)


def hash_file(path: str | os.PathLike[str]) -> FileInfo:
    """Size and every checksum of a local file, streamed (its url is the file:// URL)."""
    return hash_local(path, file_url(path))


def verify(
    info: FileInfo,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    xxh128: str | None = None,
) -> None:
    """Raise ChecksumMismatch naming the URL and every fact that differs from what was expected.

    A digest that ``info`` lacks ("": not computed in this pass) is not compared, but
    when digests are expected at least one of them must have been computed: a pass that
    checked none fails rather than let unverified bytes through.
    """
    problems = []
    if size is not None and info.size != size:
        problems.append(f"size {info.size} != expected {size}")
    wanted = checked = 0
    for name, got, want in (
        ("MD5", info.md5, md5),
        ("SHA-256", info.sha256, sha256),
        ("XXH3-128", info.xxh128, xxh128),
    ):
        wanted += want is not None
        if want is not None and got:
            checked += 1
            if got != want.strip().lower():
                problems.append(f"{name} {got} != expected {want}")
    if wanted and not checked:
        problems.append("none of the expected checksums was computed")
    if problems:
        raise ChecksumMismatch("; ".join(problems), url=info.url)
