"""Where a Sentinel-5P-like orbit looks: the footprint of its sunlit half, as GeoJSON.

Shared by the delivery generator (L0 footprints) and the sample processors (L1B and L2
footprints in their metadata), so a product and the products made from it agree.
Plain arithmetic, no dependencies: the processors' images carry only this package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: Half the swath width in degrees of longitude (about 2,600 km at the equator).
HALF_WIDTH = 13.0
#: The ascending node's local solar time in hours (a sun-synchronous 13:30 orbit).
NODE_LOCAL_TIME = 13.5


def swath(start: datetime, stop: datetime) -> dict[str, Any]:
    """A plausible footprint of a sun-synchronous (13:30 ascending) orbit's sunlit half.

    A band 2 x 13 degrees wide from 80 S to 80 N, its centre at the longitude where local
    solar time is 13:30 at the orbit's middle, drifting west with the Earth's rotation
    while the satellite climbs. Vertices every 10 degrees of latitude (edges stay short).
    A band reaching past the antimeridian is cut there: one POLYGON cannot cross it.
    """
    middle = start + (stop - start) / 2
    hours = middle.hour + middle.minute / 60 + middle.second / 3600
    centre = (NODE_LOCAL_TIME - hours) * 15.0
    centre = (centre + 180.0) % 360.0 - 180.0
    quarter = (stop - start).total_seconds() / 86400 * 360.0 / 4  # Earth's turn in a quarter orbit
    lats = range(-80, 81, 10)

    def lon(lat: int, side: float) -> float:
        return max(-180.0, min(180.0, round(centre + quarter * (-lat / 80) + side * HALF_WIDTH, 4)))

    east = [[lon(lat, 1.0), float(lat)] for lat in lats]
    west = [[lon(lat, -1.0), float(lat)] for lat in reversed(lats)]
    return {"type": "Polygon", "coordinates": [east + west + [east[0]]]}
