"""Benchmark: plan a month of S5P daily L3 (fan-in from orbit L2, L1B, L0 and AUX inputs).

For each backend: a fresh catalogue, the S5P sample mission loaded, every L0 and AUX
delivery of the period ingested (so every rule really selects products), then one
order planned with the job-step bound lifted. Side by side, a peer evaluates the
same job steps' rules the way a per-step planner does: one catalogue query per job
step per input rule, over that rule's widened window. The plan's own SQL statements
are counted, so the figure shows whether reads stay batched.

    .venv/bin/python bench/plan.py [--days 30]

The last line is JSON: {"bench": "plan", "job_steps": N, "sqlite_s": a, "postgresql_s": b, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, event, select, text

from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.model import Plan
from proseo.planning.spec import OrderSpec
from proseo.rules import parse_simple
from proseo.rules.ast import WINDOWLESS
from proseo.rules.evaluate import evaluate, widen
from proseo.rules.policies import Candidate

REPO = Path(__file__).resolve().parents[1]
START = datetime(2025, 3, 1, tzinfo=UTC)


def per_step_peer(catalog: Catalog, plan: Plan) -> tuple[float, int]:
    """Evaluate every input of every job step with its own catalogue query."""
    queries = 0
    t0 = time.perf_counter()
    with catalog.session() as s:
        class_ids = dict(s.execute(select(ProductClass.product_type, ProductClass.id)).all())
        for step in plan.steps:
            for inp in step.inputs:
                rule = parse_simple(inp.rule_text)
                pool: dict[str, list[Candidate]] = {}
                for alt in rule.alternatives:
                    query = select(Product).where(
                        Product.product_class_id == class_ids[alt.source.product_type]
                    )
                    windowed = [p for p in alt.chain if p.name not in WINDOWLESS]
                    if len(windowed) == len(alt.chain):
                        lo = min(widen(step.slice.start, step.slice.stop, p).start for p in windowed)
                        hi = max(widen(step.slice.start, step.slice.stop, p).stop for p in windowed)
                        query = query.where(and_(Product.sensing_start <= hi, Product.sensing_stop >= lo))
                    rows = s.scalars(query).all()
                    queries += 1
                    pool[alt.source.product_type] = [
                        Candidate(
                            p.id, p.sensing_start, p.sensing_stop, p.generation_time, dict(p.parameters)
                        )
                        for p in rows
                    ]
                evaluate(rule, pool, step.slice.start, step.slice.stop)
    return time.perf_counter() - t0, queries


def run_backend(url: str, data: Path, files_dir: Path, days: int) -> dict[str, Any]:
    os.environ["PROSEO_DATA"] = str(data)
    engine = make_engine(url)
    upgrade(engine)
    catalog = Catalog(url, engine=engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(REPO / "mission_configs" / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    stop = START + timedelta(days=days)
    files = write_inputs(mission, START - timedelta(hours=6), stop + timedelta(hours=6), files_dir, size=64)
    assert Ingestor(catalog, mission).run(files).ok
    spec = OrderSpec(
        identifier="bench",
        requested_classes=["L3__NO2___"],
        start=START,
        stop=stop,
        processing_mode="OFFL",
        output_parameters={"*": {"collection": 1}},
    )
    with catalog.session() as s:
        orders.create_order(s, "S5P", spec)
    lifecycle.approve_order(catalog, "S5P", "bench")
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    event.listen(engine, "before_cursor_execute", count)
    t0, c0 = time.perf_counter(), time.process_time()
    plan = lifecycle.plan_order(catalog, "S5P", "bench", max_steps=1_000_000)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    event.remove(engine, "before_cursor_execute", count)
    satisfied = sum(1 for s in plan.steps for i in s.inputs if i.satisfied)
    inputs = sum(len(s.inputs) for s in plan.steps)
    peer_s, peer_queries = per_step_peer(catalog, plan)
    engine.dispose()
    return {
        "ingested": len(files),
        "job_steps": len(plan.steps),
        "inputs": inputs,
        "satisfied": satisfied,
        "seconds": seconds,
        "cpu": cpu,
        "statements": statements[0],
        "reads": plan.queries,
        "peer_seconds": peer_s,
        "peer_queries": peer_queries,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_plan_"))
    pg_name = f"proseo_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{args.pg}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        results = {
            "sqlite": run_backend(
                f"sqlite:///{work / 'catalog.db'}", work / "sqlite", work / "in1", args.days
            ),
            "postgresql": run_backend(f"{args.pg}/{pg_name}", work / "pg", work / "in2", args.days),
        }
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)

    first = results["sqlite"]
    print(
        f"{args.days} days of L3__NO2___: {first['job_steps']} job steps, {first['inputs']} inputs "
        f"({first['satisfied']} satisfied), {first['ingested']} products ingested",
        file=sys.stderr,
    )
    print(
        f"{'backend':<12}{'plan s':>9}{'steps/s':>10}{'SQL stmts':>11}{'reads':>7}"
        f"{'peer s':>9}{'peer reads':>12}{'peer/plan':>11}"
    )
    for name, r in results.items():
        print(
            f"{name:<12}{r['seconds']:>9.2f}{r['job_steps'] / r['seconds']:>10.0f}{r['statements']:>11}"
            f"{r['reads']:>7}{r['peer_seconds']:>9.2f}{r['peer_queries']:>12}"
            f"{r['peer_seconds'] / r['seconds']:>11.2f}"
        )
    print(
        json.dumps(
            {
                "bench": "plan",
                "days": args.days,
                "job_steps": first["job_steps"],
                "sqlite_s": round(results["sqlite"]["seconds"], 3),
                "postgresql_s": round(results["postgresql"]["seconds"], 3),
                "sqlite_reads": results["sqlite"]["reads"],
                "postgresql_reads": results["postgresql"]["reads"],
                "peer_queries": first["peer_queries"],
                "peer_ratio_sqlite": round(
                    results["sqlite"]["peer_seconds"] / results["sqlite"]["seconds"], 2
                ),
                "peer_ratio_postgresql": round(
                    results["postgresql"]["peer_seconds"] / results["postgresql"]["seconds"], 2
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
