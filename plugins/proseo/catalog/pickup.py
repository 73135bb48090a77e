"""A mission's pickup directory: when a delivered file is complete, claiming it, ingesting it.

Layout (``<root>/<MISSION CODE>/``, root from ``PROSEO_PICKUP_ROOT``)::

    <dir>/              deliveries land here (sidecars ``<file>.json`` and
                        ``<file>.footprint.json`` beside their file)
    <dir>/.claimed/     taken by the pickup trigger, waiting for (or being) ingested
    <dir>/.done/        ingested (new, or already in the catalogue with the same bytes)
    <dir>/.rejected/    cannot be ingested as delivered, with ``<name>.reason`` saying why

A file is *complete* when its name is not temporary (``*.part``, ``*.tmp``, dotfiles),
and its size and modification time are the ones seen on the previous look and at least
the settle time old (its sidecars, if any, too). ``*.json`` files are always sidecars,
never products (as for ``proseo product ingest``): deliver the sidecar before its file,
or rename the file into place last. A sidecar whose file never comes stays where it is.

Claiming renames (atomic on one file system) the sidecar, then the file, into
``.claimed/``: a crash in between leaves the file to be claimed on the next look.
Ingested files are *moved* to ``.done/``, not deleted: the delivering side and operators
can see what was taken and when; the catalogue's storage holds the product's own
copy, so ``.done/`` may be pruned at will (e.g. ``find .done -mtime +7 -delete``).

Core module: no Airflow. :mod:`proseo.orchestration.pickup` watches and ingests with it.
"""

from __future__ import annotations

import os
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from proseo.catalog.db import Catalog
from proseo.catalog.describe import SIDECAR_SUFFIX, SIDECAR_SUFFIXES, describe_file
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.errors import IngestError

CLAIMED, DONE, REJECTED = ".claimed", ".done", ".rejected"
TEMPORARY_SUFFIXES = (".part", ".tmp")
REASON_SUFFIX = ".reason"

#: What one look saw of a file: (size, mtime in ns).
Seen = tuple[int, int]


def is_temporary(name: str) -> bool:
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def _regular_files(directory: Path) -> dict[str, os.stat_result]:
    found = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    for entry in entries:
        if is_temporary(entry.name):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # gone since the listing
            continue
        if stat.S_ISREG(st.st_mode):
            found[entry.name] = st
    return found


def scan(
    directory: Path, previous: dict[str, Seen], now: float, settle_s: float
) -> tuple[list[str], dict[str, Seen]]:
    """The complete files of ``directory`` (names, sorted) and what this look saw.

    ``previous`` is the previous look's second result (empty on the first look, so no
    file is complete before it was seen twice); ``now`` is the wall clock (``time.time()``).
    """
    files = _regular_files(directory)
    seen = {name: (st.st_size, st.st_mtime_ns) for name, st in files.items()}

    def settled(name: str) -> bool:
        return previous.get(name) == seen[name] and now - files[name].st_mtime >= settle_s

    complete = [
        name
        for name in sorted(files)
        if not name.endswith(SIDECAR_SUFFIX)
        and settled(name)
        and all(name + s not in files or settled(name + s) for s in SIDECAR_SUFFIXES)
    ]
    return complete, seen


def claim(directory: Path, names: list[str]) -> list[str]:
    """Move the files (sidecars first) into ``.claimed/``; the names actually claimed.

    A name already waiting in ``.claimed/`` (delivered again before the first was
    ingested) stays in the directory for a later look, so neither copy is lost.
    """
    target = directory / CLAIMED
    target.mkdir(exist_ok=True)
    claimed = []
    for name in names:
        if (target / name).exists():
            continue
        try:
            for suffix in SIDECAR_SUFFIXES:
                side = directory / (name + suffix)
                if side.exists():
                    os.rename(side, target / side.name)
            os.rename(directory / name, target / name)
        except FileNotFoundError:  # taken away meanwhile
            continue
        claimed.append(name)
    return claimed


def _move(directory: Path, name: str, to: str) -> None:
    """Move a claimed file and its sidecars to ``<dir>/<to>/`` (replacing older ones)."""
    source, target = directory / CLAIMED, directory / to
    target.mkdir(exist_ok=True)
    for item in (*(name + s for s in SIDECAR_SUFFIXES), name):
        if (source / item).exists():
            os.replace(source / item, target / item)


def reject(directory: Path, name: str, problem: str) -> None:
    """Move a claimed file to ``.rejected/`` with ``<name>.reason`` naming it and the problem."""
    _move(directory, name, REJECTED)
    reason = f"file: {name}\nproblem: {problem}\n"
    (directory / REJECTED / (name + REASON_SUFFIX)).write_text(reason, encoding="utf-8")


@dataclass
class PickupResult:
    """What one ingestion of ``.claimed/`` did."""

    #: Product ids per product class, of every file ingested now (new or already known).
    by_class: dict[str, list[int]] = field(default_factory=dict)
    new: int = 0
    done: list[str] = field(default_factory=list)
    #: Moved to ``.rejected/``: name -> problem.
    rejected: dict[str, str] = field(default_factory=dict)
    #: Left in ``.claimed/`` after a failure a retry may cure (storage, catalogue).
    kept: dict[str, str] = field(default_factory=dict)


def claimed_files(directory: Path) -> list[str]:
    return sorted(n for n in _regular_files(directory / CLAIMED) if not n.endswith(SIDECAR_SUFFIX))


def ingest_claimed(catalog: Catalog, mission: str, directory: Path) -> PickupResult:
    """Ingest every file in ``<directory>/.claimed/`` (idempotent: the catalogue knows what
    it already holds, so files a failed earlier run left there are simply taken again)."""
    result = PickupResult()
    names = claimed_files(directory)
    if not names:
        return result
    with catalog.session() as s:
        loaded = loaded_from_catalog(s, mission)
    source = directory / CLAIMED
    classes: dict[str, str] = {}
    for name in names:
        try:
            classes[name] = describe_file(source / name, loaded).product_type
        except IngestError as exc:  # unknown name, bad sidecar, no validity, ...
            result.rejected[name] = str(exc)
            reject(directory, name, str(exc))
    if classes:
        report = Ingestor(catalog, loaded).run([source / n for n in classes])
        by_class: dict[str, list[int]] = defaultdict(list)
        for outcome in report.outcomes:
            name = Path(outcome.file).name
            if outcome.status in ("new", "unchanged") and outcome.product_id is not None:
                by_class[classes[name]].append(outcome.product_id)
                result.new += outcome.status == "new"
                result.done.append(name)
                _move(directory, name, DONE)
            elif outcome.status == "conflict":  # other bytes under a catalogued identity
                result.rejected[name] = outcome.message or "conflict"
                reject(directory, name, outcome.message or "conflict")
            else:
                result.kept[name] = outcome.message or outcome.status
        result.by_class = {c: sorted(ids) for c, ids in sorted(by_class.items())}
    return result
