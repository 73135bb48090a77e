"""Slurm end to end: orders on a Slurm facility under a real ``airflow standalone``.

One single-node Slurm (:class:`proseo.devtools.slurm.SlurmCluster`: real munged,
slurmctld and slurmd) and one standalone (scheduler, LocalExecutor, triggerer) serve
the module. The SKY mission is onboarded over REST with the Slurm facilities of
``tests_slurm.py``, three nights of inputs are ingested with the CLI, and three orders,
one night each (so none binds to another's outputs), are released over REST together
(the cancel is checked first: it needs only a running job, the others need their ends):

* ``night`` on ``cluster``: every step a batch job, the order COMPLETED, every planned
  output one product with its file;
* ``too-long`` on ``cluster_1min`` (time limit 1 min), its processor hanging
  (``proseo_test_mode=hang``): Slurm ends the job with TIMEOUT and the step fails with
  "Slurm time limit exceeded", as ``proseo order steps`` shows;
* ``stopped`` on ``cluster``, hanging too: ``proseo order cancel`` while its job runs
  and its task waits deferred in the triggerer ends the Slurm job (CANCELLED), fails
  the DAG run and the order (an order's cancel leads to FAILED, its steps "order
  cancelled").

This cluster has no accounting (no slurmdbd: ``sacct`` answers "accounting storage is
disabled"), so how a job ended is read where Slurm itself records it here:
``squeue --states=all`` (``MinJobAge``) and the ``jobcomp/filetxt`` log. A job is
found by its name, ``proseo-<mission>-<order>-<job step id>`` (the name the backend
gives it and cancels by), and the step's ``run_ref`` (REST, ``proseo order steps``)
must name that job.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from proseo.demo import REPO, Demo, proseo_cli
from proseo.devtools.generate import write_inputs
from proseo.devtools.slurm import SlurmCluster, slurm_available
from proseo.missions import load_mission
from tests_slurm import SLURM_FACILITIES

pytestmark = pytest.mark.e2e

DAY = datetime(2025, 3, 1, tzinfo=UTC)
HANG = {"proseo_test_mode": "hang"}


def _order(identifier: str, night: int, facility: str, classes: list[str], **extra: Any) -> dict[str, Any]:
    start = DAY + timedelta(days=night)
    return {
        "identifier": identifier,
        "requested_classes": classes,
        "start": start.isoformat(),
        "stop": (start + timedelta(days=1)).isoformat(),
        "facility": facility,
        **extra,
    }


ORDERS = {
    "night": _order("night", 0, "cluster", ["SRC_CAT"]),
    "too-long": _order("too-long", 1, "cluster_1min", ["CALEXP_G"], dynamic_parameters=HANG),
    "stopped": _order("stopped", 2, "cluster", ["CALEXP_G"], dynamic_parameters=HANG),
}


@dataclass
class SlurmDemo(Demo):
    """The demo's deployment with the Slurm cluster's client settings and no task retries
    (a timed-out job must fail its step, not run again)."""

    slurm: dict[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {
            **super().environment(),
            **self.slurm,
            "PROSEO_SLURM_SHARED": str(self.home / "shared"),
            "PROSEO_TASK_RETRIES": "0",
        }


@dataclass
class Deployment:
    demo: SlurmDemo
    cluster: SlurmCluster
    dag_ids: dict[str, str]
    released_at: float


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    if not slurm_available():
        pytest.fail("Slurm is not installed: make slurm  (or: bash tests/execution/install_slurm.sh)")
    saved = dict(os.environ)
    base = tmp_path_factory.mktemp("slurm-e2e")
    # The node declares more than this host has (nothing enforces it, task/none): the SKY
    # processors ask for up to 6 CPUs and 24Gi, and three orders run side by side.
    cluster = SlurmCluster(base / "slurm", cpus=16, memory_mb=96 * 1024, min_job_age_s=1800)
    demo = SlurmDemo(base / "demo", parallelism=4, slurm=cluster.env())
    try:
        cluster.start()
        demo.prepare()
        (demo.home / "shared").mkdir()
        demo.start_airflow()
        path = REPO / "mission_configs" / "sky.yaml"
        text = path.read_text().replace("facilities:\n", SLURM_FACILITIES, 1)
        demo.ok("POST", "/missions", json={"file_name": "sky.yaml", "text": text})
        mission = load_mission(path)
        write_inputs(mission, DAY, DAY + timedelta(days=3), demo.home / "inbox" / "SKY")
        proseo_cli("product", "ingest", "--mission", "SKY", str(demo.home / "inbox" / "SKY"))
        dag_ids = {}
        for name, body in ORDERS.items():
            made = demo.ok("POST", "/missions/SKY/orders?release=true", json=body)
            assert made["state"] in ("RELEASING", "RELEASED"), made
            dag_ids[name] = made["dag_id"]
        yield Deployment(demo, cluster, dag_ids, time.monotonic())
    finally:
        demo.stop()
        cluster.stop()
        os.environ.clear()
        os.environ.update(saved)


def _order_state(demo: Demo, identifier: str) -> dict[str, Any]:
    return demo.ok("GET", f"/missions/SKY/orders/{identifier}")


def _wait_order(demo: Demo, identifier: str, states: tuple[str, ...], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (order := _order_state(demo, identifier))["state"] not in states:
        assert time.monotonic() < deadline, f"{identifier} not {states} after {timeout:.0f} s: {order}"
        time.sleep(2)
    return order


def _steps(demo: Demo, identifier: str) -> list[dict[str, Any]]:
    page = demo.ok("GET", f"/missions/SKY/orders/{identifier}/job-steps", params={"limit": 100})
    return list(page["items"])


def _job_name(identifier: str, step_id: int) -> str:
    return f"proseo-SKY-{identifier}-{step_id}"


def _squeue(name: str) -> list[tuple[str, str]]:
    """(job id, state) of every job of that name the controller still knows, ended or not."""
    out = subprocess.run(
        ["squeue", "-h", "--states=all", f"--name={name}", "-o", "%i|%T"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [tuple(line.split("|", 1)) for line in out.split()]  # type: ignore[misc]


def _ended_jobs(cluster: SlurmCluster) -> dict[str, dict[str, str]]:
    """Slurm's own record of ended jobs (jobcomp/filetxt): job id -> its fields."""
    path = cluster.base / "jobcomp.log"
    lines = path.read_text().splitlines() if path.exists() else []
    records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines]
    return {r["JobId"]: r for r in records if "JobId" in r}


def _ended(cluster: SlurmCluster, job_id: str, timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while job_id not in (jobs := _ended_jobs(cluster)):
        assert time.monotonic() < deadline, f"Slurm job {job_id} not in jobcomp.log after {timeout:.0f} s"
        time.sleep(1)
    return jobs[job_id]


def _task_instances(demo: Demo, dag_id: str) -> list[dict[str, Any]]:
    assert demo.airflow is not None
    (run,) = demo.airflow.client.runs(dag_id)
    path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances"
    return list(demo.airflow.client.request("GET", path)["task_instances"])


def _wait_tasks(demo: Demo, dag_id: str, states: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (now := [t["state"] for t in _task_instances(demo, dag_id)]) != states:
        assert time.monotonic() < deadline, f"{dag_id}: task instances {now}, not {states} in {timeout:.0f} s"
        time.sleep(1)


def test_cancelling_a_running_order_cancels_its_slurm_job(deployment: Deployment) -> None:
    demo = deployment.demo
    assert demo.airflow is not None
    dag_id = deployment.dag_ids["stopped"]
    (step,) = _steps(demo, "stopped")
    name = _job_name("stopped", step["id"])
    deadline = time.monotonic() + 180
    while not (_squeue(name) and _squeue(name)[0][1] == "RUNNING" and _deferred(demo, dag_id)):
        assert time.monotonic() < deadline, (_squeue(name), _task_instances(demo, dag_id))
        time.sleep(1)
    ((job_id, _),) = _squeue(name)
    assert _order_state(demo, "stopped")["state"] == "RUNNING"
    # The step names its running job, as an operator would look it up (squeue -j, scancel).
    assert [s["run_ref"] for s in _steps(demo, "stopped")] == [f"slurm:{job_id}"]
    printed = proseo_cli("order", "cancel", "--mission", "SKY", "stopped", airflow=demo.airflow.url)
    assert "marked failed" in printed, printed
    # The Slurm job ends because of the cancel: Slurm records it CANCELLED.
    assert _ended(deployment.cluster, job_id, timeout=90)["JobState"] == "CANCELLED"
    deadline = time.monotonic() + 60  # COMPLETING while slurmd ends the job's processes
    while (queued := _squeue(name)) != [(job_id, "CANCELLED")]:
        assert time.monotonic() < deadline and queued == [(job_id, "COMPLETING")], queued
        time.sleep(1)
    assert [r["state"] for r in demo.airflow.client.runs(dag_id)] == ["failed"]
    _wait_tasks(demo, dag_id, ["failed"], timeout=60)
    order = _order_state(demo, "stopped")
    assert order["state"] == "FAILED" and order["history"][-1]["operation"] == "cancel", order
    ((after,),) = [[s for s in _steps(demo, "stopped") if s["id"] == step["id"]]]
    assert (after["state"], after["failure_reason"]) == ("FAILED", "order cancelled")


def test_a_sky_night_runs_every_step_as_a_slurm_batch_job(deployment: Deployment) -> None:
    demo = deployment.demo
    order = _wait_order(demo, "night", ("COMPLETED", "FAILED"), timeout=300)
    steps = _steps(demo, "night")
    assert order["state"] == "COMPLETED", (order["state_message"], [s["failure_reason"] for s in steps])
    assert order["progress"] == {"COMPLETED": order["job_steps"]} and len(steps) == order["job_steps"] == 5
    assert demo.airflow is not None
    # The order rolls up to COMPLETED when its last step registers, inside that step's task;
    # the run ends once the scheduler has heard of the task's success (CI saw it "running").
    run = demo.airflow.wait_for_run(deployment.dag_ids["night"], timeout=120, poll=1.0)
    assert run["state"] == "success" and len(demo.airflow.client.runs(deployment.dag_ids["night"])) == 1
    ended = _ended_jobs(deployment.cluster)
    for step in steps:
        # Exactly one batch job of this step, which Slurm records as COMPLETED ...
        ((job_id, state),) = _squeue(_job_name("night", step["id"]))
        assert state == "COMPLETED", (step["id"], job_id, state)
        assert step["run_ref"] == f"slurm:{job_id}"
        record = ended[job_id]
        assert (record["Name"], record["JobState"], record["ExitCode"]) == (
            _job_name("night", step["id"]),
            "COMPLETED",
            "0:0",
        )
        # ... whose directory on the shared directory holds the wrapper's manifest.
        manifest = demo.home / "shared" / "SKY" / "night" / str(step["id"]) / "try-1" / "manifest.json"
        assert json.loads(manifest.read_text())["status"] == "SUCCESS"
        # Every planned output is one product with its file, as catalogued.
        assert step["state"] == "COMPLETED" and step["planned_outputs"]
        for output in step["planned_outputs"]:
            assert output["product_id"] is not None, (step["id"], output)
            product = demo.ok("GET", f"/missions/SKY/products/{output['product_id']}")
            assert product["product_type"] == output["product_type"]
            (f,) = product["files"]
            assert f["url"].startswith(f"file://{demo.home}/data/SKY-cluster/")
            written = Path(f["url"].removeprefix("file://")).read_bytes()
            assert hashlib.sha256(written).hexdigest() == f["sha256"]


def test_a_job_past_its_slurm_time_limit_fails_its_step_with_that_reason(deployment: Deployment) -> None:
    demo = deployment.demo
    order = _wait_order(demo, "too-long", ("FAILED", "COMPLETED"), timeout=240)
    assert order["state"] == "FAILED", order
    printed = proseo_cli("order", "steps", "--mission", "SKY", "too-long", "--format", "json")
    (step,) = json.loads(printed)["items"]
    ((job_id, state),) = _squeue(_job_name("too-long", step["id"]))
    assert state == "TIMEOUT" and step["run_ref"] == f"slurm:{job_id}"
    assert _ended(deployment.cluster, job_id)["JobState"] == "TIMEOUT"
    assert step["state"] == "FAILED"
    assert step["failure_reason"].startswith(f"run: Slurm time limit exceeded (job {job_id}, limit 1 min)")
    # The task fails with the step (the order's roll-up may come a moment before the task ends).
    _wait_tasks(demo, deployment.dag_ids["too-long"], ["failed"], timeout=60)
    print(f"\nSlurm e2e: the three orders took {time.monotonic() - deployment.released_at:.0f} s")


def _deferred(demo: Demo, dag_id: str) -> bool:
    """Whether the order's one processing task waits deferred (its trigger in the triggerer)."""
    return [t["state"] for t in _task_instances(demo, dag_id)] == ["deferred"]
