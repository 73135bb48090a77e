"""File downloads with HTTP Range (one ``bytes=`` range), shared by the REST API and the PRIP.

Large products must be resumable: a single range answers 206 with ``Content-Range``, a
range that selects nothing 416, any other form the whole file (as RFC 9110 allows).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fastapi.responses import Response, StreamingResponse

from proseo.errors import ProseoError, StorageError
from proseo.storage import Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
#: Byte positions are 64-bit; longer digit strings are beyond any file (and int() refuses 4,300+).
_MAX_DIGITS = 19


class RangeNotSatisfiable(ProseoError):
    """A Range header that selects no byte of the file."""


class StoredFileDiffers(StorageError):
    """The storage holds another size than the catalogue records: nothing is sent."""

    http_status = 500


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a single ``bytes=`` range (stop exclusive); None for the whole file."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # unsupported forms (several ranges, other units): answer the whole file
    first, last = (_position(g, size) for g in match.groups())
    if first is None and last is None:
        return None
    if first is None:  # the last N bytes
        assert last is not None
        if last == 0:
            raise RangeNotSatisfiable(f"range {header[:80]!r} selects no byte of a {size}-byte file")
        return max(0, size - last), size
    start = first
    stop = min(size, last + 1) if last is not None else size
    if start >= size or stop <= start:
        raise RangeNotSatisfiable(f"range {header[:80]!r} selects no byte of a {size}-byte file")
    return start, stop


def _position(digits: str, size: int) -> int | None:
    """A byte position of a Range header; numbers of more than 19 digits count as "past the end"."""
    if not digits:
        return None
    return int(digits) if len(digits.lstrip("0")) <= _MAX_DIGITS else size + 1


def file_response(
    storage: Storage,
    key: str,
    size: int,
    file_name: str,
    range_header: str | None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The stored file (or the range asked for) as an attachment, with ``headers`` added.

    The object is looked at before the answer starts: a file gone from the storage answers
    404 (StorageNotFound) and one of another size 500, instead of a 200 cut off mid-body.
    """
    stored = storage.size(key)
    if stored != size:
        raise StoredFileDiffers(
            f"{file_name}: the storage holds {stored} bytes, the catalogue {size}", url=key
        )
    try:
        window = byte_range(range_header, size)
    except RangeNotSatisfiable as exc:
        return Response(
            str(exc), status_code=416, headers={"Content-Range": f"bytes */{size}"}, media_type="text/plain"
        )
    start, stop = window or (0, size)
    answer = {
        "Accept-Ranges": "bytes",
        "Content-Length": str(stop - start),
        "Content-Disposition": f'attachment; filename="{file_name}"',
        **(headers or {}),
    }
    status = 200
    if window is not None:
        status = 206
        answer["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return StreamingResponse(
        storage.read_range(key, start, stop),
        status_code=status,
        headers=answer,
        media_type="application/octet-stream",
    )
