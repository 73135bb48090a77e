"""Benchmark: DAG processor parse cost of the order DAG factory with 1000 released orders.

A fresh SQLite catalogue gets the SKY sample mission and 10 nights of generated inputs;
ONE real order (SKY ``SRC_CAT`` over the 10 nights, 5 job steps a night = 50) is
created, approved, planned and released through ``proseo.planning``, so its DAG
blueprint is real. Then ``--orders - 1`` more RELEASED orders are inserted in bulk
whose ``dag_blueprint`` is that blueprint with their own order identifier
(``bench-0001`` ...), order id, dag_id (``proseo__SKY__bench-0001`` ...) and job-step
ids (offset per order). These clone orders have NO job_step rows: the DAG factory
only reads blueprints (one query per shard), so they cost the parser exactly what a
real order of the same shape costs, but they could not be run.

Then the shard files of ``dags/`` are copied to a temp DAG folder and parsed:

* each in a FRESH child process, the way the DAG processor's child does it
  (``airflow.dag_processing.processor._parse_file``): ``BundleDagBag(dag_folder=<file>,
  bundle_path=..., load_op_links=False)``, then ``DagSerialization.to_dict(dag)`` wrapped
  in ``LazyDeserializedDAG`` for every DAG, then the msgpack frame the child sends to
  the manager. The child reports wall and CPU for the Airflow import, the shard file's
  execution (proseo import, catalogue query, DAG build) and the serialisation.
  Note: on Linux the real processor FORKS its children from the manager, which has
  already imported Airflow (including ``airflow.sdk`` and the serialisation code), so
  a real child does not pay the Airflow import; ``max_shard_seconds`` includes it
  anyway (the conservative figure) and ``max_shard_seconds_forked`` leaves it out.
* then by the REAL ``airflow dag-processor -n 1`` (one parsing loop) against a
  throwaway AIRFLOW_HOME (SQLite, default timeouts), after which the rows of its
  ``serialized_dag`` and ``import_error`` tables are counted.

    .venv/bin/python bench/dag_parse.py [--orders 1000] [--processor-limit 420]

The last line is JSON: {"bench": "dag_parse", "orders": N, "job_steps_per_order": 50,
"all_registered": bool, "max_shard_seconds": s, "loop_cpu_fraction": f, ...} where
``loop_cpu_fraction`` is the CPU seconds of one full parse loop (all shard children)
divided by ``min_file_process_interval`` (30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NIGHT0 = datetime(2025, 3, 1, tzinfo=UTC)
NIGHTS = 10
MIN_FILE_PROCESS_INTERVAL = 30.0
DAGBAG_IMPORT_TIMEOUT = 30.0
DAG_FILE_PROCESSOR_TIMEOUT = 50.0
BUNDLE = "dags-folder"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- child


def child(path: Path) -> None:
    """Parse one shard file as the DAG processor's child does; print one JSON line."""
    t0, c0 = time.perf_counter(), time.process_time()
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.dag_processing.processor import DagFileParsingResult
    from airflow.sdk.execution_time.comms import _RequestFrame
    from airflow.serialization.serialized_objects import DagSerialization, LazyDeserializedDAG

    t1, c1 = time.perf_counter(), time.process_time()
    import proseo.orchestration.factory as factory

    t2 = time.perf_counter()

    # Time the factory's catalogue query and DAG building from outside (no file edited).
    spent = {"query": 0.0, "build": 0.0}
    blueprints, build_dag = factory.blueprints, factory.build_dag

    def timed_blueprints(*args: Any, **kwargs: Any) -> Any:
        s = time.perf_counter()
        try:
            return blueprints(*args, **kwargs)
        finally:
            spent["query"] += time.perf_counter() - s

    def timed_build(*args: Any, **kwargs: Any) -> Any:
        s = time.perf_counter()
        try:
            return build_dag(*args, **kwargs)
        finally:
            spent["build"] += time.perf_counter() - s

    factory.blueprints, factory.build_dag = timed_blueprints, timed_build

    bag = BundleDagBag(dag_folder=str(path), bundle_path=path.parent, bundle_name=BUNDLE, load_op_links=False)
    t3, c3 = time.perf_counter(), time.process_time()
    serialized, failed = [], 0
    for dag in bag.dags.values():
        try:
            serialized.append(
                LazyDeserializedDAG(data=DagSerialization.to_dict(dag), last_loaded=dag.last_loaded)
            )
        except Exception:  # the processor records these as import errors
            failed += 1
    t4, c4 = time.perf_counter(), time.process_time()
    result = DagFileParsingResult(
        fileloc=str(path), serialized_dags=serialized, import_errors=bag.import_errors
    )
    frame = _RequestFrame(id=0, body=result.model_dump()).as_bytes()
    t5, c5 = time.perf_counter(), time.process_time()

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    kids_cpu = kids.ru_utime + kids.ru_stime
    print(
        json.dumps(
            {
                "file": path.name,
                "dags": len(bag.dags),
                "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                "import_errors": len(bag.import_errors) + failed,
                "airflow_import_s": t1 - t0,
                "proseo_import_s": t2 - t1,
                "query_s": spent["query"],
                "build_s": spent["build"],
                "file_s": t3 - t1,  # shard file executed by the DagBag, proseo import included
                "serialise_s": t4 - t3,
                "encode_s": t5 - t4,
                "frame_bytes": len(frame),
                "startup_cpu_s": c0,
                "airflow_import_cpu_s": c1 - c0,
                "file_cpu_s": c3 - c1,
                "serialise_cpu_s": c4 - c3,
                "encode_cpu_s": c5 - c4,
                "cpu_s": c5 + kids_cpu,  # whole child: interpreter start-up to the frame
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        ),
        flush=True,
    )


# ------------------------------------------------------------------- catalogue


def build_catalogue(url: str, work: Path, orders: int) -> dict[str, Any]:
    """One real released order plus ``orders - 1`` clones of its blueprint; returns facts."""
    from sqlalchemy import func, insert, select

    from proseo.catalog.db import Catalog
    from proseo.catalog.ingest import Ingestor
    from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
    from proseo.catalog.model_order import Job, JobStep, OrderState, ProcessingOrder
    from proseo.catalog.schema import upgrade
    from proseo.devtools.generate import write_inputs
    from proseo.missions import load_mission
    from proseo.planning import lifecycle
    from proseo.planning import orders as order_ops
    from proseo.planning.blueprint import dag_id_for
    from proseo.planning.spec import OrderSpec

    catalog = Catalog(url)
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(REPO / "mission_configs" / "sky.yaml"))
        mission = loaded_from_catalog(s, "SKY")
    stop = NIGHT0 + timedelta(days=NIGHTS)
    t0 = time.perf_counter()
    files = write_inputs(mission, NIGHT0, stop, work / "inputs", size=256)
    report = Ingestor(catalog, mission).run(files)
    if not report.ok:
        raise SystemExit(f"ingest failed: {[o for o in report.outcomes if o.status not in ('new',)][:3]}")
    log(f"ingested {len(files)} SKY inputs for {NIGHTS} nights in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    with catalog.session() as s:
        order_ops.create_order(
            s, "SKY", OrderSpec(identifier="bench", requested_classes=["SRC_CAT"], start=NIGHT0, stop=stop)
        )
    lifecycle.approve_order(catalog, "SKY", "bench")
    plan = lifecycle.plan_order(catalog, "SKY", "bench")
    released = lifecycle.release_order(catalog, "SKY", "bench")
    bp = released.dag_blueprint or {}
    log(
        f"real order SKY/bench: {len(plan.steps)} job steps planned, {len(bp['levels'])} levels, "
        f"released as {released.dag_id} in {time.perf_counter() - t0:.1f} s"
    )

    t0 = time.perf_counter()
    table = ProcessingOrder.__table__
    with catalog.session() as s:
        row = dict(s.execute(select(table).where(table.c.id == released.id)).mappings().one())
        real_steps = s.scalar(
            select(func.count()).select_from(JobStep).join(Job).where(Job.order_id == released.id)
        )
    all_steps = [step for level in bp["levels"] for step in level["steps"]]
    stride = max(all_steps) + 1
    rows = []
    for i in range(1, orders):
        identifier = f"bench-{i:04d}"
        clone = json.loads(json.dumps(bp))
        clone.update(order=identifier, order_id=released.id + i, dag_id=dag_id_for("SKY", identifier))
        for level in clone["levels"]:
            level["steps"] = [step + i * stride for step in level["steps"]]
            level["waiting"] = [step + i * stride for step in level["waiting"]]
        rows.append(
            {
                **row,
                "id": released.id + i,
                "uuid": str(uuid.uuid4()),
                "identifier": identifier,
                "state": OrderState.RELEASED.value,
                "dag_id": clone["dag_id"],
                "dag_blueprint": clone,
            }
        )
    with catalog.session() as s:
        if rows:
            s.execute(insert(table), rows)
        active = s.scalar(
            select(func.count()).select_from(ProcessingOrder).where(ProcessingOrder.dag_blueprint.isnot(None))
        )
    catalog.engine.dispose()
    log(
        f"inserted {len(rows)} clone orders (blueprint only, no job_step rows) in "
        f"{time.perf_counter() - t0:.1f} s; {active} released orders in the catalogue"
    )
    waiting = sum(len(level["waiting"]) for level in bp["levels"])
    return {
        "job_steps": bp["job_steps"],
        "real_job_step_rows": real_steps,
        "levels": len(bp["levels"]),
        "waiting_steps": waiting,
        "orders": active,
    }


# ---------------------------------------------------------------- Airflow side


def airflow_env(home: Path, dags: Path, catalog_url: str, work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__") and k != "PROSEO_DAG_SHARDS"}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "PROSEO_CATALOG_URL": catalog_url,
            "PROSEO_DATA": str(work / "data"),
            "PROSEO_SCRATCH": str(work / "scratch"),
        }
    )
    return env


def parse_in_children(files: list[Path], env: dict[str, str]) -> list[dict[str, Any]]:
    """Each shard file in its own fresh interpreter, one after the other."""
    child_env = {
        **env,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "_AIRFLOW_PROCESS_CONTEXT": "client",
    }
    # Warm the OS page cache and .pyc files once, as a long-running processor would have them.
    subprocess.run(
        [sys.executable, "-c", "import airflow.dag_processing.processor, proseo.orchestration.factory"],
        env=child_env,
        check=True,
        capture_output=True,
    )
    results = []
    for path in files:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        process_wall = time.perf_counter() - t0
        lines = [line for line in proc.stdout.splitlines() if line.startswith('{"file"')]
        if proc.returncode != 0 or not lines:
            raise SystemExit(f"child for {path.name} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        r = json.loads(lines[-1])
        r["process_wall_s"] = process_wall
        # The brief's figure: Airflow import + shard file (DagBag) + serialisation.
        r["total_s"] = r["airflow_import_s"] + r["file_s"] + r["serialise_s"]
        # What a child forked from the manager (Airflow already imported) pays before it exits.
        r["forked_s"] = r["file_s"] + r["serialise_s"] + r["encode_s"]
        r["forked_cpu_s"] = r["file_cpu_s"] + r["serialise_cpu_s"] + r["encode_cpu_s"]
        results.append(r)
        log(
            f"  {path.name}: {r['dags']} DAGs, {r['tasks']} tasks, {r['total_s']:.2f} s "
            f"(Airflow import {r['airflow_import_s']:.2f} s)"
        )
    return results


def run_processor(env: dict[str, str], home: Path, limit: float) -> dict[str, Any]:
    """The real ``airflow dag-processor -n 1`` on the throwaway home; counts what it wrote."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    t0 = time.perf_counter()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    migrate_s = time.perf_counter() - t0
    log(f"airflow db migrate on the throwaway home: {migrate_s:.1f} s; running dag-processor -n 1 ...")
    out = home / "dag_processor.log"
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    finished = True
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [airflow, "dag-processor", "-n", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            finished = False
            os.killpg(proc.pid, 15)
            try:
                rc = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                rc = proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The whole dag-processor: start-up, manager (DB writes) and its reaped parse children.
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    text = out.read_text(errors="replace")
    killed = [line.strip() for line in text.splitlines() if "exceeding the timeout" in line]
    # One parsing loop: from queueing the files to "all files have been processed".
    markers = (("queued", "new files to the front of the queue"), ("done", "Exiting dag parsing"))
    stamps = {
        key: datetime.fromisoformat(line[:26])
        for line in text.splitlines()
        for key, marker in markers
        if marker in line and line[:4].isdigit()
    }
    loop_s = (stamps["done"] - stamps["queued"]).total_seconds() if len(stamps) == 2 else None
    with sqlite3.connect(home / "airflow.db") as db:
        registered = db.execute("SELECT count(*) FROM serialized_dag").fetchone()[0]
        dags = db.execute("SELECT count(*) FROM dag").fetchone()[0]
        errors = db.execute("SELECT filename, stacktrace FROM import_error").fetchall()
        # The processor records each file's parse duration (its child, fork to result) per DAG.
        durations = dict(
            db.execute("SELECT relative_fileloc, max(last_parse_duration) FROM dag GROUP BY relative_fileloc")
        )
    if not finished:
        log(
            f"!! airflow dag-processor -n 1 did not finish within {limit:.0f} s and was stopped; "
            f"counts below are whatever it had written (log: {out})"
        )
    elif rc != 0:
        log(f"!! airflow dag-processor exited with {rc}; last lines:\n{text[-3000:]}")
    for line in killed:
        log(f"!! {line[:300]}")
    for filename, stack in errors[:3]:
        log(f"!! import error in {filename}: {stack.strip().splitlines()[-1] if stack else ''}")
    return {
        "finished": finished,
        "returncode": rc,
        "wall_s": wall,
        "migrate_s": migrate_s,
        "serialized_dag": registered,
        "dag_rows": dags,
        "import_errors": len(errors),
        "killed": len(killed),
        "loop_s": loop_s,
        "cpu_s": cpu,
        "durations": durations,
    }


# ------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000, help="released orders (1 real + clones)")
    parser.add_argument(
        "--steps", type=int, default=50, help="job steps expected in the real order (informational)"
    )
    parser.add_argument(
        "--processor-limit", type=float, default=420.0, help="seconds allowed for airflow dag-processor -n 1"
    )
    parser.add_argument("--skip-processor", action="store_true", help="only the per-shard child parses")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (catalogue, home, logs)")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_dag_parse_"))
    home, dags = work / "airflow", work / "dags"
    home.mkdir()
    dags.mkdir()
    catalog_url = f"sqlite:///{work / 'catalog.db'}"
    env = airflow_env(home, dags, catalog_url, work)
    # Nothing here may touch a real Airflow home or catalogue.
    os.environ.update({k: env[k] for k in ("AIRFLOW_HOME", "PROSEO_CATALOG_URL", "PROSEO_DATA")})
    os.environ.pop("PROSEO_DAG_SHARDS", None)
    try:
        facts = build_catalogue(catalog_url, work, args.orders)
        if facts["job_steps"] != args.steps:
            log(f"note: the real order has {facts['job_steps']} job steps (--steps said {args.steps})")
        shard_files = sorted((REPO / "dags").glob("proseo_orders_*.py"))
        for path in shard_files:
            shutil.copy2(path, dags / path.name)
        files = sorted(dags.glob("proseo_orders_*.py"))
        log(f"parsing {len(files)} shard files, each in a fresh child process ...")
        shards = parse_in_children(files, env)
        proc = None if args.skip_processor else run_processor(env, home, args.processor_limit)
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(
        f"{'shard file':<22}{'DAGs':>5}{'tasks':>6}{'AF imp':>8}{'file':>7}{'(proseo':>8}{'query':>7}"
        f"{'build)':>7}{'serial':>8}{'encode':>8}{'total':>7}{'forked':>8}{'CPU':>7}{'MB sent':>8}{'RSS':>6}"
        f"{'proc':>7}"
    )
    durations = proc["durations"] if proc else {}
    for r in shards:
        print(
            f"{r['file']:<22}{r['dags']:>5}{r['tasks']:>6}{r['airflow_import_s']:>8.2f}{r['file_s']:>7.2f}"
            f"{r['proseo_import_s']:>8.2f}{r['query_s']:>7.2f}{r['build_s']:>7.2f}{r['serialise_s']:>8.2f}"
            f"{r['encode_s']:>8.2f}{r['total_s']:>7.2f}{r['forked_s']:>8.2f}{r['cpu_s']:>7.2f}"
            f"{r['frame_bytes'] / 1e6:>8.2f}{r['max_rss_mb']:>6.0f}"
            + (f"{durations[r['file']]:>7.2f}" if durations.get(r["file"]) is not None else f"{'-':>7}")
        )
    total = {k: sum(r[k] for r in shards) for k in ("dags", "tasks", "cpu_s", "forked_cpu_s", "serialise_s")}
    total["file_s"] = sum(r["file_s"] for r in shards)
    total["airflow_import_s"] = sum(r["airflow_import_s"] for r in shards)
    print(
        f"{'all shards':<22}{total['dags']:>5}{total['tasks']:>6}{total['airflow_import_s']:>8.2f}"
        f"{total['file_s']:>7.2f}{'':>22}{total['serialise_s']:>8.2f}{'':>31}{total['cpu_s']:>7.2f}"
    )
    print(
        "columns (s): AF imp = Airflow import; file = shard file run by BundleDagBag (proseo import, "
        "catalogue query, DAG build, DagBag checks); serial = DagSerialization.to_dict for every DAG; "
        "encode = msgpack frame to the manager; total = AF imp + file + serial; forked = file + serial "
        "+ encode (a child forked from the manager, which has Airflow imported); CPU = whole child; "
        "proc = the real dag-processor's last_parse_duration for the file"
    )
    print(
        f"timeouts: dagbag_import_timeout {DAGBAG_IMPORT_TIMEOUT:.0f} s (vs max file "
        f"{max(r['file_s'] for r in shards):.2f} s), dag_file_processor_timeout "
        f"{DAG_FILE_PROCESSOR_TIMEOUT:.0f} s (vs max total {max(r['total_s'] for r in shards):.2f} s)"
    )
    print(
        f"orders: 1 real ({facts['real_job_step_rows']} job_step rows) + {args.orders - 1} clones of its "
        f"blueprint (no job_step rows; the factory reads only blueprints); {facts['job_steps']} job steps "
        f"in {facts['levels']} levels per order"
    )
    if proc is not None:
        state = "finished" if proc["finished"] else "DID NOT FINISH"
        print(
            f"airflow dag-processor -n 1: {state} in {proc['wall_s']:.1f} s (rc {proc['returncode']}; "
            f"parsing loop {proc['loop_s'] if proc['loop_s'] is None else round(proc['loop_s'], 1)} s; "
            f"CPU {proc['cpu_s']:.1f} s incl. start-up); "
            f"serialized_dag {proc['serialized_dag']}, dag {proc['dag_rows']}, import_error "
            f"{proc['import_errors']}, children killed for timeout {proc['killed']}"
        )
    registered = proc["serialized_dag"] if proc else None
    all_registered = bool(
        proc
        and proc["finished"]
        and proc["serialized_dag"] == args.orders
        and proc["import_errors"] == 0
        and proc["killed"] == 0
    )
    log(f"total bench time {time.perf_counter() - started:.0f} s")
    print(
        json.dumps(
            {
                "bench": "dag_parse",
                "orders": args.orders,
                "job_steps_per_order": facts["job_steps"],
                "all_registered": all_registered,
                "max_shard_seconds": round(max(r["total_s"] for r in shards), 3),
                "loop_cpu_fraction": round(total["cpu_s"] / MIN_FILE_PROCESS_INTERVAL, 3),
                "shards": len(shards),
                "dags_parsed": total["dags"],
                "dags_registered": registered,
                "import_errors": proc["import_errors"] if proc else None,
                "tasks_per_dag": round(total["tasks"] / max(total["dags"], 1), 2),
                "clone_orders_without_job_steps": args.orders - 1,
                "airflow_import_s": round(max(r["airflow_import_s"] for r in shards), 3),
                "max_shard_seconds_forked": round(max(r["forked_s"] for r in shards), 3),
                "loop_cpu_fraction_forked": round(total["forked_cpu_s"] / MIN_FILE_PROCESS_INTERVAL, 3),
                "serialise_s_all": round(total["serialise_s"], 3),
                "processor_wall_s": round(proc["wall_s"], 1) if proc else None,
                "processor_cpu_s": round(proc["cpu_s"], 1) if proc else None,
                "processor_loop_s": round(proc["loop_s"], 1) if proc and proc["loop_s"] else None,
                "max_shard_seconds_processor": round(max(durations.values()), 3)
                if durations and None not in durations.values()
                else None,
            }
        )
    )


if __name__ == "__main__":
    main()
