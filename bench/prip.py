"""Benchmark: PRIP ``Products`` queries over a catalogue of a million S5P products on PostgreSQL.

A fresh PostgreSQL database gets the S5P sample mission (``sync_mission``) and N products
with their files and footprints, written in bulk the way ingestion and registration store
them (bench/prip_fill.py says how), then VACUUM ANALYZE. The /proseo app is served by
uvicorn in a process of its own and queried over HTTP with a real Airflow JWT (SimpleAuthManager, as
tests/api/conftest.py does) by a user who may view S5P. Kinds of query, each $top=100:

* filtered: productType + ContentDate window (1 to 30 days) + another attribute
  (timeliness, orbitNumber range or the ``collection`` parameter), ordered by
  PublicationDate desc or ContentDate/Start asc;
* paged: the same with $skip 100 to 900 (pages 2 to 10);
* published: what a pull client asks, ``PublicationDate gt <cursor>`` in PublicationDate
  order;
* footprint: Intersects with a 2 to 5 degree polygon somewhere, ordered by
  PublicationDate desc (the hardest: an area meets a few % of all orbits' swaths);
* footprint_typed: the same area with productType and a 30-day window.

Each kind runs a warm-up, then ``--queries`` timed queries over HTTP (client-side wall
time of the whole request), and the same queries through ``products_answer`` in-process
(no HTTP, no JSON encoding). EXPLAIN (ANALYZE, BUFFERS) of one page statement per kind is
printed.

    .venv/bin/python bench/prip.py [--products 1000000] [--queries 200]

The last line is JSON: {"bench": "prip", "products": N, "p95_filtered_ms": a,
"p95_footprint_ms": b, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="proseo_bench_prip_home_")
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", uuid.uuid4().hex * 2)

from sqlalchemy import event, text

from prip_fill import fill, sample_places
from proseo.catalog import access
from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.footprints import footprint_of, intersects
from proseo.catalog.model_mission import Mission
from proseo.catalog.schema import upgrade
from proseo.interfaces.prip_entity import products_answer

PRIP = "/proseo/prip/odata/v1"
KINDS = ("filtered", "paged", "published", "footprint", "footprint_typed")
TYPES = ["L2__NO2___", "L2__O3____", "L2__CH4___", "L2__CLOUD_", "L1B_RA_BD3", "L0__ODB_1_", "L1B_IR_UVN"]


def _attr(kind: str, name: str, op: str, value: str) -> str:
    return (
        f"Attributes/OData.CSC.{kind}Attribute/any(att:att/Name eq '{name}' "
        f"and att/OData.CSC.{kind}Attribute/Value {op} {value})"
    )


def _t(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _area(lon: float, lat: float, size: float) -> str:
    x0, x1, y0, y1 = lon - size / 2, lon + size / 2, lat - size / 2, lat + size / 2
    ring = f"{x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}"
    return f"OData.CSC.Intersects(area=geography'SRID=4326;POLYGON(({ring}))')"


def make_queries(
    kind: str, n: int, seed: int, lo: datetime, hi: datetime, orbits: tuple[int, int]
) -> list[dict]:
    """``n`` query parameter sets of one kind, spread over the catalogue's time and the globe."""
    rng = random.Random(f"{seed}-{kind}")
    places = sample_places(seed + len(kind), n)
    out = []
    for i in range(n):
        ptype = rng.choice(TYPES)
        days = rng.choice([1, 2, 7, 30])
        start = lo + (hi - lo - timedelta(days=days)) * rng.random()
        window = f"ContentDate/Start ge {_t(start)} and ContentDate/End le {_t(start + timedelta(days=days))}"
        typed = _attr("String", "productType", "eq", f"'{ptype}'")
        if kind == "published":  # a pull client's page: what was published after its cursor
            since = lo + (hi - lo) * rng.random()
            params = {
                "$filter": f"PublicationDate gt {_t(since)}",
                "$orderby": "PublicationDate asc",
                "$top": "100",
            }
        elif kind in ("filtered", "paged"):
            if ptype.startswith("L0"):
                extra = _attr("Integer", "orbitNumber", "ge", str(rng.randint(*orbits)))
            else:
                extra = rng.choice(
                    [
                        _attr("String", "timeliness", "eq", f"'{rng.choice(['NRTI', 'OFFL'])}'"),
                        _attr("Integer", "collection", "eq", "1"),
                        _attr("Integer", "orbitNumber", "ge", str(rng.randint(*orbits))),
                    ]
                )
            params = {
                "$filter": f"{typed} and {window} and {extra}",
                "$orderby": rng.choice(["PublicationDate desc", "ContentDate/Start asc"]),
                "$top": "100",
            }
            if kind == "paged":
                params["$skip"] = str(100 * rng.randint(1, 9))
        else:
            lon, lat = places[i]
            area = _area(lon, lat, rng.choice([2.0, 3.0, 5.0]))
            if kind == "footprint_typed":
                start = lo + (hi - lo - timedelta(days=30)) * rng.random()
                area = (
                    f"{area} and {typed} and ContentDate/Start ge {_t(start)} and "
                    f"ContentDate/Start lt {_t(start + timedelta(days=30))}"
                )
            params = {"$filter": area, "$orderby": "PublicationDate desc", "$top": "100"}
        params["$expand"] = "Attributes"
        out.append(params)
    return out


_SERVER = """
import sys, uvicorn
from fastapi import FastAPI
from airflow.api_fastapi.app import create_auth_manager
from proseo.api.app import create_app
create_auth_manager().init()
outer = FastAPI()
outer.mount("/proseo", create_app(catalog_url=sys.argv[1], airflow_url=""))
uvicorn.run(outer, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def serve(catalog_url: str) -> tuple[str, Callable[[], None]]:
    """The /proseo app under uvicorn in a process of its own; its base URL and a stop function.

    Its own process, so the client's Python does not share the server's interpreter lock.
    """
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", _SERVER, catalog_url, str(port)], env=os.environ)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{base}/proseo/prip/odata/v1/", timeout=1)
            break
        except httpx.TransportError:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}") from None
            time.sleep(0.1)

    def stop() -> None:
        server.terminate()
        server.wait(10)

    return base, stop


def token(user: str) -> str:
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.utils.db import initdb

    initdb()
    manager = create_auth_manager()
    manager.init()
    return str(
        manager.generate_jwt(
            SimpleAuthManagerUser(username=user, role="viewer"), expiration_time_in_seconds=6 * 3600
        )
    )


def stats(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[max(0, -(-95 * len(ordered) // 100) - 1)], 1),
        "max": round(ordered[-1], 1),
    }


def time_http(base: str, jwt: str, queries: list[dict], warmup: int) -> tuple[list[float], list[int]]:
    import httpx

    times, sizes = [], []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {jwt}"}, timeout=120) as http:
        for i, params in enumerate(queries[:warmup] + queries):
            t0 = time.perf_counter()
            answer = http.get(f"{PRIP}/Products", params=params)
            elapsed = (time.perf_counter() - t0) * 1000
            assert answer.status_code == 200, answer.text[:500]
            if i >= warmup:
                times.append(elapsed)
                sizes.append(len(answer.json()["value"]))
    return times, sizes


def time_direct(catalog: Catalog, queries: list[dict], warmup: int) -> list[float]:
    times = []
    for i, params in enumerate(queries[:warmup] + queries):
        t0 = time.perf_counter()
        with catalog.session() as session:
            products_answer(
                session,
                params,
                base_url="http://x/Products",
                scope=Mission.code.in_(["S5P"]),
                footprint=intersects,
                footprint_of=lambda row: footprint_of(row.product),
            )
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def explain(catalog: Catalog, params: dict) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the page statement ``products_answer`` runs for ``params``."""
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "FROM product" in statement and "LIMIT" in statement:
            seen.append((statement, parameters))

    event.listen(catalog.engine, "before_cursor_execute", keep)
    try:
        with catalog.session() as session:
            products_answer(
                session,
                params,
                base_url="http://x/Products",
                scope=Mission.code.in_(["S5P"]),
                footprint=intersects,
            )
    finally:
        event.remove(catalog.engine, "before_cursor_execute", keep)
    statement, parameters = seen[-1]
    with catalog.engine.connect() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters).all()
    return "\n".join(r[0] for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200, help="timed queries per kind")
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries per kind first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--database", help="reuse this filled database (kept afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the database (name printed)")
    args = parser.parse_args()
    if args.products < 1000 or args.queries < 1:
        parser.error("--products must be at least 1000 and --queries at least 1")
    load_before = os.getloadavg()[0]
    pg_name = args.database or f"proseo_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{args.pg}/test", isolation_level="AUTOCOMMIT")
    url = f"{args.pg}/{pg_name}"
    os.environ["PROSEO_DATA"] = "/var/lib/proseo/data"
    fill_s: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = {}
    plans: dict[str, str] = {}
    try:
        if not args.database:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        engine = make_engine(url)
        catalog = Catalog(url, engine=engine)
        if not args.database:
            upgrade(engine)
            fill_s = fill(catalog, args.products, datetime.now(UTC).replace(tzinfo=None))
            print(
                f"filled {args.products} products: " + ", ".join(f"{k} {v:.1f} s" for k, v in fill_s.items()),
                flush=True,
            )
        if not args.database:
            with catalog.session() as s:
                access.grant(s, "bench-viewer", "S5P", "viewer", by="bench")
        with engine.connect() as conn:
            count = conn.scalar(text("SELECT count(*) FROM product"))
            lo, hi = conn.execute(text("SELECT min(sensing_start), max(sensing_start) FROM product")).one()
            orbits = conn.execute(
                text(
                    "SELECT min(number), max(number) FROM orbit o "
                    "WHERE EXISTS (SELECT 1 FROM product p WHERE p.orbit_id = o.id)"
                )
            ).one()
            size = conn.scalar(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
        jwt = token("bench-viewer")
        base, stop = serve(url)
        try:
            for kind in KINDS:
                queries = make_queries(kind, args.queries + args.warmup, args.seed, lo, hi, tuple(orbits))
                warm, timed = queries[: args.warmup], queries[args.warmup :]
                http_ms, sizes = time_http(base, jwt, warm + timed, len(warm))
                direct_ms = time_direct(catalog, warm + timed, len(warm))
                results[kind] = {
                    "http": stats(http_ms),
                    "direct": stats(direct_ms),
                    "rows_mean": round(statistics.mean(sizes), 1),
                    "queries": len(timed),
                }
                plans[kind] = explain(catalog, timed[0])
                print(f"{kind}: {results[kind]}", flush=True)
        finally:
            stop()
        engine.dispose()
    finally:
        if not (args.keep or args.database):
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()

    for kind, plan in plans.items():
        print(f"\n--- EXPLAIN ANALYZE, {kind} (first timed query) ---\n{plan}")
    print(
        f"\n{count} products ({size}) sensed {lo:%Y-%m-%d} to {hi:%Y-%m-%d}; $top=100, "
        f"{args.queries} timed queries per kind after {args.warmup} warm-up; ms, client wall time"
    )
    print(f"{'kind':<17}{'HTTP p50':>9}{'p95':>8}{'max':>8}{'direct p50':>12}{'p95':>8}{'max':>8}{'rows':>7}")
    for kind, r in results.items():
        h, d = r["http"], r["direct"]
        print(
            f"{kind:<17}{h['p50']:>9}{h['p95']:>8}{h['max']:>8}{d['p50']:>12}{d['p95']:>8}{d['max']:>8}"
            f"{r['rows_mean']:>7}"
        )
    if args.keep and not args.database:
        print(f"kept database {pg_name}", file=sys.stderr)
    summary: dict[str, Any] = {
        "bench": "prip",
        "products": count,
        "p95_filtered_ms": results["filtered"]["http"]["p95"],
        "p95_footprint_ms": results["footprint"]["http"]["p95"],
        "p95_published_ms": results["published"]["http"]["p95"],
        "p50_filtered_ms": results["filtered"]["http"]["p50"],
        "p50_footprint_ms": results["footprint"]["http"]["p50"],
        "queries": sum(r["queries"] for r in results.values()),
    }
    for kind, r in results.items():
        for via in ("http", "direct"):
            for stat, v in r[via].items():
                summary[f"{kind}_{via}_{stat}_ms"] = v
    summary.update({f"fill_{k}_s": round(v, 1) for k, v in fill_s.items()})
    # The 1-minute load average before and after: 2 cores, so above 2 the figures were shared.
    summary["load_before"] = round(load_before, 2)
    summary["load_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
