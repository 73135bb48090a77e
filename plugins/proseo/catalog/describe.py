"""Work out what a delivered file is: class, validity, file class, mode, parameters.

Metadata comes from, in order of precedence: command-line options, a sidecar JSON file
(``<file>.json``, validated by a pydantic model), and the class's file-name pattern. A
footprint comes from ``<file>.footprint.json`` (a GeoJSON Point or Polygon), kept apart
from ``<file>.json`` so a plain GeoJSON file written by any tool will do. A file that
cannot be described gets an error that names the file and what is missing; nothing about
it is guessed silently.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from proseo.catalog.footprint_column import validated
from proseo.catalog.geometry import Geometry, GeometryError
from proseo.errors import IngestError
from proseo.missions.filenames import NameMetadata
from proseo.missions.loader import LoadedMission
from proseo.missions.orbits import Orbit
from proseo.missions.types import UtcDateTime
from proseo.missions.yamlsource import format_loc

SIDECAR_SUFFIX = ".json"
FOOTPRINT_SUFFIX = ".footprint.json"
#: Every file that may accompany a delivered one (all end in SIDECAR_SUFFIX).
SIDECAR_SUFFIXES = (SIDECAR_SUFFIX, FOOTPRINT_SUFFIX)


class Sidecar(BaseModel):
    """Optional ``<file>.json`` next to a delivered file."""

    model_config = ConfigDict(extra="forbid")

    product_type: str | None = None
    start: UtcDateTime | None = None
    stop: UtcDateTime | None = None
    generation_time: UtcDateTime | None = None
    file_class: str | None = None
    mode: str | None = None
    orbit: int | None = Field(default=None, ge=0)
    parameters: dict[str, str | int | float | bool] = Field(default_factory=dict)


@dataclass(frozen=True)
class Described:
    """Everything the catalogue needs to know about one file before copying it."""

    path: Path
    product_type: str
    file_class: str
    mode: str | None
    start: datetime
    stop: datetime
    generation: datetime | None
    orbit: int | None
    parameters: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    footprint: Geometry | None = None


def read_sidecar(path: Path, mission: str) -> Sidecar | None:
    side = path.with_name(path.name + SIDECAR_SUFFIX)
    if not side.exists():
        return None
    try:
        return Sidecar.model_validate(json.loads(side.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}", file=str(side), mission=mission
        ) from exc
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise IngestError(
            f"{format_loc(first['loc'])}: {first['msg']}", file=str(side), mission=mission
        ) from exc


def read_footprint(path: Path, mission: str) -> Geometry | None:
    """The footprint in ``<file>.footprint.json``, if there is one; errors name that file."""
    side = path.with_name(path.name + FOOTPRINT_SUFFIX)
    if not side.exists():
        return None
    try:
        return validated(Geometry.from_geojson(json.loads(side.read_text(encoding="utf-8"))))
    except json.JSONDecodeError as exc:
        raise IngestError(
            f"line {exc.lineno}, column {exc.colno}: invalid JSON: {exc.msg}", file=str(side), mission=mission
        ) from exc
    except (GeometryError, UnicodeDecodeError) as exc:
        raise IngestError(f"not a footprint: {exc}", file=str(side), mission=mission) from exc


def describe_file(
    path: Path,
    mission: LoadedMission,
    *,
    product_type: str | None = None,
    file_class: str | None = None,
    mode: str | None = None,
    orbits: Mapping[int, Orbit] | None = None,
) -> Described:
    """Describe one file; raises IngestError naming the file and the problem."""
    cfg, code = mission.config, mission.code

    def fail(message: str) -> IngestError:
        return IngestError(message, file=str(path), mission=code)

    try:
        st = path.stat()
    except FileNotFoundError:
        raise fail("no such file") from None
    except OSError as exc:
        raise fail(f"cannot read: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        raise fail("not a regular file")
    side = read_sidecar(path, code) or Sidecar()
    ptype = product_type or side.product_type
    if ptype is None:
        matches = mission.classes_matching(path.name)
        if not matches:
            raise fail(
                "no product class's file-name pattern matches this name; "
                "give --class or a sidecar JSON with product_type"
            )
        if len(matches) > 1:
            raise fail(f"the name matches several classes ({', '.join(matches)}); give --class")
        ptype = matches[0]
    if ptype not in cfg.product_classes:
        raise fail(f"mission {code} has no product class {ptype!r}")

    try:
        named = mission.read_file_name(ptype, path.name)
    except ValueError as exc:
        raise fail(f"file name does not parse as {ptype}: {exc}") from exc
    named = named or NameMetadata()

    orbit = side.orbit if side.orbit is not None else named.orbit
    start = side.start or named.start
    stop = side.stop or named.stop
    if (start is None or stop is None) and orbit is not None and orbits is not None:
        if orbit not in orbits:
            raise fail(f"orbit {orbit} is not in the orbit table of mission {code}")
        start = start or orbits[orbit].start
        stop = stop or orbits[orbit].stop
    if start is None or stop is None:
        raise fail(
            f"no validity: the name does not give start and stop for {ptype}; "
            "add a sidecar JSON with start and stop"
        )
    if stop < start:
        raise fail("validity stop is before start")

    fclass = file_class or side.file_class or named.file_class or cfg.mission.file_classes[0]
    if fclass not in cfg.mission.file_classes:
        raise fail(f"unknown file class {fclass!r} (known: {', '.join(cfg.mission.file_classes)})")
    pmode = mode or side.mode or named.mode
    if pmode is not None and pmode not in cfg.mission.processing_modes:
        raise fail(f"unknown processing mode {pmode!r}")

    types = cfg.parameter_types(ptype)
    params: dict[str, Any] = {}
    for key, value in {**(named.parameters or {}), **side.parameters}.items():
        kind = types.get(key)
        try:
            params[key] = kind.coerce(value) if kind is not None else value
        except ValueError as exc:
            raise fail(f"parameter {key}: {exc}") from exc
    generation = side.generation_time or named.generation
    footprint = read_footprint(path, code)
    return Described(
        path, ptype, fclass, pmode, start, stop, generation, orbit, params, st.st_size, footprint
    )
