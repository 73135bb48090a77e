"""Generate input products (L0, AUX, raw exposures, calibrations) for the sample missions.

The files are what a ground station or an external centre would deliver: named by
the class's file-name template, with validity and generation times that follow
each class's real delivery rhythm (one L0 per orbit and detector, meteorological
AUX every 6 hours, nightly exposures alternating filters, ...). Content is
deterministic pseudo-random bytes derived from the name, so two runs produce the
same files and a re-ingest is recognised as such. S5P's orbit L0 of the radiance
detectors come with a ``<file>.footprint.json``: the sunlit swath of the orbit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from proseo.missions.filenames import render
from proseo.missions.loader import LoadedMission
from proseo.processors.swath import swath

H = timedelta(hours=1)
D = timedelta(days=1)


@dataclass(frozen=True)
class Delivery:
    """One file to deliver: its class, validity, generation time and name values."""

    product_type: str
    start: datetime
    stop: datetime
    generation: datetime
    values: dict[str, Any] = field(default_factory=dict)
    sidecar: dict[str, Any] | None = None
    footprint: dict[str, Any] | None = None  # GeoJSON, written as <file>.footprint.json


def _floor(t: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((t - epoch) // step) * step


def _periodic(
    ptype: str,
    start: datetime,
    stop: datetime,
    step: timedelta,
    valid: timedelta,
    lag: timedelta,
    **values: Any,
) -> Iterator[Delivery]:
    t = _floor(start, step)
    while t < stop:
        yield Delivery(ptype, t, t + valid, t + lag, dict(values))
        t += step


def _s5p(m: LoadedMission, start: datetime, stop: datetime) -> Iterator[Delivery]:
    for orbit in m.orbits["S5P"]:
        if orbit.stop <= start or orbit.start >= stop:
            continue
        footprint = swath(orbit.start, orbit.stop)
        for ptype in ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"):
            yield Delivery(
                ptype,
                orbit.start,
                orbit.stop,
                orbit.stop + timedelta(minutes=20),
                {"orbit": orbit.number},
                footprint=footprint if ptype.startswith("L0__ODB") else None,
            )
    yield from _periodic("AUX_MET_TP", start, stop, 6 * H, 6 * H, -6 * H)
    yield from _periodic("AUX_CTMFCT", start, stop, D, D, -12 * H)
    yield from _periodic("AUX_NISE__", start, stop, D, D, D + 2 * H)
    ckd_start = _floor(start, D) - 30 * D
    yield Delivery("AUX_L1_CKD", ckd_start, ckd_start + 400 * D, ckd_start)


def _sky(m: LoadedMission, start: datetime, stop: datetime) -> Iterator[Delivery]:
    exposure = 0
    night = _floor(start, D)
    while night < stop:
        t = night + timedelta(hours=8, minutes=30)
        while t < night + timedelta(hours=18, minutes=30):
            exposure += 1
            band = "g" if exposure % 2 else "r"
            yield Delivery(
                "RAW_EXP",
                t,
                t + timedelta(seconds=300),
                t + timedelta(seconds=330),
                {"filter": band, "exposure_id": exposure},
                sidecar={"parameters": {"exposure_time_s": 300.0}},
            )
            t += timedelta(minutes=20)
        night += D
    yield from _periodic("CAL_BIAS", start - 3 * D, stop, 3 * D, 3 * D, -H)
    for band in ("g", "r"):
        yield from _periodic("CAL_FLAT", start - 14 * D, stop, 14 * D, 14 * D, -2 * H, filter=band)
    yield Delivery(
        "REF_CAT",
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(2030, 1, 1, tzinfo=UTC),
        datetime(2024, 6, 1, tzinfo=UTC),
    )


PROFILES: dict[str, Callable[[LoadedMission, datetime, datetime], Iterator[Delivery]]] = {
    "S5P": _s5p,
    "SKY": _sky,
}


def deliveries(
    mission: LoadedMission, start: datetime, stop: datetime, classes: set[str] | None = None
) -> list[Delivery]:
    """What would be delivered for ``[start, stop)``, optionally only some classes."""
    if mission.code not in PROFILES:
        raise ValueError(f"no delivery profile for mission {mission.code} (have {', '.join(PROFILES)})")
    return [
        d
        for d in PROFILES[mission.code](mission, start, stop)
        if classes is None or d.product_type in classes
    ]


def content(name: str, size: int) -> bytes:
    """Deterministic bytes for a file name (the same name always gets the same content)."""
    return hashlib.shake_256(name.encode()).digest(size)


def file_name(mission: LoadedMission, d: Delivery) -> str:
    cfg = mission.config
    values = {
        "mission": cfg.mission.code,
        "file_class": cfg.mission.file_classes[0],
        "mode": cfg.mission.processing_modes[0],
        "product_type": d.product_type,
        "start": d.start,
        "stop": d.stop,
        "generation": d.generation,
        **d.values,
    }
    return render(cfg.class_template(d.product_type), values)


def write_inputs(
    mission: LoadedMission,
    start: datetime,
    stop: datetime,
    out_dir: Path,
    *,
    size: int = 4096,
    classes: set[str] | None = None,
) -> list[Path]:
    """Write the deliveries for a window into ``out_dir``; returns the product files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in deliveries(mission, start, stop, classes):
        name = file_name(mission, d)
        path = out_dir / name
        path.write_bytes(content(name, size))
        if d.sidecar is not None:
            path.with_name(name + ".json").write_text(json.dumps(d.sidecar))
        if d.footprint is not None:
            path.with_name(name + ".footprint.json").write_text(json.dumps(d.footprint))
        paths.append(path)
    return paths
