"""Fill a PostgreSQL catalogue with N S5P products as ingestion and registration store them.

The S5P sample mission is loaded with ``sync_mission`` (its orbit generator moved back to
2018 so that a million products fit the mission's history: 22 products per orbit and 7 a
day take about 8.5 years). Products, their files and footprints are then written by
``INSERT ... SELECT`` over the orbit table, the rows shaped like the real code's:

* per orbit: the four L0 (OPER, no mode, no parameters, ingested 20-30 min after the
  orbit), and for NRTI and OFFL each the L1B set (the enclosing product and its four band
  components, ``enclosing_product_id`` set) and the four L2, with the parameters the sample
  processors report plus the planned ``collection``, the configured processor, the
  generation (planning) time and ``raw_available_at`` of the L0;
* per day: the OFFL L3 (globe footprint) and the AUX files (MET_TP every 6 h, CTMFCT,
  NISE), which have no orbit and no footprint;
* footprints: :func:`proseo.processors.swath.swath` of the orbit (as the processors give
  it; L0__ENG_A_ has none); one file per product with size, MD5, SHA-256, XXH3 (hex of
  the right length) and a unique ``storage_url`` in the facility's layout.

The identity is a SHA-256 of the product's identifying fields and the UUID is derived from
it, as ``product_identity``/``product_uuid`` do (not byte-identical hashes: unique ones).
The newest N candidates are kept, so the catalogue ends just before today.
"""

from __future__ import annotations

import io
import json
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from proseo.catalog.db import Catalog
from proseo.catalog.geometry import Geometry
from proseo.catalog.mission_sync import sync_mission
from proseo.missions import load_mission
from proseo.processors.swath import swath

REPO = Path(__file__).resolve().parents[1]
EPOCH = "2018-05-01T00:00:00Z"
FIRST_ORBIT = 2800

L1B_BANDS = ["L1B_RA_BD3", "L1B_RA_BD4", "L1B_RA_BD6", "L1B_IR_UVN"]
L2 = {"L2__CLOUD_": ("CLOUD", 3), "L2__NO2___": ("NO2", 2), "L2__O3____": ("O3", 2), "L2__CH4___": ("CH4", 1)}
_ORBIT_NAME = "S5P_{mode}_{type}_{start}_{stop}_{orbit}_01_{gen}.nc"
_L0_NAME = "S5P_OPER_{type}_{start}_{stop}_{orbit}_{gen}.RAW"
_AUX_NAME = "S5P_OPER_{type}_{start}_{stop}_{gen}.nc"
_L3_NAME = "S5P_OFFL_{type}_{start}_{stop}_01_{gen}.nc"


def mission_text() -> str:
    """The S5P sample mission with its orbits generated from 2018 (same period, same end)."""
    src = (REPO / "mission_configs" / "s5p.yaml").read_text()
    out = src.replace("epoch: 2025-01-01T00:00:00Z", f"epoch: {EPOCH}").replace(
        "first_orbit: 37000", f"first_orbit: {FIRST_ORBIT}"
    )
    assert out != src and EPOCH in out, (
        "the sample mission's orbit generator changed: adapt bench/prip_fill.py"
    )
    return out


def _kinds() -> list[dict[str, Any]]:
    """One row per kind of product: class, mode, processor, parameters, delays, name form."""
    kinds: list[dict[str, Any]] = []

    def add(ptype: str, **kw: Any) -> None:
        kinds.append(
            {
                "k": len(kinds),
                "ptype": ptype,
                "daily": False,
                "start_h": 0,
                "hours": 0,
                "fp": True,
                "mode": None,
                "proc": None,
                "cfg": None,
                "params": {},
                "delay_min": 20,
                "name": _ORBIT_NAME,
                "size_mb": 300,
                "enclosing": None,
                **kw,
            }
        )

    for t in ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"):
        add(t, name=_L0_NAME, fp=t != "L0__ENG_A_", size_mb=600 if t != "L0__ENG_A_" else 40)
    for mode, delay in (("NRTI", 60), ("OFFL", 12 * 60)):
        cfg = ("L01B", "02.10.00", "2025.01")
        enclosing = len(kinds)
        bands = [b.removeprefix("L1B_") for b in L1B_BANDS]
        add(
            "L1B_______",
            mode=mode,
            proc=cfg,
            delay_min=delay,
            size_mb=5,
            params={"level": "L1B", "components": sorted(L1B_BANDS), "l0_files": 3, "collection": 1},
        )
        for band, b in zip(L1B_BANDS, bands, strict=True):
            add(
                band,
                mode=mode,
                proc=cfg,
                delay_min=delay,
                size_mb=1500,
                enclosing=enclosing,
                params={"level": "L1B", "band": b, "l0_files": 3, "collection": 1},
            )
        for t, (species, l1b) in L2.items():
            add(
                t,
                mode=mode,
                proc=(f"L2_{species}", "01.04.00", "2025.01"),
                delay_min=delay + 45,
                size_mb=250,
                params={"level": "L2", "species": species, "l1b_files": l1b, "collection": 1},
            )
    daily = {"daily": True, "fp": False, "name": _AUX_NAME, "delay_min": -6 * 60, "size_mb": 50}
    for h in (0, 6, 12, 18):
        add("AUX_MET_TP", **{**daily, "start_h": h, "hours": 6})
    add("AUX_CTMFCT", **{**daily, "hours": 24, "size_mb": 400})
    add("AUX_NISE__", **{**daily, "hours": 24, "delay_min": 6 * 60, "size_mb": 20})
    add(
        "L3__NO2___",
        daily=True,
        hours=24,
        mode="OFFL",
        proc=("L3_NO2", "00.09.00", "2025.01"),
        name=_L3_NAME,
        delay_min=36 * 60,
        size_mb=120,
        params={"level": "L3", "species": "NO2", "orbits_gridded": 15, "collection": 1},
    )
    return kinds


def _copy(conn: Connection, table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    raw = conn.connection.driver_connection
    with raw.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
        copy.write(buf.getvalue())


_FILL = """
CREATE TEMP TABLE cand AS
WITH o AS (
  SELECT o.id AS orbit_id, o.number, o.start_time AS s, o.stop_time AS e
  FROM orbit o WHERE o.stop_time < :cutoff
), days AS (
  SELECT d AS day FROM generate_series(:first_day, :last_day, interval '1 day') d
), raw AS (
  SELECT k.k, o.orbit_id, o.number, o.s, o.e FROM o CROSS JOIN bench_kind k WHERE NOT k.daily
  UNION ALL
  SELECT k.k, NULL, NULL, d.day + make_interval(hours => k.start_h),
         d.day + make_interval(hours => k.start_h + k.hours)
  FROM days d CROSS JOIN bench_kind k WHERE k.daily
)
SELECT * FROM raw ORDER BY s DESC, k LIMIT :n
"""

_TIMES = """
CREATE TEMP TABLE prod AS
SELECT q.*, row_number() OVER (ORDER BY q.created, q.k) AS id,
  encode(sha256(convert_to(concat_ws('|', 'S5P', q.ptype, 'OPER', q.mode, q.s, q.e, q.gen, q.cp_id,
    q.params::text), 'UTF8')), 'hex') AS ident,
  replace(replace(replace(replace(replace(replace(q.name, '{mode}', coalesce(q.mode, '')), '{type}', q.ptype),
    '{start}', to_char(q.s, 'YYYYMMDD"T"HH24MISS')), '{stop}', to_char(q.e, 'YYYYMMDD"T"HH24MISS')),
    '{orbit}', lpad(coalesce(q.number, 0)::text, 5, '0')),
    '{gen}', to_char(q.gen, 'YYYYMMDD"T"HH24MISS')) AS fname
FROM (
  SELECT c.*, k.ptype, k.mode, k.params, k.fp, k.name, k.size_mb, k.enclosing, k.class_id, k.cp_id, g.gen,
    CASE WHEN k.mode IS NULL THEN g.gen + interval '5 minutes'
         ELSE g.gen + (20 + floor(random() * 70)) * interval '1 minute' END AS created,
    c.e + (25 + floor(random() * 10)) * interval '1 minute' AS raw_at
  FROM cand c JOIN bench_kind k USING (k)
  CROSS JOIN LATERAL (SELECT c.e + (k.delay_min + floor(random() * 20)) * interval '1 minute' AS gen) g
) q
"""

_PRODUCT = """
INSERT INTO product (id, uuid, identity, mission_id, product_class_id, file_class, mode, sensing_start,
  sensing_stop, generation_time, production_type, status, parameters, orbit_id, configured_processor_id,
  created_at, raw_available_at, footprint)
SELECT p.id, md5(p.ident)::uuid::text, p.ident, :mission, p.class_id, 'OPER', p.mode, p.s, p.e,
  p.gen, 'SYSTEMATIC', 'AVAILABLE', p.params, p.orbit_id, p.cp_id,
  p.created, CASE WHEN p.mode IS NULL THEN p.created ELSE p.raw_at END,
  CASE WHEN NOT p.fp THEN NULL WHEN p.orbit_id IS NULL THEN ST_GeomFromEWKT(:globe) ELSE f.geom END
FROM prod p LEFT JOIN bench_fp f ON f.orbit_id = p.orbit_id
ORDER BY p.id
"""

_FILE = """
INSERT INTO product_file (product_id, facility_id, file_name, storage_url, size, md5, sha256, xxh128,
  created_at)
SELECT p.id, :facility, p.fname, :root || p.ptype || to_char(p.s, '/YYYY/MM/DD/') || p.fname,
  (p.size_mb * 1048576 * (0.8 + 0.4 * random()))::bigint, md5(p.ident || 'md5'),
  encode(sha256(convert_to(p.ident, 'UTF8')), 'hex'), md5(p.ident || 'xxh'),
  p.created
FROM prod p ORDER BY p.id
"""


def fill(catalog: Catalog, n: int, today: datetime) -> dict[str, float]:
    """Load the mission and write ``n`` products ending before ``today``; seconds per phase."""
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    with catalog.session() as s:
        sync_mission(s, load_mission(REPO / "mission_configs" / "s5p.yaml", text=mission_text()))
    seconds["mission"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with catalog.engine.begin() as conn:
        mission = conn.scalar(text("SELECT id FROM mission WHERE code = 'S5P'"))
        classes = dict(
            conn.execute(
                text("SELECT product_type, id FROM product_class WHERE mission_id = :m"), {"m": mission}
            ).all()
        )
        procs = {
            (c, v, cfg): i
            for i, c, v, cfg in conn.execute(
                text("SELECT id, processor_class, version, configuration FROM configured_processor")
            )
        }
        facility, root = conn.execute(
            text("SELECT id, storage_url FROM facility WHERE mission_id = :m ORDER BY is_default DESC, id"),
            {"m": mission},
        ).first()  # type: ignore[misc]
        conn.execute(
            text(
                "CREATE TEMP TABLE bench_kind (k int, ptype text, daily bool, start_h int, hours int, "
                "fp bool, mode text, params jsonb, delay_min int, name text, size_mb int, enclosing int, "
                "class_id int, cp_id int)"
            )
        )
        _copy(
            conn,
            "bench_kind",
            "k, ptype, daily, start_h, hours, fp, mode, params, delay_min, name, "
            "size_mb, enclosing, class_id, cp_id",
            [
                (
                    k["k"],
                    k["ptype"],
                    k["daily"],
                    k["start_h"],
                    k["hours"],
                    k["fp"],
                    k["mode"],
                    json.dumps(k["params"]),
                    k["delay_min"],
                    k["name"],
                    k["size_mb"],
                    k["enclosing"],
                    classes[k["ptype"]],
                    procs[k["proc"]] if k["proc"] else None,
                )
                for k in _kinds()
            ],
        )
        cutoff = today - timedelta(days=2)
        orbits = conn.execute(
            text("SELECT id, start_time, stop_time FROM orbit WHERE stop_time < :c"), {"c": cutoff}
        ).all()
        conn.execute(text("CREATE TEMP TABLE bench_fp (orbit_id int PRIMARY KEY, geom geometry)"))
        _copy(
            conn,
            "bench_fp",
            "orbit_id, geom",
            [
                (
                    i,
                    "SRID=4326;"
                    + Geometry.from_geojson(swath(a.replace(tzinfo=UTC), b.replace(tzinfo=UTC))).wkt(),
                )
                for i, a, b in orbits
            ],
        )
        conn.execute(text("SELECT setseed(0.42)"))
        first_day = orbits[0][1].replace(hour=0, minute=0, second=0)
        conn.execute(
            text(_FILL),
            {"cutoff": cutoff, "first_day": first_day, "last_day": cutoff - timedelta(days=1), "n": n},
        )
        conn.execute(text(_TIMES))
        conn.execute(text("CREATE INDEX ON prod (orbit_id, k)"))
        seconds["generate"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        globe = "SRID=4326;POLYGON((-180 -90,180 -90,180 90,-180 90,-180 -90))"
        conn.execute(text(_PRODUCT), {"mission": mission, "globe": globe})
        conn.execute(
            text("""
            UPDATE product c SET enclosing_product_id = e.id
            FROM prod pc JOIN bench_kind k ON k.k = pc.k
            JOIN prod e ON e.orbit_id = pc.orbit_id AND e.k = k.enclosing
            WHERE c.id = pc.id AND k.enclosing IS NOT NULL""")
        )
        conn.execute(text(_FILE), {"facility": facility, "root": root.rstrip("/") + "/"})
        conn.execute(
            text("SELECT setval(pg_get_serial_sequence('product', 'id'), (SELECT max(id) FROM product))")
        )
        seconds["insert"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with catalog.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    seconds["analyze"] = time.perf_counter() - t0
    return seconds


def sample_places(seed: int, count: int) -> list[tuple[float, float]]:
    """Centres of query areas: anywhere between 60 S and 70 N (where swaths are)."""
    rng = random.Random(seed)
    return [(round(rng.uniform(-170, 170), 2), round(rng.uniform(-60, 70), 2)) for _ in range(count)]
