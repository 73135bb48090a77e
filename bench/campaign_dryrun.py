"""Benchmark: the dry run of a 5-year S5P reprocessing campaign (L2 and L3), SQLite and PostgreSQL.

The S5P sample mission is loaded with its orbit table extended to 2031 (the sample
stops at 2027); the catalogue gets, in bulk INSERTs, the L0 of every orbit of five years
(four classes, one orbit in 50 withheld for band 1) and the AUX files the rules read
(6-hourly meteo, daily forecast and snow, one calibration set per year). Then the
dry run of a campaign over 2025-01-01 .. 2030-01-01, by month, requesting every L2 and the
daily L3 NO2 in RPRO, is timed. No order is planned (checked).

    .venv/bin/python bench/campaign_dryrun.py [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]

The last line is JSON: {"bench": "campaign_dryrun", "products": N, "steps": N,
"sqlite_s": s, "postgresql_s": s, ...}. The acceptance bound is 30 s per backend.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text

from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.mission_sync import get_mission, loaded_from_catalog, sync_mission
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.catalog.products import class_ids
from proseo.catalog.schema import upgrade
from proseo.missions import load_mission
from proseo.planning.campaign_dryrun import dry_run
from proseo.planning.campaign_spec import parse_campaign

REPO = Path(__file__).resolve().parents[1]
START, STOP = datetime(2025, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
L0 = ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_")
H, D = timedelta(hours=1), timedelta(days=1)


def _mission(tmp: Path) -> Path:
    text_ = (REPO / "mission_configs" / "s5p.yaml").read_text()
    path = tmp / "s5p.yaml"
    path.write_text(text_.replace("until: 2027-01-01T00:00:00Z", "until: 2031-01-01T00:00:00Z"))
    return path


def _row(mission_id: int, class_id: int, start: datetime, stop: datetime) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "identity": uuid.uuid4().hex + uuid.uuid4().hex,
        "mission_id": mission_id,
        "product_class_id": class_id,
        "file_class": "OPER",
        "mode": None,
        "sensing_start": start,
        "sensing_stop": stop,
        "generation_time": stop,
        "production_type": "SYSTEMATIC",
        "status": "AVAILABLE",
        "parameters": {},
        "created_at": stop,
    }


def populate(catalog: Catalog, mission_file: Path) -> int:
    with catalog.session() as s:
        sync_mission(s, load_mission(mission_file))
    with catalog.session() as s:
        loaded = loaded_from_catalog(s, "S5P")
        mission_id = get_mission(s, "S5P").id
        ids = class_ids(s, mission_id)
    rows = []
    for o in loaded.orbits["S5P"]:
        if o.stop <= START - D or o.start >= STOP + D:
            continue
        for c in L0:
            if c == "L0__ODB_1_" and o.number % 50 == 0:
                continue  # withheld: the dry run must find these
            rows.append(_row(mission_id, ids[c], o.start, o.stop))
    t = START - 2 * D
    while t < STOP + 2 * D:
        for k in range(4):
            rows.append(_row(mission_id, ids["AUX_MET_TP"], t + 6 * k * H, t + 6 * (k + 1) * H))
        rows.append(_row(mission_id, ids["AUX_CTMFCT"], t, t + D))
        rows.append(_row(mission_id, ids["AUX_NISE__"], t, t + D))
        t += D
    for year in range(2024, 2031):
        rows.append(
            _row(
                mission_id,
                ids["AUX_L1_CKD"],
                datetime(year, 1, 1, tzinfo=UTC),
                datetime(year + 1, 1, 1, tzinfo=UTC),
            )
        )
    with catalog.session() as s:
        for i in range(0, len(rows), 5000):
            s.execute(insert(Product), rows[i : i + 5000])
    return len(rows)


SPEC = {
    "name": "rpro5y",
    "requested_classes": ["L2__CLOUD_", "L2__NO2___", "L2__O3____", "L2__CH4___", "L3__NO2___"],
    "start": START.isoformat(),
    "stop": STOP.isoformat(),
    "unit": "month",
    "output_parameters": {"*": {"collection": 4}},
}


def measure(catalog: Catalog) -> dict[str, Any]:
    spec = parse_campaign(SPEC)
    t0 = time.perf_counter()
    with catalog.session() as s:
        result = dry_run(s, "S5P", spec)
    took = time.perf_counter() - t0
    with catalog.session() as s:
        orders = s.scalar(select(func.count()).select_from(ProcessingOrder))
    assert orders == 0, "a dry run planned an order"
    return {
        "seconds": round(took, 2),
        "units": result.units,
        "orders": result.orders,
        "steps": result.steps,
        "per_class": {c.product_type: c.steps for c in result.classes},
        "missing": {f"{m.product_type}<-{m.input_type}": m.slices for m in result.missing},
        "serial_hours": round(result.serial_seconds / 3600, 1),
        "wall_hours": round(result.wall_seconds / 3600, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    out: dict[str, Any] = {"bench": "campaign_dryrun"}
    with tempfile.TemporaryDirectory(prefix="bench_campaign_") as tmp_:
        tmp = Path(tmp_)
        mission_file = _mission(tmp)
        sqlite_url = f"sqlite:///{tmp / 'catalog.db'}"
        upgrade(make_engine(sqlite_url))
        backends = [("sqlite", sqlite_url)]
        name = f"bench_campaign_{uuid.uuid4().hex[:8]}"
        admin = make_engine(args.pg, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            pg_url = args.pg.rsplit("/", 1)[0] + f"/{name}"
            upgrade(make_engine(pg_url))
            backends.append(("postgresql", pg_url))
        except Exception as exc:  # pragma: no cover - depends on the machine
            print(f"PostgreSQL not reachable ({exc}); SQLite only")
        try:
            for backend, url in backends:
                catalog = Catalog(url)
                t0 = time.perf_counter()
                out["products"] = populate(catalog, mission_file)
                print(f"{backend}: {out['products']:,} products inserted in {time.perf_counter() - t0:.1f} s")
                figures = measure(catalog)
                print(f"{backend}: dry run {figures['seconds']} s, {figures}")
                out[f"{backend}_s"] = figures["seconds"]
                out.update({k: v for k, v in figures.items() if k != "seconds"})
                catalog.engine.dispose()
        finally:
            if len(backends) > 1:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
