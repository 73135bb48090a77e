"""Create-only writes: a stored object is never replaced by other bytes.

Stored products are immutable: the catalogue records their size and checksums, and
zero-copy staging hard-links them into working directories. Two writers of one key
(two orders that planned the same product, a retried job step, a repeated ingestion)
must therefore never replace each other's bytes. A create-only write asks the backend
for an atomic create-only placement (:class:`~proseo.storage.backends.KeyTaken` when
the key is taken) and then compares: the same size and SHA-256 is success with
``already_stored`` set and nothing rewritten; other bytes are
:class:`~proseo.errors.ObjectExists`, naming the key, the root and both checksums.
A failed attempt leaves nothing behind (the backends remove temporary files and
abort multipart uploads).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple

from proseo.errors import ObjectExists, StorageError
from proseo.storage.backends import Backend
from proseo.storage.hashing import FileInfo, HashingReader, Progress, Readable, copy_stream
from proseo.storage.noreplace import KeyTaken

log = logging.getLogger(__name__)

#: How often a write tries again when the object in its way vanishes before it is compared.
RACE_ROUNDS = 3
#: How filesystems say "no object here" (a "directory" is no object either).
MISSING = (FileNotFoundError, IsADirectoryError, NotADirectoryError)


class Source(NamedTuple):
    """An opened source of a write: the stream, its size if known, the chunk size to read it in."""

    stream: Readable
    size: int | None
    chunk: int


#: Opens the source afresh for each attempt (a retry or a second round starts from byte 0).
SourceOpener = Callable[[], AbstractContextManager[Source]]


def discard(_: bytes) -> None:
    """A copy target that keeps nothing (hashing a stream is all that is wanted)."""


def write(
    backend: Backend,
    source: SourceOpener,
    *,
    key: str,
    url: str,
    path: str,
    root: str,
    report: Progress | None,
    durable: bool,
    replace: bool,
    look_first_from: int,
) -> FileInfo:
    """One attempt at writing ``source`` under ``key``; create-only unless ``replace``.

    Objects of at least ``look_first_from`` bytes are looked for before they are sent,
    so a repeated upload of a big product only reads it locally (and compares) instead
    of sending gigabytes to be refused. Smaller ones go straight to the create-only
    placement, which is what decides between concurrent writers in any case.
    """
    for _ in range(RACE_ROUNDS):
        with source() as (stream, size, chunk):
            reader = HashingReader(stream, report)
            look_first = not replace and size is not None and size >= look_first_from
            if look_first and backend.exists(path):
                copy_stream(reader, discard, chunk)  # the offered bytes' facts; nothing is sent
            else:
                try:
                    backend.write(
                        reader, path, size_hint=size, chunk=chunk, durable=durable, exclusive=not replace
                    )
                    return reader.info(url)
                except KeyTaken:
                    copy_stream(reader, discard, chunk)  # whatever the backend had not read yet
        settled = settle(backend, reader.info(url), key=key, path=path, root=root)
        if settled is not None:
            return settled
    raise StorageError(
        f"key {key!r} was taken and then vanished {RACE_ROUNDS} times while being written; "
        "is another process deleting objects under this root?",
        url=url,
    )


def settle(backend: Backend, offered: FileInfo, *, key: str, path: str, root: str) -> FileInfo | None:
    """``key`` is taken: the same bytes are a success (already stored), others ObjectExists.

    None if the object vanished before it could be read (the caller writes again).
    """
    try:
        with backend.open_read(path) as src:
            reader = HashingReader(src)
            copy_stream(reader, discard, backend.read_chunk)
    except MISSING:
        return None
    stored = reader.info(offered.url)
    if (stored.size, stored.sha256) == (offered.size, offered.sha256):
        log.info("%s: already stored (same size and SHA-256), nothing written", offered.url)
        return dataclasses.replace(offered, already_stored=True)
    raise ObjectExists(
        key=key,
        root=root,
        url=offered.url,
        stored=(stored.size, stored.sha256),
        offered=(offered.size, offered.sha256),
    )
