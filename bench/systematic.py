"""Benchmark: a simulated S5P day streamed into systematic production, no order made by hand.

What runs is proseo's own code end to end, in one process, with Airflow's parts played
by small loops that call what Airflow's tasks call:

* arrivals: every ``--every`` seconds the next orbit's deliveries (its four L0 files, and
  the AUX files due by then) are ingested with the ``Ingestor`` (the pickup DAG's call),
  then ``generate.fire_on_products`` runs for them (the data DAG's call on the Asset
  events); ``generate.fire_missed`` runs every ``--scan`` seconds (its timed runs);
* readiness: every ``--poll`` seconds the unfinished steps of released orders are
  refreshed with ``readiness.refresh_many`` (the input triggers' shared poll);
* workers: ``--workers`` threads take ready steps (highest order priority, then the
  earliest deadline) and run them as the local operator does: ``steptask.start_step``,
  the wrapper (``run_job``, in-process) with the sample processors, and
  ``steptask.complete_step``; the registered products go to ``fire_on_products`` (the
  Asset events of registration).

Measured per produced product: overhead = registration time - catalogue time of its
latest input - processor run time (the processor's own process, timed around
``run_processor``). Backlog = unfinished job steps of released orders at each arrival;
``backlog_growth`` is the least-squares slope of the backlog over the arrivals (job
steps per orbit; about 0 when the system keeps up). What this does not include:
Airflow's own scheduling latency (DAG parsing of new order DAGs, scheduler loop, task
start-up).

``--airflow`` runs the same stream through a real ``airflow standalone`` (LocalExecutor,
the SQLite catalogue next to it, the embedded default): the orbits' files are dropped
into the S5P pickup directory every ``--every`` seconds and everything else is Airflow's
(pickup trigger and DAG, data DAG, order DAGs with their sensors, registration's Asset
events). There the overhead is registration time - catalogue time of the latest input,
with the processor's own run time (about 0.07 s per step here) not subtracted, since it
runs in a worker process this bench cannot time.

    .venv/bin/python bench/systematic.py [--orbits 15] [--every 4] [--workers 2] [--catalog sqlite|postgresql]
    .venv/bin/python bench/systematic.py --airflow [--every 8]

The last line is JSON: {"bench": "systematic", "products": N, "p50_overhead_s": a,
"p95_overhead_s": b, "backlog_growth": g, ...}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

DAY = datetime(2025, 3, 1, tzinfo=UTC)
AUX = {"AUX_MET_TP", "AUX_CTMFCT", "AUX_NISE__", "AUX_L1_CKD"}
L0 = {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L0__ENG_A_"}
PROCESSOR_S: dict[int, float] = {}  # job step id -> processor run time
_TIMING = threading.local()


def _timed_processor() -> None:
    """Time the processor's own process (instrumentation only; behaviour unchanged)."""
    import proseo.wrapper.job as job

    original = job.run_processor

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return original(*args, **kwargs)
        finally:
            _TIMING.seconds = time.monotonic() - started

    job.run_processor = timed  # type: ignore[assignment]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def slope(ys: Sequence[float]) -> float:
    n = len(ys)
    if n < 2:
        return 0.0
    mx, my = (n - 1) / 2, statistics.fmean(ys)
    return sum((i - mx) * (y - my) for i, y in enumerate(ys)) / sum((i - mx) ** 2 for i in range(n))


class Stream:
    def __init__(self, url: str, work: Path, args: argparse.Namespace) -> None:
        from proseo.catalog.db import Catalog
        from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
        from proseo.catalog.schema import upgrade
        from proseo.missions import load_mission

        self.args, self.work = args, work
        self.catalog = Catalog(url)
        upgrade(self.catalog.engine)
        with self.catalog.session() as s:
            sync_mission(s, load_mission(Path(__file__).parent.parent / "mission_configs" / "s5p.yaml"))
            self.mission = loaded_from_catalog(s, "S5P")
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.running: set[int] = set()
        self.errors: list[str] = []
        self.backlog: list[int] = []
        self.ran = 0

    # -- arrivals ----------------------------------------------------------------------------------
    def orbits(self) -> list[Any]:
        day = [o for o in self.mission.orbits["S5P"] if o.stop > DAY and o.start < DAY + timedelta(days=1)]
        return day[: self.args.orbits]

    def ingest(self, start: datetime, stop: datetime, classes: set[str]) -> list[int]:
        from proseo.catalog.ingest import Ingestor
        from proseo.catalog.model_product import Product
        from proseo.devtools.generate import write_inputs

        files = write_inputs(
            self.mission, start, stop, self.work / f"in-{uuid.uuid4().hex[:8]}", classes=classes
        )
        before = time.time()
        report = Ingestor(self.catalog, self.mission).run(files)
        if not report.ok:
            raise RuntimeError(f"ingestion failed: {report}")
        with self.catalog.session() as s:
            since = datetime.fromtimestamp(before - 1, UTC)
            return list(
                s.scalars(
                    select(Product.id).where(Product.created_at >= since, Product.job_step_id.is_(None))
                )
            )

    def arrivals(self) -> None:
        from proseo.planning import generate

        orbits = self.orbits()
        self.ingest(orbits[0].start - timedelta(hours=12), orbits[-1].stop + timedelta(hours=12), AUX)
        for o in orbits:
            started = time.monotonic()
            self.backlog.append(self.unfinished())
            ids = self.ingest(o.start, o.stop, L0)
            result = generate.fire_on_products(self.catalog, "S5P", ids)
            self.errors += result.failed
            time.sleep(max(0.0, self.args.every - (time.monotonic() - started)))

    # -- readiness and workers ---------------------------------------------------------------------
    def unfinished(self) -> int:
        from proseo.catalog.model_order import Job, JobStep, ProcessingOrder

        with self.catalog.session() as s:
            return len(
                s.scalars(
                    select(JobStep.id)
                    .join(Job, Job.id == JobStep.job_id)
                    .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
                    .where(JobStep.state.not_in(["COMPLETED", "FAILED", "CANCELLED"]))
                ).all()
            )

    def ready_steps(self) -> list[int]:
        from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
        from proseo.planning.readiness import refresh_many

        with self.catalog.session() as s:
            rows = s.execute(
                select(JobStep.id)
                .join(Job, Job.id == JobStep.job_id)
                .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
                .where(
                    ProcessingOrder.state.in_(["RELEASED", "RUNNING"]),
                    JobStep.state.in_(["PLANNED", "WAITING_INPUT"]),
                )
                .order_by(ProcessingOrder.priority.desc(), ProcessingOrder.deadline, JobStep.id)
            ).all()
            ids = [r[0] for r in rows]
            found = refresh_many(s, ids) if ids else {}
        return [i for i in ids if i in found and found[i].ready]

    def run_step(self, step: int) -> None:
        from proseo.catalog.register import RunIdentity
        from proseo.execution import steptask
        from proseo.planning import generate
        from proseo.wrapper.job import run_job

        with self.catalog.session() as s:
            ctx = steptask.start_step(s, step, task_id="process", try_number=1)
        manifest = run_job(ctx.spec, self.work / "scratch" / str(step), echo=False)
        PROCESSOR_S[step] = getattr(_TIMING, "seconds", 0.0)
        if manifest.status.value == "FAILED":
            self.errors.append(f"step {step}: {manifest.stage}: {manifest.reason}")
        with self.catalog.session() as s:
            registered = steptask.complete_step(s, step, manifest, RunIdentity(dag_id="bench", run_id="r"))
        result = generate.fire_on_products(self.catalog, "S5P", registered.product_ids)
        self.errors += result.failed

    def worker(self) -> None:
        while not self.stop.is_set():
            step = None
            with self.lock:
                for candidate in self.ready_steps():
                    if candidate not in self.running:
                        step = candidate
                        self.running.add(step)
                        break
            if step is None:
                time.sleep(self.args.poll)
                continue
            try:
                self.run_step(step)
                self.ran += 1
            except Exception as exc:  # reported, the stream goes on
                self.errors.append(f"step {step}: {type(exc).__name__}: {exc}")
            finally:
                with self.lock:
                    self.running.discard(step)

    def scanner(self) -> None:
        from proseo.planning import generate

        while not self.stop.wait(self.args.scan):
            self.errors += generate.fire_missed(self.catalog, "S5P").failed

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.args.workers)]
        threads.append(threading.Thread(target=self.scanner, daemon=True))
        for t in threads:
            t.start()
        started = time.monotonic()
        self.arrivals()
        expected = len(self.orbits()) * 5 + 1  # L1B and four L2 per orbit, the day's L3
        deadline = time.monotonic() + self.args.drain
        while time.monotonic() < deadline:
            if self.unfinished() == 0 and self._l3_made():
                break
            time.sleep(1)
        self.stop.set()
        for t in threads:
            t.join(timeout=60)
        return self.measure(expected, time.monotonic() - started)

    def _l3_made(self) -> bool:
        from proseo.catalog.model_mission import ProductClass
        from proseo.catalog.model_product import Product

        with self.catalog.session() as s:
            return bool(
                s.scalar(
                    select(Product.id)
                    .join(ProductClass, ProductClass.id == Product.product_class_id)
                    .where(ProductClass.product_type == "L3__NO2___")
                )
            )

    def measure(self, expected_steps: int, wall_s: float) -> dict[str, Any]:
        with self.catalog.session() as s:
            rows = s.execute(
                text(
                    "SELECT p.id, p.job_step_id, p.created_at, MAX(i.created_at), pc.product_type "
                    "FROM product p JOIN product_input pi ON pi.product_id = p.id "
                    "JOIN product i ON i.id = pi.input_product_id "
                    "JOIN product_class pc ON pc.id = p.product_class_id "
                    "WHERE p.job_step_id IS NOT NULL AND p.enclosing_product_id IS NULL "
                    "GROUP BY p.id, p.job_step_id, p.created_at, pc.product_type"
                )
            ).all()
            orders = s.execute(text("SELECT state, COUNT(*) FROM processing_order GROUP BY state")).all()
            keys = s.scalar(text("SELECT COUNT(DISTINCT generation_key) FROM processing_order"))
            total = s.scalar(text("SELECT COUNT(*) FROM processing_order"))
        overheads = []
        for _pid, step, made, last_input, _ptype in rows:
            made, last_input = _aware(made), _aware(last_input)
            overheads.append((made - last_input).total_seconds() - PROCESSOR_S.get(step, 0.0))
        per_class: dict[str, int] = {}
        for *_, ptype in rows:
            per_class[ptype] = per_class.get(ptype, 0) + 1
        return {
            "bench": "systematic",
            "products": len(rows),
            "p50_overhead_s": round(percentile(overheads, 0.5), 2),
            "p95_overhead_s": round(percentile(overheads, 0.95), 2),
            "max_overhead_s": round(max(overheads, default=float("nan")), 2),
            "backlog_growth": round(slope(self.backlog), 3),
            "backlog": self.backlog,
            "orbits": len(self.orbits()),
            "every_s": self.args.every,
            "workers": self.args.workers,
            "job_steps_run": self.ran,
            "expected_job_steps": expected_steps,
            "orders": dict(orders),
            "orders_unique": keys == total,
            "products_per_class": per_class,
            "processor_s_total": round(sum(PROCESSOR_S.values()), 1),
            "wall_s": round(wall_s, 1),
            "errors": self.errors[:10],
        }


def _lineage_overheads(url: str) -> list[float]:
    """Registration time - catalogue time of the latest input, per produced product."""
    from proseo.catalog.db import Catalog

    catalog = Catalog(url)
    with catalog.session() as s:
        rows = s.execute(
            text(
                "SELECT p.created_at, MAX(i.created_at) FROM product p "
                "JOIN product_input pi ON pi.product_id = p.id JOIN product i ON i.id = pi.input_product_id "
                "WHERE p.job_step_id IS NOT NULL AND p.enclosing_product_id IS NULL "
                "GROUP BY p.id, p.created_at"
            )
        ).all()
    catalog.engine.dispose()
    return [(_aware(_ts(a)) - _aware(_ts(b))).total_seconds() for a, b in rows]


def _ts(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def run_airflow(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The stream through a real airflow standalone and its pickup directory."""
    from click.testing import CliRunner

    from proseo.catalog.db import Catalog
    from proseo.catalog.mission_sync import loaded_from_catalog
    from proseo.catalog.schema import upgrade
    from proseo.cli.main import cli
    from proseo.devtools.generate import write_inputs
    from proseo.devtools.standalone import Standalone

    url = f"sqlite:///{work / 'catalog.db'}"
    env = {
        "PROSEO_CATALOG_URL": url,
        "PROSEO_DATA": str(work / "data"),
        "PROSEO_SCRATCH": str(work / "scratch"),
        "PROSEO_PICKUP_ROOT": str(work / "pickup"),
        "PROSEO_PICKUP_SETTLE_S": "1",
        "PROSEO_PICKUP_POLL_S": "2",
        "PROSEO_TRIGGER_SCAN_S": "30",
        "PROSEO_INPUT_POLL_S": "3",
    }
    os.environ.update(env)
    catalog = Catalog(url)
    upgrade(catalog.engine)
    loaded = CliRunner().invoke(
        cli, ["mission", "load", str(Path(__file__).parent.parent / "mission_configs" / "s5p.yaml")]
    )
    assert loaded.exit_code == 0, loaded.output
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "S5P")
    day = [o for o in mission.orbits["S5P"] if o.stop > DAY and o.start < DAY + timedelta(days=1)][
        : args.orbits
    ]
    pickup = work / "pickup" / "S5P"
    pickup.mkdir(parents=True)

    def deliver(files: list[Path]) -> None:
        for f in files:
            for part in (f.with_name(f.name + ".json"), f):
                if part.exists():
                    shutil.copyfile(part, pickup / (part.name + ".part"))
                    (pickup / (part.name + ".part")).rename(pickup / part.name)

    stream = Stream.__new__(Stream)
    stream.catalog = catalog
    airflow = Standalone(
        work / "airflow", parallelism=4, catalog_url=url, env=env, min_file_process_interval=5
    )
    airflow.start()
    started = time.monotonic()
    backlog: list[int] = []
    try:
        deliver(
            write_inputs(
                mission,
                day[0].start - timedelta(hours=12),
                day[-1].stop + timedelta(hours=12),
                work / "aux",
                classes=AUX,
            )
        )
        for o in day:
            t0 = time.monotonic()
            backlog.append(stream.unfinished())
            deliver(write_inputs(mission, o.start, o.stop, work / f"o{o.number}", classes=L0))
            time.sleep(max(0.0, args.every - (time.monotonic() - t0)))
        deadline = time.monotonic() + args.drain
        while time.monotonic() < deadline and not (stream.unfinished() == 0 and stream._l3_made()):
            time.sleep(2)
        wall = time.monotonic() - started
    finally:
        stopped = airflow.stop()
    overheads = _lineage_overheads(url)
    with catalog.session() as s:
        orders = dict(s.execute(text("SELECT state, COUNT(*) FROM processing_order GROUP BY state")).all())
        unique = s.scalar(text("SELECT COUNT(DISTINCT generation_key) = COUNT(*) FROM processing_order"))
    return {
        "bench": "systematic",
        "products": len(overheads),
        "p50_overhead_s": round(percentile(overheads, 0.5), 2),
        "p95_overhead_s": round(percentile(overheads, 0.95), 2),
        "max_overhead_s": round(max(overheads, default=float("nan")), 2),
        "backlog_growth": round(slope(backlog), 3),
        "backlog": backlog,
        "path": "airflow standalone (LocalExecutor, parallelism 4), pickup directory",
        "orbits": len(day),
        "every_s": args.every,
        "orders": orders,
        "orders_unique": bool(unique),
        "wall_s": round(wall, 1),
        "airflow_stopped_clean": stopped.clean,
    }


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--orbits", type=int, default=15, help="orbits of the day streamed (15 touch 2025-03-01)"
    )
    parser.add_argument("--every", type=float, default=4.0, help="seconds between two orbits' arrivals")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--poll", type=float, default=1.0, help="readiness poll interval (s)")
    parser.add_argument("--scan", type=float, default=10.0, help="data triggers' scan interval (s)")
    parser.add_argument("--drain", type=float, default=600.0, help="seconds to finish after the last arrival")
    parser.add_argument("--catalog", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--airflow", action="store_true", help="through a real airflow standalone")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_systematic_"))
    os.environ["PROSEO_DATA"] = str(work / "data")
    os.environ["PROSEO_SCRATCH"] = str(work / "scratch")
    # The sample processors are console scripts beside this interpreter.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    from proseo.catalog.db import make_engine

    if args.airflow:
        try:
            result = run_airflow(args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"through Airflow: {result['products']} products in {result['wall_s']} s; overhead p50 "
            f"{result['p50_overhead_s']} s, p95 {result['p95_overhead_s']} s, "
            f"max {result['max_overhead_s']} s; "
            f"backlog {result['backlog']} (slope {result['backlog_growth']}); orders {result['orders']}",
            file=sys.stderr,
        )
        print(json.dumps(result))
        return
    _timed_processor()
    pg_name = f"proseo_bench_{uuid.uuid4().hex[:8]}"
    admin = (
        make_engine(f"{args.pg}/test", isolation_level="AUTOCOMMIT") if args.catalog == "postgresql" else None
    )
    try:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
            url = f"{args.pg}/{pg_name}"
        else:
            url = f"sqlite:///{work / 'catalog.db'}"
        result = Stream(url, work, args).run()
    finally:
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{result['products']} products ({result['products_per_class']}), {result['job_steps_run']} job "
        f"steps run in {result['wall_s']} s; overhead p50 {result['p50_overhead_s']} s, p95 "
        f"{result['p95_overhead_s']} s, max {result['max_overhead_s']} s; backlog per arrival "
        f"{result['backlog']} (slope {result['backlog_growth']} steps/orbit); orders {result['orders']}",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
