"""Value types of the storage layer: file facts, key rules, hashing while copying.

Checksums are computed on the bytes as they pass (one read, no second pass), which is
what lets ingestion and stage-in verify files at the speed of a plain copy.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from proseo.errors import StorageError

CHUNK = 8 * 2**20
_BAD_KEY_CHARS = re.compile(r"[\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class FileInfo:
    """Where a file is and what it contains."""

    url: str
    size: int
    md5: str
    sha256: str


class Hasher:
    """MD5 (required by the ESA interfaces) and SHA-256, fed chunk by chunk."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        self._md5.update(chunk)
        self._sha.update(chunk)
        self.size += len(chunk)

    def info(self, url: str) -> FileInfo:
        return FileInfo(url, self.size, self._md5.hexdigest(), self._sha.hexdigest())


def hash_file(path: str | Path) -> FileInfo:
    """Size and checksums of a local file (url is its file:// URL)."""
    path = Path(path).resolve()
    hasher = Hasher()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            hasher.update(chunk)
    return hasher.info(path.as_uri())


def check_key(key: str) -> str:
    """Refuse keys that could escape the storage root or mean different things on S3 and POSIX."""
    if not isinstance(key, str) or not key:
        raise StorageError(f"invalid key {key!r}: empty")
    if key.startswith("/"):
        raise StorageError(f"invalid key {key!r}: keys are relative to the storage root")
    if _BAD_KEY_CHARS.search(key):
        raise StorageError(f"invalid key {key!r}: backslashes and control characters are not allowed")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid key {key!r}: empty, '.' or '..' path segments are not allowed")
    return key
