"""Stage-in: every input file from storage into ``inputs/<product_type>/<file_name>``, verified.

A processor given a truncated or altered input produces a wrong product that nobody
notices, so every byte of each file is checked against the size and checksums the
catalogue recorded, while it streams (one pass, never the whole file in memory), and
the job fails here, naming the file, before the processor starts. The check uses
XXH3-128 where the catalogue has it (fast enough that verifying costs no more than
reading), SHA-256 for products catalogued before XXH3-128 was recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from proseo.errors import ChecksumMismatch, StorageError, StorageNotFound
from proseo.storage import open_storage
from proseo.wrapper.failure import WrapperError
from proseo.wrapper.layout import input_path
from proseo.wrapper.spec import InputFile, JobSpec

log = logging.getLogger(__name__)


def _describe(f: InputFile) -> str:
    product = f" of product {f.product_id}" if f.product_id is not None else ""
    return f"input {f.file_name!r} ({f.product_type}{product})"


def _reason(f: InputFile, exc: StorageError) -> str:
    if isinstance(exc, StorageNotFound):
        return f"{_describe(f)} is missing: {exc}"
    if isinstance(exc, ChecksumMismatch):
        return f"{_describe(f)} is corrupt: {exc}"
    return f"{_describe(f)} could not be staged: {exc}"


def stage_inputs(spec: JobSpec, workdir: Path, note: Callable[[str], None] = log.info) -> list[str]:
    """Download and verify every input; returns the staged paths relative to ``workdir``.

    Files of each storage are fetched in parallel (``spec.transfer_workers``); the first
    failure raises WrapperError("stage-in") naming the file and what was wrong with it.
    """
    paths = [input_path(f) for f in spec.inputs]
    by_storage: dict[str, list[int]] = {}
    for i, f in enumerate(spec.inputs):
        by_storage.setdefault(f.storage, []).append(i)
    for name, indexes in by_storage.items():
        ref = spec.storages[name]
        try:
            storage = open_storage(ref.url, ref.options)
            files = [(spec.inputs[i], workdir / paths[i]) for i in indexes]
            items = [(f.key, local, (f.size, f.md5, f.sha256, f.xxh128)) for f, local in files]
            note(f"staging {len(items)} input file(s) from {storage.root_url}")
            storage.get_many(items, workers=spec.transfer_workers, link=True)
        except StorageError as exc:
            raise WrapperError("stage-in", _which(spec, indexes, exc)) from exc
    return paths


def _which(spec: JobSpec, indexes: list[int], exc: StorageError) -> str:
    """The reason for a failed batch, naming the input whose URL the error names."""
    for i in indexes:
        f = spec.inputs[i]
        ref = spec.storages[f.storage]
        try:
            url = open_storage(ref.url, ref.options).url_for(f.key)
        except StorageError:
            return f"{_describe(f)} has an invalid storage key {f.key!r}"
        if exc.url == url:
            return _reason(f, exc)
    return f"input storage {spec.storages[spec.inputs[indexes[0]].storage].url}: {exc}"
