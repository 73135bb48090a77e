"""Benchmark: ingest N generated S5P L0 products into SQLite and PostgreSQL catalogues.

For each backend: a fresh catalogue, the S5P sample mission loaded, then the timed
ingest (copy into the facility's file:// storage with checksums, registration in
batches). Side by side it runs a peer: the same files copied and checksummed with
plain shutil/hashlib and no catalogue, the floor any ingest must pay. It also times
a second ingest of the same files (all recognised as unchanged).

    .venv/bin/python bench/ingest.py [--products 10000] [--size 16384]

The last line is JSON: {"bench": "ingest", "products": N, "per_s_sqlite": x, "per_s_postgresql": y}
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission

REPO = Path(__file__).resolve().parents[1]
L0 = {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"}


def generate(n: int, size: int, out: Path) -> list[Path]:
    mission = load_mission(REPO / "mission_configs" / "s5p.yaml")
    orbits = mission.orbits["S5P"]
    needed = (n + len(L0) - 1) // len(L0)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    stop = orbits[needed - 1].stop
    return write_inputs(mission, start, stop, out, size=size, classes=L0)[:n]


def plain_copy(files: list[Path], dest: Path, workers: int) -> float:
    """Peer: copy and MD5+SHA-256 each file, no catalogue."""

    def one(path: Path) -> None:
        md5, sha = hashlib.md5(), hashlib.sha256()
        target = dest / path.name
        with path.open("rb") as src, target.open("wb") as dst:
            while chunk := src.read(8 << 20):
                md5.update(chunk)
                sha.update(chunk)
                dst.write(chunk)

    dest.mkdir(parents=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, files))
    return time.perf_counter() - t0


def run_backend(name: str, url: str, files: list[Path], data: Path, workers: int) -> dict[str, float]:
    os.environ["PROSEO_DATA"] = str(data)
    engine = make_engine(url)
    upgrade(engine)
    catalog = Catalog(url, engine=engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(REPO / "mission_configs" / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    ingestor = Ingestor(catalog, mission, workers=workers)
    t0, c0 = time.perf_counter(), time.process_time()
    report = ingestor.run(files)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    if report.count("new") != len(files):
        bad = [o for o in report.outcomes if o.status != "new"][:3]
        raise SystemExit(f"{name}: ingest did not register every file: {bad}")
    t1 = time.perf_counter()
    again = ingestor.run(files)
    reingest = time.perf_counter() - t1
    assert again.count("unchanged") == len(files)
    engine.dispose()
    return {"seconds": seconds, "cpu": cpu, "per_s": len(files) / seconds, "reingest_s": reingest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=16 * 1024, help="bytes per file")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--pg",
        default="postgresql+psycopg://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (a scratch database is created and dropped)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="proseo_bench_ingest_"))
    pg_name = f"proseo_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{args.pg}/test", isolation_level="AUTOCOMMIT")
    try:
        t0 = time.perf_counter()
        files = generate(args.products, args.size, work / "in")
        print(
            f"generated {len(files)} L0 files of {args.size} bytes in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
        peer = plain_copy(files, work / "plain", args.workers)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        results = {
            "sqlite": run_backend(
                "sqlite", f"sqlite:///{work / 'catalog.db'}", files, work / "sqlite", args.workers
            ),
            "postgresql": run_backend("postgresql", f"{args.pg}/{pg_name}", files, work / "pg", args.workers),
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)

    n = len(files)
    peer_rate = n / peer
    print(f"{'run':<28}{'seconds':>9}{'products/s':>12}{'vs plain copy':>15}{'re-ingest s':>13}")
    print(f"{'plain copy + checksums':<28}{peer:>9.2f}{peer_rate:>12.0f}{1.0:>15.2f}{'':>13}")
    for name, r in results.items():
        print(
            f"{'ingest ' + name:<28}{r['seconds']:>9.2f}{r['per_s']:>12.0f}"
            f"{r['per_s'] / peer_rate:>15.2f}{r['reingest_s']:>13.2f}"
        )
    print(
        json.dumps(
            {
                "bench": "ingest",
                "products": n,
                "per_s_sqlite": round(results["sqlite"]["per_s"], 1),
                "per_s_postgresql": round(results["postgresql"]["per_s"], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
