"""Benchmark: the 1,000-step no-op order on the Celery deployment beside the LocalExecutor.

The order is bench/schedule.py's (bench-only mission ``BENCH``, no-op processor, RAW ->
L1 slices -> daily L2, planned and released through ``proseo.planning``), made twice,
each time in a fresh PostgreSQL catalogue, and run twice in one invocation, one after
the other, never at once:

- LocalExecutor: ``airflow standalone`` (:mod:`proseo.devtools.standalone`), parallelism P;
- CeleryExecutor: :mod:`proseo.devtools.celery_deployment`, scheduler parallelism P, two
  workers of P/2 processes each serving the facility's queue ``proseo-bench-local``
  (worker0 also ``default``), PostgreSQL metadata database, Redis broker.

Both DAGs start by themselves (``@once``); each is timed from its run's start_date to its
end_date (REST), and the catalogue is checked after each: order COMPLETED, every step
COMPLETED, every planned output one product with its file.

    .venv/bin/python bench/distributed.py [--job-steps 1000] [--parallelism 4]
        [--setting AIRFLOW__SECTION__KEY=VALUE ...]

``--setting`` gives both deployments the same Airflow settings (the named shape runs with
none: Airflow's defaults). Two matter for a no-op order, where every task is shorter than
Airflow's own waits: ``AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL`` (the task supervisor waits
that long in ``select()`` when the task's sockets close before its process can be reaped)
and ``AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME`` (the scheduler sleeps that long after a
loop that queued nothing, even one that has just learnt of finished tasks).

The last line is JSON: {"bench": "distributed", "job_steps": N, "celery_seconds": a,
"local_seconds": b, "ratio": a/b, ...}; goal: ratio at most 1.2.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_schedule", HERE / "schedule.py")
assert _spec is not None and _spec.loader is not None
schedule = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(schedule)

QUEUE = "proseo-bench-local"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_FINISHED = re.compile(
    r"(\d{4}-\d\d-\d\dT[\d:.]+)Z .*Workload finished.*duration=([0-9.]+).*workload_id=(\S+)"
)


def supervisor_slots(home: Path) -> dict[str, Any]:
    """How long each task held its executor slot, and how much of it came after the task's
    last log line (Airflow's supervisor noticing the task process has exited).

    The supervisor logs "Workload finished" with its duration and the task instance id in
    the executor's log (the standalone's, or each Celery worker's); the task's own log ends
    with its last event. A tail of ``[workers] min_heartbeat_interval`` (5 s) is the
    supervisor waiting in ``select()`` with no socket left to wake it.
    """
    finished: dict[str, tuple[float, float]] = {}
    for path in glob.glob(str(home / "*.log")):
        with open(path, errors="replace") as stream:
            for line in stream:
                if m := _FINISHED.search(line):
                    end = schedule.parse_time(m.group(1) + "Z")
                    assert end is not None
                    finished[m.group(3)] = (end.timestamp(), float(m.group(2)))
    slots, tails = [], []
    for path in glob.glob(str(home / "logs" / "**" / "attempt=*.log"), recursive=True):
        with open(path, errors="replace") as stream:
            events = [json.loads(line) for line in stream if line.startswith("{")]
        ti = next((e["ti_id"] for e in events if e.get("ti_id")), None)
        if not events or ti not in finished:
            continue
        end, held = finished[ti]
        last = schedule.parse_time(events[-1]["timestamp"])
        assert last is not None
        slots.append(held)
        tails.append(end - last.timestamp())
    return {
        "slot_seconds_median": round(statistics.median(slots), 3) if slots else None,
        "slot_seconds_sum": round(sum(slots), 1),
        "tail_seconds_median": round(statistics.median(tails), 3) if tails else None,
        "tails_over_1s": sum(1 for t in tails if t > 1.0),
        "tails_seen": len(tails),
    }


def one_run(kind: str, args: argparse.Namespace, days: int, minutes: int) -> dict[str, Any]:
    """Catalogue, order, Airflow of ``kind`` ("local" or "celery"); the run's figures."""
    from proseo.devtools.celery_deployment import CeleryDeployment
    from proseo.devtools.standalone import Standalone

    work = Path(tempfile.mkdtemp(prefix=f"proseo_bench_distributed_{kind}_"))
    home, dags = work / "airflow", work / "dags"
    dags.mkdir()
    pg_name, catalog_url = schedule.create_postgres_db()
    env = {
        "PROSEO_CATALOG_URL": catalog_url,
        "PROSEO_DATA": str(work / "data"),
        "PROSEO_SCRATCH": str(work / "scratch"),
        "PROSEO_BENCH_L1_SLICE": f"{minutes} min",
        "PROSEO_BENCH_NOOP": str(schedule.NOOP),
        "PROSEO_BENCH_SLOTS": str(args.parallelism),
        "PROSEO_TASK_RETRIES": "0",  # a failure is a result here, not something to hide
    }
    os.environ.update(env)
    os.environ["AIRFLOW_HOME"] = str(home)
    af: Any = None
    try:
        prep = schedule.prepare_order(catalog_url, work, days, args.job_steps)
        for path in sorted((schedule.REPO / "dags").glob("proseo_orders_*.py")):
            shutil.copy2(path, dags / path.name)
        common = {
            "dags_folder": dags,
            "parallelism": args.parallelism,
            "catalog_url": catalog_url,
            "env": {**env, **args.settings},
        }
        if kind == "local":
            af = Standalone(home, **common)
        else:
            per_worker = max(1, args.parallelism // 2)
            af = CeleryDeployment(
                home, workers=[["default", QUEUE], [QUEUE]], concurrency=per_worker, **common
            )
        af.start()
        log(f"{kind}: Airflow healthy after {af.ready_seconds:.1f} s; DAG {prep['dag_id']}")
        af.client.wait_for_dag(prep["dag_id"], timeout=300)
        first = af.client.wait_for_first_run(prep["dag_id"], timeout=300)
        run = af.wait_for_run(prep["dag_id"], first["dag_run_id"], timeout=args.timeout, poll=3.0)
        figures = schedule.run_figures(af, prep["dag_id"], run)
        tis = af.client.task_instances(prep["dag_id"], run["dag_run_id"])
        figures["hosts"] = sorted({str(t.get("hostname")) for t in tis if t.get("hostname")})
        figures["slots"] = supervisor_slots(home)
        time.sleep(2)  # the run-end listener finalises the order
        catalogue = schedule.check_order(catalog_url, prep["order_id"])
        stopped = af.stop()
        af = None
        n = args.job_steps
        figures["ok"] = (
            run["state"] == "success"
            and catalogue["state"] == "COMPLETED"
            and catalogue["step_states"] == {"COMPLETED": n}
            and catalogue["products"] == catalogue["planned_outputs"] == catalogue["product_files"]
        )
        figures["catalogue"] = {
            k: catalogue[k] for k in ("state", "step_states", "products", "planned_outputs")
        }
        figures["stop"] = {"seconds": round(stopped.seconds, 1), "clean": stopped.clean}
        log(
            f"{kind}: run {run['state']} in {figures['seconds']:.1f} s, order {catalogue['state']}, "
            f"hosts {figures['hosts']}, stopped {'cleanly' if stopped.clean else stopped}"
        )
        return figures
    finally:
        if af is not None:
            af.stop()
        schedule.drop_postgres_db(pg_name)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--job-steps", type=int, default=1000)
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per DAG run")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="AIRFLOW__SECTION__KEY=VALUE",
        help="an Airflow setting for both deployments (repeatable)",
    )
    args = parser.parse_args()
    args.settings = {}
    for item in args.setting:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("AIRFLOW__") or key.count("__") < 2:
            parser.error(f"--setting {item!r}: expected AIRFLOW__SECTION__KEY=VALUE")
        args.settings[key] = value
    days, per_day, minutes = schedule.shape_for(args.job_steps)
    log(f"order: {args.job_steps} job steps = {days} day(s) x ({per_day} L1 of {minutes} min + 1 L2)")
    started = time.perf_counter()
    load_before = round(os.getloadavg()[0], 2)
    local = one_run("local", args, days, minutes)
    celery = one_run("celery", args, days, minutes)
    par = args.parallelism
    print(f"{'':<10}{'seconds':>9}{'tasks':>7}{'TI median':>10}{'queue med':>10}  hosts")
    for label, fig in (("local", local), ("celery", celery)):
        print(
            f"{label:<10}{fig['seconds']:>9.1f}{fig['task_instances']:>7}"
            f"{fig['ti_duration_median'] or 0:>10.2f}{fig['queue_wait_median'] or 0:>10.2f}  {fig['hosts']}"
        )
    log(f"total bench time {time.perf_counter() - started:.0f} s")
    result = {
        "bench": "distributed",
        "job_steps": args.job_steps,
        "celery_seconds": round(celery["seconds"], 1),
        "local_seconds": round(local["seconds"], 1),
        "ratio": round(celery["seconds"] / local["seconds"], 3),
        "ok": local["ok"] and celery["ok"],
        "parallelism": par,
        "celery_workers": 2,
        "celery_hosts": celery["hosts"],
        "celery_ti_median_s": round(celery["ti_duration_median"] or 0, 3),
        "local_ti_median_s": round(local["ti_duration_median"] or 0, 3),
        "celery_queue_wait_median_s": round(celery["queue_wait_median"] or 0, 3),
        "local_queue_wait_median_s": round(local["queue_wait_median"] or 0, 3),
        "celery_slots": celery["slots"],
        "local_slots": local["slots"],
        "airflow_settings": args.settings,
        "load_before": load_before,
        "load_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
