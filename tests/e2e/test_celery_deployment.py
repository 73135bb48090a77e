"""End to end on the Celery deployment: a day of S5P over two facilities and two workers,
one worker SIGKILLed mid-order and the scheduler SIGKILLed and restarted.

The S5P mission is onboarded with its Kubernetes facility replaced by a second local one
(``annex``; this machine has no cluster), so the day's orbits are split in two orders, the
first half on facility ``local`` and the second on ``annex`` (an order runs on one
facility). ``worker0`` serves ``default`` and ``proseo-s5p-local``, ``worker1`` only
``proseo-s5p-annex``: every try of every task must have run on its facility's worker.
The annex order's processor runs take 4 s (``proseo_test_seconds``), so a task seen running
is still at work when, while the annex order runs, worker1 is SIGKILLed with its task
processes and restarted (CI once saw a 1-s step report success between the look and the kill):
the scheduler finds the killed tries without heartbeat, they are retried, and the order
completes with every planned output registered as exactly one product. Then, with the local
order still running, the scheduler is SIGKILLed and started again, and the orders finish.
The catalogue is PostgreSQL, as is Airflow's metadata database; the broker is Redis.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from proseo.catalog.db import make_engine
from proseo.demo import REPO, Demo, proseo_cli
from proseo.devtools.celery_deployment import CeleryDeployment
from proseo.devtools.generate import write_inputs
from proseo.devtools.services import POSTGRES
from proseo.missions import load_mission

pytestmark = pytest.mark.e2e

DAY = datetime(2025, 3, 1, tzinfo=UTC)
WORKERS = [["default", "proseo-s5p-local"], ["proseo-s5p-annex"]]
FACILITY_WORKER = {"local": "worker0", "annex": "worker1"}
ANNEX = """  annex:
    description: A second local facility, served by its own Celery worker
    backend: local
    storage_url: file://${PROSEO_DATA:-/tmp/proseo/data}/S5P
    scratch_path: ${PROSEO_SCRATCH:-/tmp/proseo/scratch}/S5P-annex
    max_concurrent_job_steps: 2

"""


def two_facility_s5p() -> str:
    """s5p.yaml with the Kubernetes facility ``cloud`` replaced by a local ``annex``."""
    source = (REPO / "mission_configs" / "s5p.yaml").read_text()
    out, n = re.subn(r"(?ms)^  cloud:\n.*?(?=^\S)", ANNEX, source)
    assert n == 1
    return out


@dataclass
class CeleryDemo(Demo):
    """The demo's steps (REST, CLI) on a Celery deployment with a PostgreSQL catalogue."""

    pg_url: str = ""
    deployment: CeleryDeployment | None = None

    @property
    def catalog_url(self) -> str:
        return self.pg_url

    def environment(self) -> dict[str, str]:
        return {**super().environment(), "PROSEO_TASK_RETRIES": "3", "PROSEO_TASK_RETRY_DELAY_S": "3"}

    def start_airflow(self) -> CeleryDeployment:
        self.deployment = CeleryDeployment(
            self.home / "airflow",
            workers=WORKERS,
            concurrency=2,
            parallelism=4,
            catalog_url=self.catalog_url,
            heartbeat_timeout_s=30,
            env={
                **self.environment(),
                # Killed schedulers' tasks are adopted soon, tasks lost while queued retried soon.
                "AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL": "15",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_THRESHOLD": "15",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            },
        )
        self.airflow = self.deployment
        self.deployment.start()
        return self.deployment


def day_orbits() -> list[int]:
    mission = load_mission(REPO / "mission_configs" / "s5p.yaml")
    (orbits,) = mission.orbits.values()
    return [o.number for o in orbits if DAY <= o.start < DAY + timedelta(days=1)]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    saved = dict(os.environ)
    home: Path = tmp_path_factory.mktemp("celery") / "demo"
    admin = make_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    name = f"proseo_e2e_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    demo = CeleryDemo(home, pg_url=f"{POSTGRES}/{name}")
    t0 = time.monotonic()
    try:
        demo.prepare()
        deployment = demo.start_airflow()
        outcome = run_story(demo, deployment)
        yield outcome | {"seconds": time.monotonic() - t0, "deployment": deployment, "catalog": demo.pg_url}
    finally:
        demo.stop()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        os.environ.clear()
        os.environ.update(saved)


def running_on(deployment: CeleryDeployment, dag_id: str, worker: str) -> list[dict[str, Any]]:
    runs = deployment.client.runs(dag_id)
    if not runs:
        return []
    tis = deployment.client.task_instances(dag_id, runs[0]["dag_run_id"], states=["running"])
    return [t for t in tis if t.get("hostname") == worker]


def order(demo: CeleryDemo, identifier: str) -> dict[str, Any]:
    return dict(demo.ok("GET", f"/missions/S5P/orders/{identifier}"))


def run_story(demo: CeleryDemo, deployment: CeleryDeployment) -> dict[str, Any]:
    mission_file = demo.home / "s5p.yaml"
    mission_file.write_text(two_facility_s5p())
    demo.ok("POST", "/missions", json={"file_name": "s5p.yaml", "text": mission_file.read_text()})
    mission = load_mission(mission_file)
    orbits = day_orbits()
    (sc_orbits,) = mission.orbits.values()
    by_number = {o.number: o for o in sc_orbits}
    inbox = demo.home / "inbox" / "S5P"
    write_inputs(
        mission,
        by_number[orbits[0]].start - timedelta(hours=3),
        by_number[orbits[-1]].stop + timedelta(hours=3),
        inbox,
    )
    proseo_cli("product", "ingest", "--mission", "S5P", str(inbox), echo=False)
    half = len(orbits) // 2
    parts = {"local": orbits[:half], "annex": orbits[half:]}
    dags = {}
    for facility, numbers in parts.items():
        body = {
            "identifier": f"day-{facility}",
            "requested_classes": ["L2__NO2___"],
            "orbit_from": numbers[0],
            "orbit_to": numbers[-1],
            "processing_mode": "OFFL",
            "output_parameters": {"*": {"collection": 1}},
            "facility": facility,
        }
        if facility == "annex":  # its steps must still be working when worker1 is killed
            body["dynamic_parameters"] = {"proseo_test_seconds": 4}
        dags[facility] = demo.ok("POST", "/missions/S5P/orders?release=true", json=body)["dag_id"]

    # worker1 dies with a task of the annex order running on it, and comes back.
    deadline = time.monotonic() + 600
    victims: list[dict[str, Any]] = []
    while not victims and time.monotonic() < deadline:
        victims = running_on(deployment, dags["annex"], "worker1")
        time.sleep(0.5)
    assert victims, "no task of the annex order ran on worker1 within 600 s"
    killed = deployment.kill_worker(1)
    time.sleep(5)
    deployment.restart_worker(1)

    # The scheduler dies too, before the killed tries are even found (their heartbeat
    # timeout is 30 s), so the restarted scheduler must find them and finish both orders.
    unfinished = {f: order(demo, f"day-{f}")["state"] for f in parts}
    deployment.kill_scheduler()
    time.sleep(5)
    deployment.restart_scheduler()

    finals: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 900
    while len(finals) < 2 and time.monotonic() < deadline:
        for facility in parts:
            o = order(demo, f"day-{facility}")
            if o["state"] in ("COMPLETED", "FAILED", "CLOSED"):
                finals[facility] = o
        time.sleep(3)
    assert len(finals) == 2, {f: order(demo, f"day-{f}")["progress"] for f in parts}
    return {
        "dags": dags,
        "finals": finals,
        "victims": victims,
        "killed": killed,
        "orbits": parts,
        "at_scheduler_kill": unfinished,
    }


def tries_of(deployment: CeleryDeployment, dag_id: str) -> list[dict[str, Any]]:
    """Every try of every task instance of the DAG's run (retried ones through /tries)."""
    (run,) = deployment.client.runs(dag_id)
    out = []
    for ti in deployment.client.task_instances(dag_id, run["dag_run_id"]):
        if ti["try_number"] > 1:
            path = (
                f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances/"
                f"{ti['task_id']}/{ti['map_index']}/tries"
            )
            out.extend(deployment.client.request("GET", path)["task_instances"])
        else:
            out.append(ti)
    return out


def test_both_halves_of_the_day_complete(story: dict[str, Any]) -> None:
    print(f"celery e2e: {story['seconds']:.0f} s, orbits {story['orbits']}")
    assert story["at_scheduler_kill"]["annex"] in ("RELEASED", "RUNNING")
    for facility, o in story["finals"].items():
        assert o["state"] == "COMPLETED", (facility, o["state_message"], o["progress"])
        assert o["progress"] == {"COMPLETED": o["job_steps"]}
        assert o["job_steps"] >= 3 * len(story["orbits"][facility])


def test_every_try_ran_on_a_worker_of_its_facility(story: dict[str, Any]) -> None:
    demo_deployment = story["deployment"]
    for facility, dag_id in story["dags"].items():
        tries = tries_of(demo_deployment, dag_id)
        hosts = {t["hostname"] for t in tries if t.get("hostname")}
        assert hosts == {FACILITY_WORKER[facility]}, (facility, hosts)
        assert {t["queue"] for t in tries} == {f"proseo-s5p-{facility}"}


def test_the_killed_tries_were_retried_on_the_restarted_worker(story: dict[str, Any]) -> None:
    demo_deployment = story["deployment"]
    assert story["killed"]
    dag_id = story["dags"]["annex"]
    (run,) = demo_deployment.client.runs(dag_id)
    now = {
        (t["task_id"], t["map_index"]): t
        for t in demo_deployment.client.task_instances(dag_id, run["dag_run_id"])
    }
    for victim in story["victims"]:
        ti = now[(victim["task_id"], victim["map_index"])]
        assert ti["state"] == "success" and ti["try_number"] > victim["try_number"], ti
        assert ti["hostname"] == "worker1"


def test_every_planned_output_is_exactly_one_product(story: dict[str, Any]) -> None:
    engine = make_engine(story["catalog"])
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT o.identifier, count(*), count(jo.product_id), count(DISTINCT jo.product_id) "
                "FROM job_step_output jo JOIN job_step s ON s.id = jo.job_step_id "
                "JOIN job j ON j.id = s.job_id JOIN processing_order o ON o.id = j.order_id "
                "GROUP BY o.identifier"
            )
        ).all()
        made = conn.execute(text("SELECT count(*) FROM product WHERE job_step_id IS NOT NULL")).scalar_one()
        files = conn.execute(
            text(
                "SELECT count(*), count(DISTINCT f.file_name) FROM product_file f "
                "JOIN product p ON p.id = f.product_id WHERE p.job_step_id IS NOT NULL"
            )
        ).one()
    engine.dispose()
    assert {r[0] for r in rows} == {"day-local", "day-annex"}
    for identifier, outputs, registered, distinct in rows:
        assert outputs == registered == distinct, identifier
    assert made == sum(r[1] for r in rows)  # no product made twice, none without its output
    assert files[0] == files[1] >= made  # no file registered twice
