"""make_deliveries.py: write GEO deliveries as the ground segment names them.

Usage: python3 make_deliveries.py OUTDIR START STOP
Writes one RAW_FDS file per 15-minute full-disk scan on the :05/:20/:35/:50 grid that lies
in [START, STOP) (ISO 8601 UTC), and one AUX_CALIB table valid 2025-02-25 .. 2025-03-10,
named as the classes' template and pattern in geo.yaml read them. Same bytes every run.
"""

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

SCAN = timedelta(minutes=15)
GRID = datetime(2025, 1, 1, 0, 5, tzinfo=UTC)  # the anchor of geo.yaml's slicing
FMT = "%Y%m%dT%H%M%S"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def write(outdir: Path, start: datetime, stop: datetime) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    t = GRID + ((start - GRID) // SCAN) * SCAN
    t = t if t >= start else t + SCAN
    while t + SCAN <= stop:
        received = t + SCAN + timedelta(seconds=90)
        name = f"GEO_OPER_RAW_FDS_GEO1_{t:{FMT}}_{t + SCAN:{FMT}}_{received:{FMT}}.raw"
        path = outdir / name
        # 256 bytes of "counts" that depend on the scan time only.
        seed = int(t.timestamp()) // 900
        path.write_bytes(bytes((seed * 31 + i * i * (seed % 5 + 1)) % 256 for i in range(256)))
        written.append(path)
        t += SCAN
    cal = outdir / "GEOCAL_20250225_20250310_v3.bin"
    cal.write_bytes(b"GEO calibration v3\n" + bytes(range(64)))
    written.append(cal)
    return written


if __name__ == "__main__":
    paths = write(Path(sys.argv[1]), parse(sys.argv[2]), parse(sys.argv[3]))
    print(f"wrote {len(paths)} deliveries in {sys.argv[1]}")
