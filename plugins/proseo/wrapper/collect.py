"""Collect the planned outputs and upload them under their deterministic keys.

Only the outputs the plan names are taken, and only as regular files that really lie
in the working directory: a processor (or a product someone crafted) could otherwise
make the wrapper upload ``/etc/passwd`` or a credentials file through a symlink. All
outputs are checked before the first byte is uploaded, so a job that fails here leaves
nothing half-stored.

Uploads are create-only: the keys come from the plan, and a stored product is never
replaced (the catalogue and every stage-in that hard-linked it rely on its bytes). A
retried step that produces the same bytes finds them "already stored" and succeeds;
an output whose key already holds other bytes fails the step at the upload stage,
naming the key and both checksums, and leaves the stored object as it was.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proseo.catalog.footprint_column import validated
from proseo.catalog.geometry import Geometry, GeometryError
from proseo.errors import StorageError
from proseo.storage import check_key, open_storage
from proseo.wrapper.failure import WrapperError
from proseo.wrapper.layout import META_SUFFIX, OUTPUTS_DIR, output_path
from proseo.wrapper.spec import JobSpec, ManifestFile, ManifestProduct, OutputSpec

#: A processor's metadata file is small; anything bigger is a mistake, not metadata.
MAX_META_BYTES = 1 << 20


@dataclass(frozen=True)
class FoundOutput:
    """A planned output found on disk: its files as (local path, name in the product, key)."""

    output: OutputSpec
    files: list[tuple[Path, str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)
    footprint: dict[str, Any] | None = None  # GeoJSON the processor reported, checked


def _refuse(output: OutputSpec, problem: str) -> WrapperError:
    return WrapperError("collect", f"planned output {output.file_name!r}: {problem}")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def _inside(path: Path, root: Path) -> bool:
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def _planned_path(output: OutputSpec, workdir: Path) -> tuple[Path, os.stat_result | None]:
    """The output's path, refusing a symlink at every step from the working directory down."""
    relative = output_path(output)
    path = workdir
    info: os.stat_result | None = None
    for part in relative.split("/"):
        path = path / part
        info = _lstat(path)
        if info is None:
            return path, None
        if stat.S_ISLNK(info.st_mode):
            raise _refuse(output, f"{path.relative_to(workdir)} is a symbolic link, which is not collected")
    if not _inside(path, workdir):
        raise _refuse(output, "it lies outside the working directory")
    return path, info


def _product_files(output: OutputSpec, path: Path, info: os.stat_result) -> list[tuple[Path, str, str]]:
    if stat.S_ISREG(info.st_mode):
        return [(path, output.file_name, output.key)]
    if not stat.S_ISDIR(info.st_mode):
        raise _refuse(output, "it is neither a regular file nor a directory")
    files: list[tuple[Path, str, str]] = []
    for top, dirs, names in os.walk(path, followlinks=False):
        for name in sorted(dirs + names):
            entry = Path(top) / name
            mode = entry.lstat().st_mode
            inner = entry.relative_to(path).as_posix()
            if stat.S_ISLNK(mode):
                raise _refuse(output, f"{inner} is a symbolic link, which is not collected")
            if stat.S_ISREG(mode):
                files.append((entry, inner, f"{output.key}/{inner}"))
            elif not stat.S_ISDIR(mode):
                raise _refuse(output, f"{inner} is neither a regular file nor a directory")
    if not files:
        raise _refuse(output, "it is an empty directory")
    return sorted(files, key=lambda f: f[1])


def _metadata(output: OutputSpec, product: Path) -> dict[str, Any]:
    """What the processor reported in ``<file_name>.meta.json`` (optional; a JSON object)."""
    meta = product.with_name(product.name + META_SUFFIX)
    info = _lstat(meta)
    if info is None:
        return {}
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(output, f"{meta.name} is not a regular file")
    if info.st_size > MAX_META_BYTES:
        raise _refuse(output, f"{meta.name} is larger than {MAX_META_BYTES} bytes")
    try:
        data = json.loads(meta.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _refuse(output, f"{meta.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _refuse(output, f"{meta.name} must hold a JSON object, not {type(data).__name__}")
    # The planned parameters are part of the product's identity (what an order asked
    # for, what reuse compares): the processor may repeat them, never contradict them.
    for key, planned in output.parameters.items():
        if key in data and data[key] != planned:
            raise _refuse(
                output, f"{meta.name} reports {key}={data[key]!r}, but the job step planned {key}={planned!r}"
            )
    return data


def _footprint(output: OutputSpec, metadata: dict[str, Any]) -> dict[str, Any] | None:
    """The ``footprint`` of the metadata (a GeoJSON Point or Polygon), taken out of it."""
    value = metadata.pop("footprint", None)
    if value is None:
        return None
    try:
        return validated(Geometry.from_geojson(value)).geojson()
    except GeometryError as exc:
        raise _refuse(output, f"{output.file_name}{META_SUFFIX}: footprint: {exc}") from None


def find_outputs(spec: JobSpec, workdir: Path) -> list[FoundOutput]:
    """Every planned output, checked; WrapperError("collect") for a missing or refused one."""
    found = []
    for output in spec.outputs:
        path, info = _planned_path(output, workdir)
        if info is None:
            raise _refuse(
                output, f"the processor did not write it (expected at {OUTPUTS_DIR}/{output.file_name})"
            )
        files = _product_files(output, path, info)
        for _, inner, key in files:
            try:
                check_key(key)
            except StorageError as exc:
                raise _refuse(output, f"file {inner!r} cannot be stored: {exc}") from None
        metadata = _metadata(output, path)
        found.append(FoundOutput(output, files, metadata, _footprint(output, metadata)))
    return found


def upload_outputs(
    spec: JobSpec, found: list[FoundOutput], note: Callable[[str], None] | None = None
) -> list[ManifestProduct]:
    """Upload every file (in parallel, create-only), returning the manifest's products.

    ``note`` hears about files that were already stored with the same bytes.
    """
    ref = spec.storages[spec.output_storage]
    items = [(local, key) for f in found for local, _, key in f.files]
    try:
        infos = open_storage(ref.url, ref.options).put_many(items, workers=spec.transfer_workers)
    except StorageError as exc:  # ObjectExists too: its message names the key and both checksums
        raise WrapperError("upload", f"outputs could not be stored: {exc}") from exc
    except OSError as exc:  # a local file vanished or became unreadable
        raise WrapperError("upload", f"an output could not be read: {exc.strerror}") from exc
    already = [key for (_, key), info in zip(items, infos, strict=True) if info.already_stored]
    if already and note is not None:
        note(f"{len(already)} output file(s) already stored with the same bytes: {', '.join(already)}")
    products = []
    position = 0
    for f in found:
        files = []
        for _, inner, key in f.files:
            info = infos[position]
            position += 1
            files.append(
                ManifestFile(
                    file_name=inner,
                    key=key,
                    url=info.url,
                    size=info.size,
                    md5=info.md5,
                    sha256=info.sha256,
                    xxh128=info.xxh128 or None,
                )
            )
        o = f.output
        products.append(
            ManifestProduct(
                product_type=o.product_type,
                file_name=o.file_name,
                start=o.start,
                stop=o.stop,
                parameters=o.parameters,
                files=files,
                metadata=f.metadata,
                footprint=f.footprint,
            )
        )
    return products
