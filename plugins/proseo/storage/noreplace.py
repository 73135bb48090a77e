"""Create-only placement of a finished temporary file on a POSIX file system.

``os.replace`` would silently replace an object another writer placed a moment
earlier. ``renameat2(RENAME_NOREPLACE)`` (Linux 3.15+, glibc 2.28+, most local file
systems) moves the file only if the name is free; where the kernel, the C library or
the file system lacks it, ``link(2)`` gives the same guarantee (it fails with EEXIST
if the name exists) at the cost of removing the temporary name afterwards. Either way
the decision is the kernel's, atomic, so of concurrent writers exactly one wins.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
from typing import Any


class KeyTaken(FileExistsError):
    """A create-only write found an object under its path (the writer removes its own temporary file)."""


#: renameat2(2) flag: fail with EEXIST instead of replacing the target.
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
#: renameat2 errors that mean "this kernel or file system cannot do it", not "it failed".
_NO_RENAMEAT2 = frozenset({errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP})
#: link(2) errors that mean "this file system has no hard links".
_NO_LINK = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


def place_new(tmp: str, path: str) -> None:
    """Move ``tmp`` to ``path`` unless something already is there (then KeyTaken, ``tmp`` kept).

    Both ways are atomic in the kernel: ``renameat2(RENAME_NOREPLACE)`` where the
    kernel and file system have it, else ``link(tmp, path)`` (fails with EEXIST if the
    name exists) followed by removing ``tmp``. Of concurrent writers exactly one wins.
    """
    try:
        if _rename_noreplace(tmp, path):
            return
        try:
            os.link(tmp, path)
        except OSError as exc:
            if exc.errno in _NO_LINK:
                raise OSError(
                    exc.errno,
                    "this file system has neither renameat2(RENAME_NOREPLACE) nor hard links, "
                    "so a create-only write cannot be atomic here",
                    path,
                ) from exc
            raise
    except FileExistsError:
        if os.path.isdir(path):  # a "directory" key: nothing to compare with, plainly in the way
            raise IsADirectoryError(errno.EISDIR, "a directory is in the way of the object", path) from None
        raise KeyTaken(errno.EEXIST, "an object is already stored here", path) from None
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)  # the object now lives under ``path``; only the second name goes


def _rename_noreplace(src: str, dst: str) -> bool:
    """``renameat2(src, dst, RENAME_NOREPLACE)``: True if done, False if not available here.

    Raises FileExistsError if ``dst`` exists, and OSError for any other failure.
    """
    rename = _renameat2()
    if rename is None:
        return False
    if rename(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE) == 0:
        return True
    err = ctypes.get_errno()
    if err in _NO_RENAMEAT2:
        return False
    raise OSError(err, os.strerror(err), dst)


@functools.cache
def _renameat2() -> Any:
    """glibc's renameat2 (2.28+) with its argument types, or None where there is none."""
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func
