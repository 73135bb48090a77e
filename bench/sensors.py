"""Benchmark: 10,000 job steps waiting for their inputs in ONE triggerer process, on PostgreSQL.

Setup (through proseo's own code): a throwaway PostgreSQL catalogue
(``proseo.catalog.schema.upgrade``), the S5P sample mission loaded, the calibration
(AUX_L1_CKD) ingested, then L1B orders over consecutive orbits planned (at most
``--order-steps`` job steps each, the planner's per-order bound) and released. No L0
exists yet, so every L1B step is WAITING_INPUT for its orbit's three L0 detector bands
(ODB_1, ODB_4, ODB_6; the engineering L0 is OPTIONAL and never delivered).

The triggerer: a fresh child process with one asyncio event loop and one task per
waiting step, each task consuming ``JobStepInputsTrigger.run()``. Each trigger is made
the way Airflow's triggerer makes it: ``serialize()`` -> classpath imported ->
``cls(**kwargs)`` (kwargs through JSON and ``smart_decode_trigger_kwargs``), then
``trigger_id`` and ``timeout_after`` set, ``cleanup()`` after the event. SQL statements
are counted with a ``before_cursor_execute`` listener on the poller's engine
(``proseo.orchestration.triggers.engine_for(url)``) and attributed to the poll that
issued them (the poll statement(s) of ``poll_readiness`` and those of the refresh of
the steps it flagged, counted apart). The only instrumentation is counting wrappers
around ``readiness.poll_readiness``, ``readiness.refresh_many`` and the poller's
``_check``; behaviour is unchanged.

Once the poll is steady (nothing changed, ``--steady-polls`` polls in a row), this
process registers the L0 deliveries with proseo's ``Ingestor`` in ``--batches``
batches, one every ``--batch-every`` seconds, recording when each product's
transaction issued its COMMIT. Latency of a step = the instant its trigger's event
reached the triggerer loop - the COMMIT of the last of its three bands. Every trigger
must end "ready"; anything else is a failure.

    .venv/bin/python bench/sensors.py [--waiting 10000] [--poll-interval 2]

The last line is JSON: {"bench": "sensors", "waiting": N, "queries_per_poll": q, "p95_latency_s": l, ...}
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text

from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.ingest import Ingestor, Outcome
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

REPO = Path(__file__).resolve().parents[1]
FIRST_ORBIT = 37001
BANDS = ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_")  # the mandatory L0 inputs of an L1B step


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


# ------------------------------------------------------------------ catalogue side


def build_catalogue(url: str, work: Path, waiting: int, order_steps: int) -> dict[str, Any]:
    """Fresh catalogue, S5P loaded, CKD ingested, L1B orders planned and released."""
    t0 = time.perf_counter()
    engine = make_engine(url)
    upgrade(engine)
    catalog = Catalog(url, engine=engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(REPO / "mission_configs" / "s5p.yaml"))
        mission = loaded_from_catalog(s, "S5P")
    orbits = {o.number: o for o in mission.orbits["S5P"]}
    last = FIRST_ORBIT + waiting - 1
    if last not in orbits:
        raise SystemExit(f"--waiting {waiting}: the sample mission has orbits up to {max(orbits)} only")
    start, stop = orbits[FIRST_ORBIT].start, orbits[last].stop
    ckd = write_inputs(mission, start, stop, work / "ckd", size=64, classes={"AUX_L1_CKD"})
    assert Ingestor(catalog, mission).run(ckd).ok
    setup_s = time.perf_counter() - t0
    log(f"catalogue migrated, S5P loaded, {len(ckd)} AUX_L1_CKD ingested in {setup_s:.1f} s")

    t0 = time.perf_counter()
    plan_s: list[float] = []
    identifiers = []
    for n, first in enumerate(range(FIRST_ORBIT, last + 1, order_steps)):
        identifier = f"l1b-{n:03d}"
        spec = OrderSpec(
            identifier=identifier,
            requested_classes=["L1B_______"],
            orbit_from=first,
            orbit_to=min(first + order_steps - 1, last),
            output_parameters={"*": {"collection": 3}},
        )
        with catalog.session() as s:
            orders.create_order(s, "S5P", spec)
        lifecycle.approve_order(catalog, "S5P", identifier)
        p0 = time.perf_counter()
        lifecycle.plan_order(catalog, "S5P", identifier, max_steps=order_steps)
        plan_s.append(time.perf_counter() - p0)
        lifecycle.release_order(catalog, "S5P", identifier)
        identifiers.append(identifier)
    with catalog.session() as s:
        rows = s.execute(
            select(JobStep.id, JobStep.state, JobStep.start_time)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .where(ProcessingOrder.identifier.in_(identifiers))
            .order_by(JobStep.start_time)
        ).all()
        states = defaultdict(int)
        for _, state, _ in rows:
            states[state] += 1
    engine.dispose()
    orders_s = time.perf_counter() - t0
    log(
        f"{len(identifiers)} L1B orders of <= {order_steps} steps planned and released in {orders_s:.1f} s "
        f"(plan {sum(plan_s):.1f} s, max {max(plan_s):.2f} s per order); job steps by state: {dict(states)}"
    )
    if states.get("WAITING_INPUT", 0) != waiting or len(rows) != waiting:
        raise SystemExit(f"expected {waiting} WAITING_INPUT steps, got {dict(states)}")
    return {
        "mission": mission,
        "steps": {sid: t for sid, _, t in rows},
        "orders": len(identifiers),
        "setup_s": setup_s,
        "orders_s": orders_s,
        "plan_s": sum(plan_s),
        "window": (start, stop),
    }


class TimedIngestor(Ingestor):
    """proseo's Ingestor; notes when each registration transaction issued its COMMIT."""

    def __init__(self, *args: Any, commits: dict[int, tuple[float, float]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commits = commits
        self._local = threading.local()
        event.listen(self.catalog.engine, "commit", self._on_commit)

    def _on_commit(self, _conn: Any) -> None:
        self._local.commit_at = time.time()  # COMMIT about to be sent (the earliest it can be visible)

    def _flush_and_register(self, copied: Any, production_type: Any) -> list[Outcome]:
        self._local.commit_at = None
        outcomes = super()._flush_and_register(copied, production_type)
        done = time.time()
        issued = self._local.commit_at or done
        for o in outcomes:
            if o.status == "new" and o.product_id is not None:
                self.commits[o.product_id] = (issued, done)
        return outcomes


def deliver(
    url: str, mission: Any, batches: list[list[Path]], every: float, commits: dict[int, tuple[float, float]]
) -> list[dict[str, Any]]:
    """Ingest the batches one every ``every`` seconds (proseo's Ingestor, PostgreSQL)."""
    engine = make_engine(url)
    catalog = Catalog(url, engine=engine)
    ingestor = TimedIngestor(catalog, mission, commits=commits)
    out = []
    t_start = time.perf_counter()
    for n, files in enumerate(batches):
        due = t_start + n * every
        if (rest := due - time.perf_counter()) > 0:
            time.sleep(rest)
        t0 = time.perf_counter()
        report = ingestor.run(files)
        took = time.perf_counter() - t0
        bad = [o for o in report.outcomes if o.status != "new"]
        if bad:
            raise SystemExit(f"ingest batch {n}: {len(bad)} not new, e.g. {bad[0]}")
        out.append({"files": len(files), "seconds": took})
        log(f"  batch {n + 1}/{len(batches)}: {len(files)} L0 files ingested in {took:.2f} s")
    engine.dispose()
    return out


# ------------------------------------------------------------------ the triggerer (child process)


def triggerer(args: argparse.Namespace) -> None:
    """One process, one event loop, one task per trigger: what Airflow's triggerer does."""
    c_start = time.process_time()
    from airflow.serialization.decoders import smart_decode_trigger_kwargs

    from proseo.orchestration import triggers
    from proseo.orchestration.triggers import JobStepInputsTrigger
    from proseo.planning import readiness

    spec = json.loads(Path(args.triggerer).read_text())
    url, ids, interval = spec["url"], spec["ids"], spec["interval"]
    import_cpu = time.process_time() - c_start

    # --- instrumentation: statements per poll, by phase -----------------------------------
    local = threading.local()
    polls: list[dict[str, Any]] = []
    outside = [0]

    def count(*_a: Any) -> None:
        rec = getattr(local, "rec", None)
        if rec is None:
            outside[0] += 1
        else:
            rec[local.phase] += 1

    engine = triggers.engine_for(triggers.resolve_url(url))
    event.listen(engine, "before_cursor_execute", count)

    real_poll, real_refresh = readiness.poll_readiness, readiness.refresh_many
    real_check = triggers.SharedPoller._check

    def poll_readiness(session: Any, job_step_ids: Any, since: Any) -> Any:
        local.phase, t0 = "poll_stmts", time.perf_counter()
        try:
            return real_poll(session, job_step_ids, since)
        finally:
            local.rec["poll_s"] += time.perf_counter() - t0
            local.phase = "other_stmts"

    def refresh_many(session: Any, job_step_ids: Any, **kw: Any) -> Any:
        local.phase, t0 = "refresh_stmts", time.perf_counter()
        try:
            return real_refresh(session, job_step_ids, **kw)
        finally:
            local.rec["refresh_s"] += time.perf_counter() - t0
            local.phase = "other_stmts"

    def check(self: Any, ids_: list[int], fresh: set[int], since: Any) -> Any:
        rec = {
            "at": time.time(),
            "steps": len(ids_),
            "fresh": len(fresh),
            "since": since is not None,
            "poll_stmts": 0,
            "refresh_stmts": 0,
            "other_stmts": 0,
            "poll_s": 0.0,
            "refresh_s": 0.0,
        }
        local.rec, local.phase = rec, "other_stmts"
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            outcome = real_check(self, ids_, fresh, since)
        finally:
            local.rec = None
        rec.update(
            seconds=time.perf_counter() - t0,
            thread_cpu_s=time.thread_time() - c0,
            refreshed=outcome.refreshed,
            events=len(outcome.events),
            failed=None if outcome.failed is None else repr(outcome.failed)[:300],
        )
        polls.append(rec)
        return outcome

    readiness.poll_readiness = poll_readiness  # the poller calls readiness.<name> at run time
    readiness.refresh_many = refresh_many
    triggers.SharedPoller._check = check

    # --- the triggers, as the triggerer creates and runs them -----------------------------
    events: dict[int, tuple[str, float, str]] = {}
    created_at = time.time()

    def make(trigger_id: int, step: int) -> Any:
        made = JobStepInputsTrigger(
            catalog_url=url, job_step_id=step, poll_interval=interval, timeout_s=args.trigger_timeout
        )
        classpath, kwargs = made.serialize()
        kwargs = json.loads(json.dumps(kwargs))  # through the trigger table
        module, _, name = classpath.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        trigger = cls(**{k: smart_decode_trigger_kwargs(v) for k, v in kwargs.items()})
        trigger.trigger_id = trigger_id
        trigger.triggerer_job_id = 1
        trigger.timeout_after = None
        return trigger

    async def run_trigger(trigger: Any) -> None:
        try:
            async for ev in trigger.run():
                payload = ev.payload
                events[int(trigger.job_step_id)] = (
                    str(payload.get("status")),
                    time.time(),
                    str(payload.get("message"))[:200],
                )
        finally:
            await trigger.cleanup()

    def say(kind: str, **data: Any) -> None:
        print(json.dumps({"kind": kind, **data}), flush=True)

    async def main() -> dict[str, Any]:
        lag = [0.0]

        async def watch_loop() -> None:  # how late the loop runs a 50 ms sleep: a blocked loop shows here
            while True:
                t0 = time.perf_counter()
                await asyncio.sleep(0.05)
                lag[0] = max(lag[0], time.perf_counter() - t0 - 0.05)

        watcher = asyncio.create_task(watch_loop())
        t0 = time.perf_counter()
        tasks = []
        for n, step in enumerate(ids):
            tasks.append(asyncio.create_task(run_trigger(make(n + 1, step)), name=f"trigger {n + 1}"))
            if n % 1000 == 999:
                await asyncio.sleep(0)  # as create_triggers yields while it creates
        create_s = time.perf_counter() - t0
        say("created", triggers=len(tasks), seconds=create_s)
        # Steady state: the registration poll(s) done, then `steady` polls in a row that refreshed nothing.
        while True:
            await asyncio.sleep(0.05)
            done = [p for p in polls if p["steps"] == len(ids)]
            tail = polls[-args.steady_polls :]
            if (
                done
                and len(tail) == args.steady_polls
                and all(p["refreshed"] == 0 and p["since"] and p["steps"] == len(ids) for p in tail)
            ):
                break
            if events:
                break  # something fired before any input was delivered: reported as a failure
        cpu_steady = time.process_time()
        say("steady", polls=len(polls), lag_s=lag[0])
        lag[0] = 0.0
        deadline = time.perf_counter() + args.deadline
        pending = set(tasks)
        while pending and time.perf_counter() < deadline:
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        watcher.cancel()
        return {
            "create_s": create_s,
            "cpu_steady_mark": cpu_steady,
            "lag_after_steady_s": lag[0],
            "unfinished": len(pending),
        }

    result = asyncio.run(main())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result.update(
        polls=polls,
        outside_stmts=outside[0],
        events={str(k): v for k, v in events.items()},
        created_at=created_at,
        cpu_total_s=time.process_time() - c_start,
        cpu_import_s=import_cpu,
        cpu_after_steady_s=time.process_time() - result["cpu_steady_mark"],
        max_rss_mb=usage.ru_maxrss / 1024,
    )
    Path(args.result).write_text(json.dumps(result))
    say("finished")


# ------------------------------------------------------------------------ main


def start_triggerer(work: Path, url: str, ids: list[int], args: argparse.Namespace) -> subprocess.Popen[str]:
    spec = work / "triggerer.json"
    spec.write_text(json.dumps({"url": url, "ids": ids, "interval": args.poll_interval}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update(
        AIRFLOW_HOME=str(work / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    cmd = [
        sys.executable,
        __file__,
        "--triggerer",
        str(spec),
        "--result",
        str(work / "triggerer_result.json"),
        "--steady-polls",
        str(args.steady_polls),
        "--deadline",
        str(args.deadline),
        "--trigger-timeout",
        str(args.trigger_timeout),
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)


def wait_for(proc: subprocess.Popen[str], kind: str, limit: float) -> dict[str, Any]:
    assert proc.stdout is not None
    t_end = time.perf_counter() + limit
    while time.perf_counter() < t_end:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"triggerer exited ({proc.wait()}) before {kind!r}")
        if line.startswith('{"kind"'):
            msg = json.loads(line)
            if msg["kind"] == kind:
                return msg
    raise SystemExit(f"triggerer: no {kind!r} within {limit:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--waiting", type=int, default=10_000, help="waiting job steps (one trigger each)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="trigger poll interval (s)")
    parser.add_argument("--order-steps", type=int, default=1000, help="planner bound: job steps per order")
    parser.add_argument("--batches", type=int, default=10, help="ingestion batches")
    parser.add_argument("--batch-every", type=float, default=5.0, help="seconds between batch starts")
    parser.add_argument("--steady-polls", type=int, default=3, help="steady polls observed before ingesting")
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds allowed after steady state")
    parser.add_argument("--trigger-timeout", type=float, default=3600.0, help="each trigger's timeout_s")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the database and the temp dir")
    parser.add_argument("--triggerer", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.triggerer:
        triggerer(args)
        return

    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="proseo_bench_sensors_"))
    os.environ.update(PROSEO_DATA=str(work / "data"), PROSEO_SCRATCH=str(work / "scratch"))
    pg_name = f"proseo_bench_{uuid.uuid4().hex[:8]}"
    url = f"{args.pg}/{pg_name}"
    admin = make_engine(f"{args.pg}/test", isolation_level="AUTOCOMMIT")
    proc: subprocess.Popen[str] | None = None
    commits: dict[int, tuple[float, float]] = {}
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        facts = build_catalogue(url, work, args.waiting, args.order_steps)
        steps: dict[int, Any] = facts["steps"]
        # The deliveries, written before the clock starts; batches of consecutive orbits.
        t0 = time.perf_counter()
        start, stop = facts["window"]
        files = write_inputs(facts["mission"], start, stop, work / "l0", size=64, classes=set(BANDS))
        per = -(-len(files) // args.batches)
        per += (-per) % len(BANDS)  # keep an orbit's bands in one batch
        batches = [files[i : i + per] for i in range(0, len(files), per)]
        log(f"{len(files)} L0 files written in {time.perf_counter() - t0:.1f} s, {len(batches)} batches")

        ids = sorted(steps)
        log(f"starting the triggerer: {len(ids)} triggers, poll interval {args.poll_interval} s ...")
        t_trig = time.perf_counter()
        proc = start_triggerer(work, url, ids, args)
        created = wait_for(proc, "created", 600)
        log(f"  {created['triggers']} triggers created in {created['seconds']:.2f} s")
        steady = wait_for(proc, "steady", 600)
        to_steady = time.perf_counter() - t_trig
        log(f"  steady after {to_steady:.1f} s ({steady['polls']} polls); delivering the L0 ...")
        t_ing = time.perf_counter()
        ingest = deliver(url, facts["mission"], batches, args.batch_every, commits)
        ingest_wall = time.perf_counter() - t_ing
        wait_for(proc, "finished", args.deadline + 120)
        proc.wait(60)
        result = json.loads((work / "triggerer_result.json").read_text())

        # Which products each step needed: its orbit's three bands.
        engine = make_engine(url)
        with Catalog(url, engine=engine).session() as s:
            rows = s.execute(
                select(Product.id, ProductClass.product_type, Product.sensing_start)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type.in_(BANDS))
            ).all()
            final_states = dict(
                s.execute(select(JobStep.state, text("count(*)")).group_by(JobStep.state)).all()
            )
        engine.dispose()
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept database {pg_name} and {work}")
        admin.dispose()

    by_start: dict[Any, list[int]] = defaultdict(list)
    for pid, _ptype, sensing_start in rows:
        by_start[sensing_start].append(pid)
    events = {int(k): v for k, v in result["events"].items()}
    latencies: list[float] = []
    failures: dict[str, int] = defaultdict(int)
    examples: list[str] = []
    for sid, step_start in steps.items():
        got = events.get(sid)
        if got is None or got[0] != "ready":
            failures[got[0] if got else "no event"] += 1
            if got and len(examples) < 3:
                examples.append(f"step {sid}: {got[0]}: {got[2]}")
            continue
        needed = by_start.get(step_start, [])
        if len(needed) != len(BANDS) or any(p not in commits for p in needed):
            failures["inputs not found"] += 1
            continue
        latencies.append(got[1] - max(commits[p][0] for p in needed))
    commit_s = [done - issued for issued, done in commits.values()]

    polls = result["polls"]
    n = len(ids)
    full = [p for p in polls if p["steps"] == n]
    steady_polls = [p for p in full if p["since"] and p["refreshed"] == 0 and p["fresh"] == 0]
    refreshing = [p for p in polls if p["refreshed"] > 0]
    first = polls[0] if polls else {}
    q_values = sorted({p["poll_stmts"] + p["other_stmts"] for p in steady_polls})
    queries_per_poll = max(q_values) if q_values else None

    print(
        f"{n} waiting job steps (L1B, {len(BANDS)} L0 bands each) in {facts['orders']} orders; "
        f"poll interval {args.poll_interval} s; one triggerer process, {n} asyncio tasks"
    )
    print(
        f"setup: catalogue {facts['setup_s']:.1f} s, plan+release {facts['orders_s']:.1f} s "
        f"(planner {facts['plan_s']:.1f} s); triggers created in {result['create_s']:.2f} s; "
        f"steady after {to_steady:.1f} s"
    )
    print(
        f"first poll (all {first.get('fresh', 0)} registrations refreshed): {first.get('seconds', 0):.2f} s, "
        f"{first.get('poll_stmts', 0)} poll + {first.get('refresh_stmts', 0)} refresh statements"
    )
    if steady_polls:
        secs = [p["seconds"] for p in steady_polls]
        cpus = [p["thread_cpu_s"] for p in steady_polls]
        print(
            f"steady polls: {len(steady_polls)}, statements per poll {q_values} "
            f"(poll {sorted({p['poll_stmts'] for p in steady_polls})}, other "
            f"{sorted({p['other_stmts'] for p in steady_polls})}); poll time median "
            f"{statistics.median(secs):.3f} s, max {max(secs):.3f} s; poll thread CPU median "
            f"{statistics.median(cpus):.3f} s"
        )
    print(
        f"{'poll':>5}{'t (s)':>8}{'steps':>7}{'fresh':>7}{'stmts':>7}{'refr.':>7}{'r.stmts':>8}"
        f"{'events':>8}{'poll s':>8}{'refr s':>8}{'total s':>8}"
    )
    t_base = polls[0]["at"] if polls else 0.0
    for i, p in enumerate(polls):
        if (
            p["refreshed"]
            or p["events"]
            or i < 2
            or p is polls[-1]
            or p["poll_stmts"] + p["other_stmts"] != 1
        ):
            print(
                f"{i:>5}{p['at'] - t_base:>8.1f}{p['steps']:>7}{p['fresh']:>7}"
                f"{p['poll_stmts'] + p['other_stmts']:>7}{p['refreshed']:>7}{p['refresh_stmts']:>8}"
                f"{p['events']:>8}{p['poll_s']:>8.3f}{p['refresh_s']:>8.3f}{p['seconds']:>8.3f}"
            )
    print(
        "(rows shown: the first two polls, polls that refreshed or resolved steps, the last poll,"
        " and any poll of more than one statement)"
    )
    ingested = sum(b["files"] for b in ingest)
    print(
        f"ingestion: {ingested} L0 products in {len(ingest)} batches, one every {args.batch_every} s, "
        f"{ingest_wall:.1f} s wall; COMMIT took median {statistics.median(commit_s) * 1000:.1f} ms"
    )
    if refreshing:
        after = [p for p in refreshing if p["fresh"] == 0]
        if after:
            print(
                f"polls that refreshed steps after delivery: {len(after)}; statements: poll "
                f"{sorted({p['poll_stmts'] + p['other_stmts'] for p in after})}, refresh "
                f"{sorted({p['refresh_stmts'] for p in after})}; refreshed steps per poll max "
                f"{max(p['refreshed'] for p in after)}, refresh time max "
                f"{max(p['refresh_s'] for p in after):.2f} s"
            )
    if latencies:
        print(
            f"latency (event - COMMIT of the last needed band) over {len(latencies)} steps: "
            f"p50 {pct(latencies, 50):.2f} s, p95 {pct(latencies, 95):.2f} s, max {max(latencies):.2f} s, "
            f"min {min(latencies):.2f} s"
        )
    print(
        f"triggerer process CPU: {result['cpu_total_s']:.1f} s total "
        f"(import {result['cpu_import_s']:.1f} s), "
        f"{result['cpu_after_steady_s']:.1f} s from steady state to the end; max RSS "
        f"{result['max_rss_mb']:.0f} MB; loop lag max {result['lag_after_steady_s'] * 1000:.0f} ms "
        f"after steady; statements outside polls {result['outside_stmts']}"
    )
    print(
        f"outcome: {sum(1 for e in events.values() if e[0] == 'ready')} ready, failures {dict(failures)}, "
        f"unfinished {result['unfinished']}; job steps now {final_states}"
    )
    for line in examples:
        print(f"  e.g. {line}")
    log(f"total bench time {time.perf_counter() - started:.0f} s")
    print(
        json.dumps(
            {
                "bench": "sensors",
                "waiting": n,
                "queries_per_poll": queries_per_poll,
                "p95_latency_s": round(pct(latencies, 95), 3) if latencies else None,
                "p50_latency_s": round(pct(latencies, 50), 3) if latencies else None,
                "max_latency_s": round(max(latencies), 3) if latencies else None,
                "poll_interval_s": args.poll_interval,
                "ready": len(latencies),
                "failures": sum(failures.values()),
                "steady_polls": len(steady_polls),
                "steady_poll_s": round(statistics.median([p["seconds"] for p in steady_polls]), 3)
                if steady_polls
                else None,
                "refresh_statements_max": max((p["refresh_stmts"] for p in refreshing), default=0),
                "first_poll_s": round(first.get("seconds", 0.0), 3),
                "batches": len(ingest),
                "ingest_wall_s": round(ingest_wall, 2),
                "triggerer_cpu_s": round(result["cpu_total_s"], 2),
                "triggerer_cpu_after_steady_s": round(result["cpu_after_steady_s"], 2),
                "max_loop_lag_s": round(result["lag_after_steady_s"], 3),
                "orders": facts["orders"],
            }
        )
    )


if __name__ == "__main__":
    main()
