"""Storage roots and the relative keys that address objects under them.

A key is the same string on every backend ("L0/2025/03/01/name.nc"), so a product can
move between a POSIX folder and a bucket without renaming. Keys are checked before
anything touches storage: a key that could climb out of the root ("..", an absolute
path) or that means different things on S3 and POSIX (backslashes, empty or "."
segments) is refused, which is what keeps a key from ever escaping its root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proseo.errors import StorageError

#: Marker in the names of files being written on file:// (hidden, and never a valid key).
TEMP_MARKER = ".proseo-part-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")


def _problem(key: str) -> str | None:
    if not key:
        return "empty"
    if key.startswith("/"):
        return "absolute; keys are relative to the storage root"
    if "\\" in key:
        return "backslashes are not allowed"
    if _CONTROL.search(key):
        return "control characters are not allowed"
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            return "empty, '.' and '..' path segments are not allowed"
        if TEMP_MARKER in segment:
            return f"{TEMP_MARKER!r} is reserved for files being written"
    return None


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise StorageError naming it."""
    if not isinstance(key, str):
        raise StorageError(f"invalid key {key!r}: not a string")
    problem = _problem(key)
    if problem:
        raise StorageError(f"invalid key {key!r}: {problem}")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: "" (everything) or a key, optionally with a trailing slash."""
    if prefix == "":
        return ""
    return check_key(prefix.removesuffix("/") if isinstance(prefix, str) else prefix)


def is_temp_name(name: str) -> bool:
    """True for the temporary names writes use on file:// (hidden from listings)."""
    return TEMP_MARKER in name


def temp_name(name: str, token: str) -> str:
    """Temporary sibling of ``name``: hidden, unique, recognisably ours."""
    return f".{name}{TEMP_MARKER}{token}"


@dataclass(frozen=True)
class Root:
    """A parsed storage root.

    ``url`` is the canonical URL (no trailing slash; ``file:///abs/dir`` for folders)
    and ``path`` the matching fsspec path (``/abs/dir`` or ``bucket/prefix``), to which
    the backend appends keys.
    """

    protocol: str
    url: str
    path: str

    def join(self, key: str) -> str:
        """Absolute URL of a key under this root (the key is checked first)."""
        key = check_key(key)
        return (self.url if self.url.endswith("/") else self.url + "/") + key

    def key_of(self, url: str) -> str:
        """The key of an absolute URL under this root (the inverse of :meth:`join`).

        A URL outside the root, or one whose remainder is not a valid key, is a StorageError.
        """
        base = self.url.rstrip("/") + "/"
        if not url.startswith(base):
            raise StorageError(f"not under the storage root {self.url}", url=url)
        return check_key(url[len(base) :])


def parse_root(url: str) -> Root:
    """Split a root URL into protocol, canonical URL and fsspec path.

    A bare absolute path is taken as ``file://``. The root itself must not contain
    "." or ".." segments either, so the canonical form is unambiguous.
    """
    if not isinstance(url, str) or not url:
        raise StorageError(f"invalid storage root {url!r}")
    match = _SCHEME.match(url)
    protocol, rest = (match.group(1).lower(), match.group(2)) if match else ("file", url)
    protocol = "file" if protocol == "local" else protocol
    segments = [s for s in rest.split("/") if s]
    if any(s in (".", "..") for s in segments) or "\\" in rest or _CONTROL.search(rest):
        raise StorageError(
            "the storage root must not contain '.', '..', backslashes or control characters", url=url
        )
    if protocol == "file":
        if not rest.startswith("/"):
            raise StorageError("a file:// storage root must be an absolute path (file:///abs/dir)", url=url)
        path = "/" + "/".join(segments)  # also folds "//" like the kernel does
        canonical = "file://" + path
    else:
        if not segments:
            raise StorageError("the storage root names no bucket or location", url=url)
        path = rest.strip("/")
        canonical = f"{protocol}://{path}"
    return Root(protocol, canonical, path)
