"""Footprint geometries as the ESA interfaces write them: WGS84 points and polygons.

One small typed value shared by the OData filter parser (``geography'SRID=4326;POLYGON(...)'``),
the catalogue's footprint storage and the PRIP answers (``Footprint`` as that literal,
``GeoFootprint`` as GeoJSON). Longitude first, as in WKT and GeoJSON. Only what the
interfaces allow is accepted: EPSG:4326, POINT and POLYGON with closed rings (no
MULTIPOLYGON).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from proseo.errors import ProseoError

Position = tuple[float, float]


class GeometryError(ProseoError):
    """A footprint that is not a WGS84 point or closed polygon; says what is wrong."""


@dataclass(frozen=True)
class Geometry:
    """A point (one ring of one position) or a polygon (outer ring first, then holes)."""

    kind: Literal["POINT", "POLYGON"]
    rings: tuple[tuple[Position, ...], ...]

    def __post_init__(self) -> None:
        if not self.rings or not all(self.rings):
            raise GeometryError(f"{self.kind}: no coordinates")
        for ring in self.rings:
            for lon, lat in ring:
                if not (math.isfinite(lon) and math.isfinite(lat)):
                    raise GeometryError(f"{self.kind}: coordinate ({lon} {lat}) is not a finite number")
                if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
                    raise GeometryError(
                        f"{self.kind}: coordinate ({lon} {lat}) is outside "
                        "longitude -180..180, latitude -90..90"
                    )
        if self.kind == "POINT":
            if len(self.rings) != 1 or len(self.rings[0]) != 1:
                raise GeometryError("POINT: exactly one position expected")
            return
        for n, ring in enumerate(self.rings):
            if len(ring) < 4:
                raise GeometryError(f"POLYGON ring {n + 1}: at least 4 positions expected, got {len(ring)}")
            if ring[0] != ring[-1]:
                raise GeometryError(f"POLYGON ring {n + 1}: not closed (first position differs from last)")

    @classmethod
    def point(cls, lon: float, lat: float) -> Geometry:
        return cls("POINT", (((float(lon), float(lat)),),))

    @classmethod
    def polygon(cls, *rings: list[Position] | tuple[Position, ...]) -> Geometry:
        return cls("POLYGON", tuple(tuple((float(x), float(y)) for x, y in ring) for ring in rings))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat) of the outer ring."""
        lons = [p[0] for p in self.rings[0]]
        lats = [p[1] for p in self.rings[0]]
        return min(lons), min(lats), max(lons), max(lats)

    def wkt(self) -> str:
        """``POINT(lon lat)`` / ``POLYGON((lon lat, ...), ...)``."""
        if self.kind == "POINT":
            lon, lat = self.rings[0][0]
            return f"POINT({_num(lon)} {_num(lat)})"
        rings = ",".join("(" + ",".join(f"{_num(x)} {_num(y)}" for x, y in r) + ")" for r in self.rings)
        return f"POLYGON({rings})"

    def odata(self) -> str:
        """The OData literal the PRIP's ``Footprint`` property carries."""
        return f"geography'SRID=4326;{self.wkt()}'"

    def geojson(self) -> dict[str, Any]:
        """The GeoJSON object of ``GeoFootprint``."""
        if self.kind == "POINT":
            return {"type": "Point", "coordinates": list(self.rings[0][0])}
        return {"type": "Polygon", "coordinates": [[list(p) for p in r] for r in self.rings]}

    @classmethod
    def from_geojson(cls, value: dict[str, Any]) -> Geometry:
        """A GeoJSON Point or Polygon (as stored in the catalogue or sent by a processor)."""
        kind = value.get("type") if isinstance(value, dict) else None
        coordinates = value.get("coordinates") if isinstance(value, dict) else None
        try:
            if kind == "Point":
                lon, lat = coordinates  # type: ignore[misc]
                return cls.point(lon, lat)
            if kind == "Polygon":
                return cls.polygon(*[[(float(x), float(y)) for x, y in ring] for ring in coordinates])  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise GeometryError(f"GeoJSON {kind}: malformed coordinates ({exc})") from exc
        raise GeometryError(f"GeoJSON type {kind!r}: only Point and Polygon are footprints")


def _num(value: float) -> str:
    """Shortest text that reads back as ``value`` (``10`` for 10.0); positions are floats already."""
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text
