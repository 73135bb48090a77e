"""Benchmark: one released order of N job steps under a real scheduler, beside a plain Airflow DAG.

The proseo side is real end to end. A fresh catalogue (SQLite file by default,
``--catalog postgres`` for a throwaway database on 127.0.0.1:5432, user postgres) gets
the bench-only mission ``bench/schedule_mission/mission.yaml`` (RAW input -> L1 time
slices -> daily L2, every processor the stdlib no-op ``noop_processor.py``, which reads
its Job Order and writes its planned outputs); a day of RAW input per day is ingested;
ONE order for L2 over D days is created, approved, planned (planner bound raised to N)
and released through ``proseo.planning``: D x (k + 1) = N job steps in two levels, each
daily L2 step waiting for its k L1 steps. The factory's shard files from ``dags/`` go to
a temporary DAG folder, ``airflow standalone`` is started with
:mod:`proseo.devtools.standalone` (LocalExecutor, ``parallelism`` 4, SQLite metadata
DB), and the order's DAG must start BY ITSELF (``@once``, unpaused): no trigger. The
bench waits for the run to end, then checks the catalogue: order COMPLETED, every job
step COMPLETED, every planned output registered as a product with its file.

The peer is a plain DAG in the same Airflow (same folder, same parallelism, run after
the order, never concurrently): one BashOperator (``true``) per job step, with the
plan's exact edges (each L2 task downstream of its day's k L1 tasks), triggered through
the REST API. Both runs are timed by the DAG run's start_date -> end_date from the REST
API, and by wall clock (order: from the scheduler creating the run to its end seen by
polling; peer: from the trigger call).

    .venv/bin/python bench/schedule.py [--job-steps 1000] [--parallelism 4] [--catalog sqlite|postgres]

The last line is JSON: {"bench": "schedule", "job_steps": N, "seconds": a,
"plain_airflow_seconds": b, "ratio": a/b, ...}; goal: ratio at most 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent / "schedule_mission"
MISSION_FILE = HERE / "mission.yaml"
NOOP = HERE / "noop_processor.py"
DAY0 = datetime(2025, 3, 1, tzinfo=UTC)
PEER_DAG = "bench_plain_airflow"
ORDER = "schedule-bench"

PEER_FILE = '''"""Plain Airflow peer of bench/schedule.py: one BashOperator per job step, the plan's edges."""

import json
from datetime import datetime
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

SHAPE = json.loads((Path(__file__).parent / "{shape}").read_text())

with DAG(
    "{dag_id}",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    is_paused_upon_creation=False,
    tags=["bench"],
) as dag:
    tasks = {{name: BashOperator(task_id=name, bash_command="true") for name in SHAPE["tasks"]}}
    for up, down in SHAPE["edges"]:
        tasks[up] >> tasks[down]
'''


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def shape_for(job_steps: int) -> tuple[int, int, int]:
    """(days, L1 slices per day, slice minutes) with days x (slices + 1) == job_steps.

    Among the exact shapes the one with the fan-in closest to 24 (hourly slices) wins.
    """
    best = None
    for days in range(1, job_steps // 2 + 1):
        if job_steps % days:
            continue
        k = job_steps // days - 1
        if k >= 1 and 1440 % k == 0 and (best is None or abs(k - 24) < abs(best[1] - 24)):
            best = (days, k, 1440 // k)
    if best is None:
        raise SystemExit(
            f"no shape days x (slices + 1) = {job_steps} with slices dividing a day; try another N"
        )
    return best


# ------------------------------------------------------------------- catalogue


def create_postgres_db() -> tuple[str, str]:
    import psycopg

    name = f"proseo_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_db(name: str) -> None:
    import psycopg

    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prepare_order(catalog_url: str, work: Path, days: int, job_steps: int) -> dict[str, Any]:
    """Mission, inputs, one order planned and released; its blueprint and plan edges."""
    from sqlalchemy import select

    from proseo.catalog.db import Catalog
    from proseo.catalog.ingest import Ingestor
    from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
    from proseo.catalog.model_order import Job, JobStep, JobStepEdge
    from proseo.catalog.schema import upgrade
    from proseo.devtools.generate import Delivery, content, file_name
    from proseo.missions import load_mission
    from proseo.planning import lifecycle, orders
    from proseo.planning.spec import OrderSpec

    catalog = Catalog(catalog_url)
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_FILE))
        mission = loaded_from_catalog(s, "BENCH")
    inputs = work / "inputs"
    inputs.mkdir()
    files = []
    for d in range(days):
        start = DAY0 + timedelta(days=d)
        name = file_name(
            mission, Delivery("RAW", start, start + timedelta(days=1), start + timedelta(hours=25))
        )
        (inputs / name).write_bytes(content(name, 1024))
        files.append(inputs / name)
    report = Ingestor(catalog, mission).run(files)
    if not report.ok:
        raise SystemExit(f"ingestion failed: {report}")
    t0 = time.perf_counter()
    with catalog.session() as s:
        orders.create_order(
            s,
            "BENCH",
            OrderSpec(
                identifier=ORDER,
                requested_classes=["L2"],
                start=DAY0,
                stop=DAY0 + timedelta(days=days),
                processing_mode="NOMINAL",
            ),
        )
    lifecycle.approve_order(catalog, "BENCH", ORDER)
    plan = lifecycle.plan_order(catalog, "BENCH", ORDER, max_steps=max(job_steps, 1000))
    released = lifecycle.release_order(catalog, "BENCH", ORDER)
    plan_s = time.perf_counter() - t0
    bp = released.dag_blueprint or {}
    with catalog.session() as s:
        steps = dict(
            s.execute(select(JobStep.id, JobStep.state).join(Job).where(Job.order_id == released.id)).all()
        )
        edges = s.execute(
            select(JobStepEdge.upstream_id, JobStepEdge.downstream_id).where(
                JobStepEdge.downstream_id.in_(list(steps))
            )
        ).all()
    catalog.engine.dispose()
    if len(steps) != job_steps or len(plan.steps) != job_steps:
        raise SystemExit(f"the order has {len(steps)} job steps, not {job_steps}")
    return {
        "order_id": released.id,
        "dag_id": released.dag_id,
        "blueprint": bp,
        "steps": sorted(steps),
        "step_states": Counter(steps.values()),
        "edges": [(int(u), int(d)) for u, d in edges],
        "plan_s": plan_s,
        "inputs": len(files),
    }


def check_order(catalog_url: str, order_id: int) -> dict[str, Any]:
    """What the catalogue says after the run: order state, step states, products registered."""
    from sqlalchemy import func, select

    from proseo.catalog.db import Catalog
    from proseo.catalog.model_order import Job, JobStep, JobStepOutput, OrderEvent, ProcessingOrder
    from proseo.catalog.model_product import Product, ProductFile, Provenance

    catalog = Catalog(catalog_url)
    with catalog.session() as s:
        order = s.get(ProcessingOrder, order_id)
        assert order is not None
        step_ids = select(JobStep.id).join(Job).where(Job.order_id == order_id)
        states = Counter(s.scalars(select(JobStep.state).join(Job).where(Job.order_id == order_id)))
        planned = s.scalar(
            select(func.count()).select_from(JobStepOutput).where(JobStepOutput.job_step_id.in_(step_ids))
        )
        products = s.scalar(
            select(func.count()).select_from(Product).where(Product.job_step_id.in_(step_ids))
        )
        files = s.scalar(
            select(func.count())
            .select_from(ProductFile)
            .join(Product, Product.id == ProductFile.product_id)
            .where(Product.job_step_id.in_(step_ids))
        )
        provenance = s.scalar(
            select(func.count())
            .select_from(Provenance)
            .join(Product, Product.id == Provenance.product_id)
            .where(Product.job_step_id.in_(step_ids))
        )
        failures = [
            r
            for r in s.scalars(
                select(JobStep.failure_reason)
                .join(Job)
                .where(Job.order_id == order_id, JobStep.failure_reason.isnot(None))
            )
        ][:5]
        events = [
            (e.operation, e.to_state)
            for e in s.scalars(
                select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
            )
        ]
        result = {
            "state": order.state,
            "state_message": order.state_message,
            "step_states": dict(states),
            "planned_outputs": planned,
            "products": products,
            "product_files": files,
            "provenance": provenance,
            "failures": failures,
            "events": events,
        }
    catalog.engine.dispose()
    return result


# ---------------------------------------------------------------- Airflow side


def write_dags(dags: Path, prep: dict[str, Any]) -> int:
    """The factory's shard files plus the plain peer DAG with the plan's shape; peer task count."""
    for path in sorted((REPO / "dags").glob("proseo_orders_*.py")):
        shutil.copy2(path, dags / path.name)
    bp = prep["blueprint"]
    names = {}
    for n, level in enumerate(bp["levels"]):
        for i, step in enumerate(level["steps"]):
            names[step] = f"level_{n}_{i:04d}"
    shape = {"tasks": list(names.values()), "edges": [[names[u], names[d]] for u, d in prep["edges"]]}
    (dags / "bench_plain_shape.json").write_text(json.dumps(shape))
    (dags / "bench_plain_airflow.py").write_text(
        PEER_FILE.format(shape="bench_plain_shape.json", dag_id=PEER_DAG)
    )
    return len(names)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def run_figures(af: Any, dag_id: str, run: dict[str, Any]) -> dict[str, Any]:
    """Seconds of the run and per-task statistics from the REST API."""
    start, end = parse_time(run["start_date"]), parse_time(run["end_date"])
    assert start is not None and end is not None
    tis = af.client.task_instances(dag_id, run["dag_run_id"])
    durations = [float(t["duration"]) for t in tis if t.get("duration") is not None]
    waits = []
    for t in tis:
        queued, started = parse_time(t.get("queued_when")), parse_time(t.get("start_date"))
        if queued and started:
            waits.append((started - queued).total_seconds())
    starts = sorted(parse_time(t["start_date"]) for t in tis if t.get("start_date"))
    ends = sorted(parse_time(t["end_date"]) for t in tis if t.get("end_date"))
    return {
        "run_id": run["dag_run_id"],
        "run_type": run.get("run_type"),
        "triggered_by": run.get("triggered_by"),
        "state": run["state"],
        "queued_at": run.get("queued_at"),
        "seconds": (end - start).total_seconds(),
        "task_instances": len(tis),
        # Started on a worker (a sensor whose trigger ended it never was).
        "ran_on_a_worker": sum(1 for t in tis if t.get("hostname")),
        "ti_states": dict(Counter(str(t["state"]) for t in tis)),
        "tries": dict(Counter(int(t.get("try_number") or 0) for t in tis)),
        "ti_duration_sum": sum(durations),
        "ti_duration_mean": statistics.fmean(durations) if durations else None,
        "ti_duration_median": statistics.median(durations) if durations else None,
        "queue_wait_median": statistics.median(waits) if waits else None,
        "first_task_after_s": (starts[0] - start).total_seconds() if starts else None,
        "end_after_last_task_s": (end - ends[-1]).total_seconds() if ends else None,
    }


_LOG_TS = re.compile(r'"timestamp":\s*"([^"]+)"')


def log_breakdown(home: Path, dag_id: str, run_id: str, limit: int = 200) -> dict[str, float] | None:
    """Median seconds per phase of the proseo task, from the task logs' timestamps.

    before_wrapper: first log line -> the wrapper command line (parse, upstream check,
    job spec, RUNNING); wrapper: -> the last wrapper line; registration: -> the
    "registered" line; after: -> the last line of the log.
    """
    base = home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
    phases: dict[str, list[float]] = {"before_wrapper": [], "wrapper": [], "registration": [], "after": []}
    for path in sorted(base.glob("task_id=*/map_index=*/attempt=1.log"))[:limit]:
        stamps: list[tuple[datetime, str]] = []
        for line in path.read_text(errors="replace").splitlines():
            match = _LOG_TS.search(line)
            if match:
                stamps.append((datetime.fromisoformat(match.group(1).replace("Z", "+00:00")), line))
        try:
            first = stamps[0][0]
            launch = next(t for t, line in stamps if "proseo-wrapper" in line and " run " in line)
            registered = next(t for t, line in stamps if "registered" in line and "product(s)" in line)
            wrapper_end = max(t for t, line in stamps if t <= registered and "registered" not in line)
            last = stamps[-1][0]
        except (IndexError, StopIteration, ValueError):
            continue
        phases["before_wrapper"].append((launch - first).total_seconds())
        phases["wrapper"].append((wrapper_end - launch).total_seconds())
        phases["registration"].append((registered - wrapper_end).total_seconds())
        phases["after"].append((last - registered).total_seconds())
    if not phases["wrapper"]:
        return None
    return {k: statistics.median(v) for k, v in phases.items()} | {"logs": len(phases["wrapper"])}


# ------------------------------------------------------------- fixed costs


def fixed_costs(env: dict[str, str], spec: Path | None) -> dict[str, float]:
    """Per-task costs measured on their own: imports in a fresh interpreter and one wrapper run."""
    py = sys.executable
    out: dict[str, float] = {}

    def timed(code: str) -> float:
        proc = subprocess.run(
            [py, "-c", f"import time; t=time.perf_counter(); {code}; print(time.perf_counter()-t)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return float(proc.stdout.strip().splitlines()[-1])

    out["import_airflow_sdk_s"] = timed("import airflow.sdk")
    out["import_factory_after_sdk_s"] = timed(
        "import airflow.sdk; t=time.perf_counter(); import proseo.orchestration.factory"
    )
    t0 = time.perf_counter()
    subprocess.run([py, "-S", "-c", "pass"], check=True)
    out["python_start_s"] = time.perf_counter() - t0
    if spec is not None:
        work = Path(tempfile.mkdtemp(prefix="proseo_bench_wrapper_"))
        wrapper = Path(py).with_name("proseo-wrapper")
        runs = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run(
                [str(wrapper), "run", str(spec), "--workdir", str(work / "w")],
                env=env,
                capture_output=True,
                check=False,
            )
            runs.append(time.perf_counter() - t0)
        shutil.rmtree(work, ignore_errors=True)
        out["wrapper_run_s"] = min(runs)
        t0 = time.perf_counter()
        subprocess.run([py, "-c", "import proseo.wrapper.main"], env=env, check=True)
        out["wrapper_import_s"] = time.perf_counter() - t0
    return out


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job-steps", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--catalog", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--facility-slots",
        type=int,
        help="the facility's max_concurrent_job_steps, i.e. its Airflow pool (default: --parallelism)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per DAG run")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (catalogue, home, logs)")
    args = parser.parse_args()

    from proseo.devtools.standalone import Standalone

    days, per_day, minutes = shape_for(args.job_steps)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_schedule_"))
    home, dags = work / "airflow", work / "dags"
    dags.mkdir()
    pg_name = None
    if args.catalog == "postgres":
        pg_name, catalog_url = create_postgres_db()
    else:
        catalog_url = f"sqlite:///{work / 'catalog.db'}"
    bench_env = {
        "PROSEO_CATALOG_URL": catalog_url,
        "PROSEO_DATA": str(work / "data"),
        "PROSEO_SCRATCH": str(work / "scratch"),
        "PROSEO_BENCH_L1_SLICE": f"{minutes} min",
        "PROSEO_BENCH_NOOP": str(NOOP),
        "PROSEO_BENCH_SLOTS": str(args.facility_slots or args.parallelism),
        "PROSEO_TASK_RETRIES": "0",  # a failure is a result here, not something to hide
    }
    # Nothing here may touch a real catalogue or Airflow home.
    os.environ.update(bench_env)
    os.environ["AIRFLOW_HOME"] = str(home)
    af = None
    result: dict[str, Any] = {}
    try:
        t0 = time.perf_counter()
        prep = prepare_order(catalog_url, work, days, args.job_steps)
        levels = [len(level["steps"]) for level in prep["blueprint"]["levels"]]
        log(
            f"catalogue ({args.catalog}): mission BENCH, {prep['inputs']} RAW inputs; order {ORDER}: "
            f"{args.job_steps} job steps = {days} day(s) x ({per_day} L1 of {minutes} min + 1 L2), "
            f"levels {levels}, {len(prep['edges'])} edges, planned+released in {prep['plan_s']:.1f} s "
            f"(setup {time.perf_counter() - t0:.1f} s); DAG {prep['dag_id']}"
        )
        peer_tasks = write_dags(dags, prep)

        af = Standalone(
            home, dags_folder=dags, parallelism=args.parallelism, catalog_url=catalog_url, env=bench_env
        )
        af.start()
        ready = time.monotonic()
        log(f"airflow standalone healthy on {af.url} after {af.ready_seconds:.1f} s (log {af.log_path})")

        # ---- the order: its DAG must start by itself
        af.client.wait_for_dag(prep["dag_id"], timeout=300)
        first = af.client.wait_for_first_run(prep["dag_id"], timeout=300)  # nobody triggers it
        log(
            f"order DAG run {first['dag_run_id']} appeared {time.monotonic() - ready:.1f} s after healthy "
            f"(run_type {first.get('run_type')}, triggered_by {first.get('triggered_by')}); waiting ..."
        )
        run = af.wait_for_run(prep["dag_id"], first["dag_run_id"], timeout=args.timeout, poll=3.0)
        # Wall: from the scheduler creating the run (nobody triggers it) to its end seen by polling.
        queued = parse_time(run.get("queued_at")) or parse_time(run["start_date"])
        assert queued is not None
        order_wall = time.time() - queued.timestamp()
        order = run_figures(af, prep["dag_id"], run)
        time.sleep(2)  # the scheduler's run-end listener finalises the order
        catalogue = check_order(catalog_url, prep["order_id"])
        breakdown = log_breakdown(home, prep["dag_id"], run["dag_run_id"])
        log(
            f"order run ended {run['state']} in {order['seconds']:.1f} s; "
            f"catalogue: order {catalogue['state']}"
        )

        # ---- the plain peer, triggered through the REST API
        af.client.wait_for_dag(PEER_DAG, timeout=300)
        t_trigger = time.time()
        peer_run = af.client.trigger(PEER_DAG)
        peer_done = af.wait_for_run(PEER_DAG, peer_run["dag_run_id"], timeout=args.timeout, poll=3.0)
        peer_wall = time.time() - t_trigger
        peer = run_figures(af, PEER_DAG, peer_done)
        log(f"plain DAG run ended {peer_done['state']} in {peer['seconds']:.1f} s")
        stopped = af.stop()
        af = None
        left = []
        log(
            f"airflow stopped in {stopped.seconds:.1f} s"
            + (f" (ESCALATED to {stopped.escalated})" if stopped.escalated else " (SIGINT, clean)")
            + (f"; LEFT OVER: {stopped.leftovers}" if stopped.leftovers else "")
        )
        left = stopped.leftovers
        spec = next(iter(sorted((work / "scratch").rglob("spec.json"))), None)
        costs = fixed_costs({**os.environ, **bench_env}, spec)
    finally:
        if af is not None:
            af.stop()
        if pg_name and not args.keep:
            drop_postgres_db(pg_name)
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    n = args.job_steps
    ok = (
        run["state"] == "success"
        and catalogue["state"] == "COMPLETED"
        and catalogue["step_states"] == {"COMPLETED": n}
        and catalogue["products"] == catalogue["planned_outputs"] == catalogue["product_files"]
        and peer_done["state"] == "success"
        and peer["task_instances"] == peer_tasks
    )
    par = args.parallelism
    print(
        f"{'':<16}{'seconds':>9}{'wall':>8}{'tasks':>7}{'worker':>7}{'tasks/s':>9}{'slot s/task':>12}"
        f"{'TI mean':>9}{'TI median':>10}{'queue med':>10}{'first':>7}"
    )
    for label, fig, wall in (("proseo order", order, order_wall), ("plain Airflow", peer, peer_wall)):
        print(
            f"{label:<16}{fig['seconds']:>9.1f}{wall:>8.1f}{fig['task_instances']:>7}"
            f"{fig['ran_on_a_worker']:>7}{fig['task_instances'] / fig['seconds']:>9.2f}"
            f"{fig['seconds'] * par / fig['task_instances']:>12.2f}"
            f"{fig['ti_duration_mean'] or 0:>9.2f}{fig['ti_duration_median'] or 0:>10.2f}"
            f"{fig['queue_wait_median'] or 0:>10.2f}{fig['first_task_after_s'] or 0:>7.1f}"
        )
    print(
        "columns: seconds = DAG run start_date -> end_date (REST); wall = order: run created by the "
        "scheduler -> end seen, peer: trigger call -> end seen (3 s polls); slot s/task = seconds x "
        "parallelism / tasks (per-task cost of one "
        "executor slot); worker = task instances started on a worker (sensors ended by their "
        "trigger are not); TI mean/median = task-instance duration; queue med = queued -> running; "
        "first = run start -> first task start"
    )
    extra = order["seconds"] * par / n - peer["seconds"] * par / peer["task_instances"]
    print(f"per-task overhead of proseo over plain Airflow: {extra:.2f} slot-seconds per task")
    if breakdown:
        print(
            "proseo task, median phases from the task logs (s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in breakdown.items() if k != "logs")
            + f" (over {breakdown['logs']} logs)"
        )
    print("fixed costs measured alone (s): " + ", ".join(f"{k} {v:.3f}" for k, v in costs.items()))
    print(
        f"order: DAG auto-started (run_type {order['run_type']}, triggered_by {order['triggered_by']}), run "
        f"{order['state']}, TIs {order['ti_states']}, tries {order['tries']}; "
        f"catalogue: order {catalogue['state']}"
        f" ({catalogue['state_message']}), steps {catalogue['step_states']}, products {catalogue['products']}"
        f"/{catalogue['planned_outputs']} planned, files {catalogue['product_files']}, provenance "
        f"{catalogue['provenance']}; events {[e[0] for e in catalogue['events']]}"
    )
    if catalogue["failures"]:
        print(f"step failures (first 5): {catalogue['failures']}")
    print(f"plain: run {peer['state']}, TIs {peer['ti_states']}")
    print(f"processes left after stop: {left or 'none'}; all checks {'passed' if ok else 'FAILED'}")
    log(f"total bench time {time.perf_counter() - started:.0f} s")
    result = {
        "bench": "schedule",
        "job_steps": n,
        "seconds": round(order["seconds"], 1),
        "plain_airflow_seconds": round(peer["seconds"], 1),
        "ratio": round(order["seconds"] / peer["seconds"], 3),
        "ok": ok,
        "order_state": catalogue["state"],
        "auto_started": order["triggered_by"] != "rest_api",
        "wall_seconds": round(order_wall, 1),
        "plain_airflow_wall_seconds": round(peer_wall, 1),
        "parallelism": par,
        "facility_slots": args.facility_slots or par,
        "catalog": args.catalog,
        "levels": levels,
        "slot_seconds_per_task": round(order["seconds"] * par / n, 3),
        "plain_slot_seconds_per_task": round(peer["seconds"] * par / peer["task_instances"], 3),
        "task_instances": order["task_instances"],
        "worker_task_instances": order["ran_on_a_worker"],
        "ti_median_s": round(order["ti_duration_median"] or 0, 3),
        "plain_ti_median_s": round(peer["ti_duration_median"] or 0, 3),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
