"""Benchmark: plan a year of S5P (every L2 class and the daily L3) and `snakemake -n` the same graph.

For each backend (SQLite, PostgreSQL): a fresh catalogue, the S5P sample mission loaded,
every L0 and AUX delivery of the period ingested (so every rule really selects products),
then one OFFL order for every L2 class and the daily L3 planned with the job-step bound
lifted; only ``lifecycle.plan_order`` is timed. Then a Snakefile is written from the plan
(bench/plan_snakefile.py: the same job steps and edges, the ingested inputs present as
files) and ``snakemake -n`` is timed on it; its job count must be the plan's plus one
(the ``all`` rule). snakemake runs from its own environment, .venv-bench (make install).

With --peer, a per-step planner is played as well: one catalogue query per job step per
input rule, over that rule's widened window (slow over a year).

    .venv/bin/python bench/plan.py [--days 365] [--peer]

The last line is JSON: {"bench": "plan", "job_steps": N, "seconds_sqlite": a,
"seconds_postgresql": b, "snakemake_seconds": c, "ratio_vs_snakemake": c/b, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, event, select, text

from plan_snakefile import dry_run, startup_seconds, write_workflow
from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.missions.loader import LoadedMission
from proseo.missions.types import ProcessingLevel
from proseo.planning import lifecycle, orders
from proseo.planning.model import Plan
from proseo.planning.spec import OrderSpec
from proseo.rules import parse_simple
from proseo.rules.ast import WINDOWLESS
from proseo.rules.evaluate import evaluate, widen
from proseo.rules.policies import Candidate

REPO = Path(__file__).resolve().parents[1]
START = datetime(2025, 1, 1, tzinfo=UTC)
SNAKEMAKE = REPO / ".venv-bench" / "bin" / "snakemake"


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


def requested_classes(mission: LoadedMission) -> list[str]:
    """Every produced L2 class and the L3: the whole chain down from L0 gets planned."""
    wanted = {ProcessingLevel.L2, ProcessingLevel.L3}
    return [t for t, pc in mission.config.product_classes.items() if pc.processor and pc.level in wanted]


def run_backend(url: str, data: Path, files_dir: Path, days: int, peer: bool) -> tuple[dict[str, Any], Plan]:
    os.environ["PROSEO_DATA"] = str(data)
    engine = make_engine(url)
    upgrade(engine)
    catalog = Catalog(url, engine=engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(REPO / "mission_configs" / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    stop = START + timedelta(days=days)
    files = write_inputs(mission, START - timedelta(hours=6), stop + timedelta(hours=6), files_dir, size=64)
    t0 = time.perf_counter()
    assert Ingestor(catalog, mission).run(files).ok
    ingest_s = time.perf_counter() - t0
    classes = requested_classes(mission)
    spec = OrderSpec(
        identifier="bench",
        requested_classes=classes,
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
    result: dict[str, Any] = {
        "classes": classes,
        "ingested": len(files),
        "ingest_seconds": ingest_s,
        "job_steps": len(plan.steps),
        "edges": sum(len(s.upstream) for s in plan.steps),
        "inputs": sum(len(s.inputs) for s in plan.steps),
        "satisfied": sum(1 for s in plan.steps for i in s.inputs if i.satisfied),
        "seconds": seconds,
        "cpu": cpu,
        "statements": statements[0],
        "reads": plan.queries,
    }
    if peer:
        result["peer_seconds"], result["peer_queries"] = per_step_peer(catalog, plan)
    engine.dispose()
    shutil.rmtree(files_dir, ignore_errors=True)
    shutil.rmtree(data, ignore_errors=True)
    return result, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365, help="length of the order from 2025-01-01")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--peer", action="store_true", help="also time a per-step planner (slow)")
    parser.add_argument("--snakemake", type=Path, default=SNAKEMAKE, help="the snakemake executable")
    parser.add_argument(
        "--keep", type=Path, help="write the Snakefile, its inputs and snakemake's log here and keep them"
    )
    args = parser.parse_args()
    if args.days < 1:
        parser.error(f"--days must be at least 1, not {args.days}")
    if not os.access(args.snakemake, os.X_OK):
        parser.error(f"no snakemake at {args.snakemake}: run `make install` (it makes .venv-bench)")
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_plan_"))
    pg_name = f"proseo_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{args.pg}/test", isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        sqlite, sqlite_plan = run_backend(
            f"sqlite:///{work / 'catalog.db'}", work / "sqlite", work / "in1", args.days, args.peer
        )
        del sqlite_plan
        postgresql, plan = run_backend(
            f"{args.pg}/{pg_name}", work / "pg", work / "in2", args.days, args.peer
        )
        results = {"sqlite": sqlite, "postgresql": postgresql}
        for key in ("job_steps", "edges", "satisfied"):
            assert sqlite[key] == postgresql[key], (
                f"{key}: SQLite {sqlite[key]}, PostgreSQL {postgresql[key]}"
            )
        workflow = write_workflow(plan, args.keep or work / "snakemake")
        del plan
        startup_seconds(args.snakemake)  # warm-up: the first run after install writes bytecode
        startup = startup_seconds(args.snakemake)
        snake = dry_run(args.snakemake, workflow)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)

    first = results["postgresql"]
    print(
        f"{args.days} days of {', '.join(first['classes'])} (OFFL): {first['job_steps']} job steps, "
        f"{first['edges']} edges, {first['inputs']} inputs ({first['satisfied']} satisfied), "
        f"{first['ingested']} products ingested"
    )
    print(f"{'':<22}{'seconds':>9}{'CPU s':>8}{'steps/s':>9}{'SQL stmts':>11}{'reads':>7}")
    for name, r in results.items():
        print(
            f"{'plan_order ' + name:<22}{r['seconds']:>9.2f}{r['cpu']:>8.2f}"
            f"{r['job_steps'] / r['seconds']:>9.0f}{r['statements']:>11}{r['reads']:>7}"
        )
    print(f"{'snakemake -n':<22}{snake.seconds:>9.2f}{snake.cpu:>8.2f}{workflow.jobs / snake.seconds:>9.0f}")
    if args.peer:
        for name, r in results.items():
            print(
                f"{'per-step ' + name:<22}{r['peer_seconds']:>9.2f}{'':>8}"
                f"{r['job_steps'] / r['peer_seconds']:>9.0f}{'':>11}{r['peer_queries']:>7}"
            )
    print(
        f"snakemake counted {snake.jobs} jobs ({workflow.jobs} job steps + all) over {workflow.edges} "
        f"edges and {workflow.present} present inputs; its start-up alone takes {startup:.2f} s. "
        f"Ingestion took {results['sqlite']['ingest_seconds']:.1f} s (SQLite), "
        f"{results['postgresql']['ingest_seconds']:.1f} s (PostgreSQL); CPU s of plan_order is the "
        "planning process only (PostgreSQL's server not counted)."
    )
    b = results["postgresql"]["seconds"]
    summary: dict[str, Any] = {
        "bench": "plan",
        "job_steps": first["job_steps"],
        "seconds_sqlite": round(results["sqlite"]["seconds"], 3),
        "seconds_postgresql": round(b, 3),
        "snakemake_seconds": round(snake.seconds, 3),
        "ratio_vs_snakemake": round(snake.seconds / b, 3),
        "days": args.days,
        "edges": first["edges"],
        "snakemake_jobs": snake.jobs,
        "snakemake_startup_seconds": round(startup, 3),
        # CPU seconds of the planning process (PostgreSQL's server not counted) and of snakemake.
        "cpu_sqlite": round(results["sqlite"]["cpu"], 3),
        "cpu_postgresql": round(results["postgresql"]["cpu"], 3),
        "snakemake_cpu_seconds": round(snake.cpu, 3),
        "ingested": first["ingested"],
        # The 1-minute load average before and after: the machine has 2 cores, so a load above
        # 2 means the figures were shared with other work.
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "sqlite_statements": results["sqlite"]["statements"],
        "postgresql_statements": results["postgresql"]["statements"],
        "sqlite_reads": results["sqlite"]["reads"],
        "postgresql_reads": results["postgresql"]["reads"],
    }
    if args.peer:
        summary["peer_queries"] = first["peer_queries"]
        for name, r in results.items():
            summary[f"peer_ratio_{name}"] = round(r["peer_seconds"] / r["seconds"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
