"""The Slurm backend against a real single-node Slurm (Debian's slurmctld and slurmd).

The cluster is started once per session (``slurm_cluster`` in conftest.py). Each case
plans a released SKY order on a Slurm facility and drives ``JobStepSlurmOperator`` as
Airflow does: ``execute`` submits the batch job and defers; the trigger then runs with
asyncio until its event, and ``execute_complete`` gets that event. The job runs the real
``proseo-wrapper`` with the real sample processor.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from airflow.triggers.base import TriggerEvent
from sqlalchemy import select
from tests_execution_helpers import DAY, steps_of

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import JobStep
from proseo.catalog.model_product import Product
from proseo.devtools.slurm import SlurmCluster
from proseo.execution import build_job_spec
from proseo.execution.backends import operator_class
from proseo.execution.slurm import JobStepSlurmOperator
from proseo.execution.slurm_batch import batch_script, sbatch_options
from proseo.execution.slurm_trigger import SlurmJobTrigger
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

TASK = "calib_run"


def _release(catalog: Catalog, facility: str, **params: Any) -> int:
    """A released order of one CALEXP_G step on ``facility``; the step's id."""
    spec = OrderSpec(
        identifier="o1",
        requested_classes=["CALEXP_G"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        facility=facility,
        dynamic_parameters=params,
    )
    with catalog.session() as s:
        orders.create_order(s, "SKY", spec)
    lifecycle.approve_order(catalog, "SKY", "o1")
    lifecycle.plan_order(catalog, "SKY", "o1")
    lifecycle.release_order(catalog, "SKY", "o1")
    (step,) = steps_of(catalog)["CALEXP_G"]
    return step


def _context(try_number: int = 1, max_tries: int = 0) -> dict[str, Any]:
    ti = SimpleNamespace(
        task_id=TASK,
        dag_id="proseo__SKY__o1",
        run_id="r1",
        map_index=0,
        try_number=try_number,
        max_tries=max_tries,
    )
    return {"ti": ti, "task": None, "outlet_events": defaultdict(SimpleNamespace)}


def _operator(catalog: Catalog, step: int) -> JobStepSlurmOperator:
    return JobStepSlurmOperator(task_id=TASK, job_step_id=step, mission="SKY", catalog_url=catalog.url)


def _submit(op: JobStepSlurmOperator, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    return info.value


async def _first_event(trigger: SlurmJobTrigger) -> TriggerEvent:
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


def _wait(trigger: Any, timeout_s: float = 600) -> dict[str, Any]:
    return asyncio.run(asyncio.wait_for(_first_event(trigger), timeout_s)).payload


def _step(catalog: Catalog, step: int) -> tuple[str, str | None]:
    with catalog.session() as s:
        js = s.get(JobStep, step)
        return js.state, js.failure_reason


def _squeue(job_id: str) -> str:
    return subprocess.run(
        ["squeue", "-h", "--states=all", "-j", job_id, "-o", "%T"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_the_facility_picks_the_slurm_operator() -> None:
    assert operator_class("slurm", order="o1", facility="cluster") is JobStepSlurmOperator


def test_options_come_from_the_tasks_and_the_facility(slurm_sky: Catalog) -> None:
    step = _release(slurm_sky, "cluster")
    with slurm_sky.session() as s:
        ctx = build_job_spec(s, step)
    options = sbatch_options(ctx, Path("/shared/x"))
    # CALIB: one task of 2 cpu and 6Gi; 3 h max run time plus the 600 s staging allowance.
    assert "--cpus-per-task=2" in options and "--mem=6144M" in options
    assert "--time=190" in options and "--partition=debug" in options
    assert f"--job-name=proseo-SKY-o1-{step}" in options
    assert not any(o.startswith("--account") for o in options)
    script = batch_script(ctx, Path("/shared/x"), ["/venv/bin/proseo-wrapper"])
    assert script.splitlines()[-1].startswith(
        "exec /venv/bin/proseo-wrapper run /shared/x/spec.json --xcom /shared/x/manifest.json"
    )


def test_trigger_serialises_to_its_arguments() -> None:
    trigger = SlurmJobTrigger(
        "17", "/shared/try-1/manifest.json", 5.0, grace_polls=2, time_limit_min=9, deadline=1.5e9
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "proseo.execution.slurm_trigger.SlurmJobTrigger"
    again = SlurmJobTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs == {
        "job_id": "17",
        "manifest_path": "/shared/try-1/manifest.json",
        "poll_interval": 5.0,
        "grace_polls": 2,
        "time_limit_min": 9,
        "deadline": 1.5e9,
        "unknown_polls": 10,
        "not_before": None,
    }


def test_a_step_runs_as_a_batch_job_and_registers_its_outputs(
    slurm_sky: Catalog, data_dirs: dict[str, Path]
) -> None:
    step = _release(slurm_sky, "cluster")
    op, context = _operator(slurm_sky, step), _context()
    deferred = _submit(op, context)
    assert _step(slurm_sky, step)[0] == "RUNNING"
    trigger = deferred.trigger
    assert isinstance(trigger, SlurmJobTrigger) and deferred.method_name == "execute_complete"
    with slurm_sky.session() as s:  # the operator can look the running job up from the step
        assert s.get(JobStep, step).run_ref == f"slurm:{trigger.job_id}"
    event = _wait(trigger)
    assert (event["state"], event["source"]) == ("COMPLETED", "squeue"), event
    result = op.execute_complete(context, event)
    assert result["status"] == "SUCCESS" and len(result["product_ids"]) == 1
    assert _step(slurm_sky, step) == ("COMPLETED", None)
    assert not deferred.kwargs  # the event carries all (dag.test() hands over only the event)
    directory = Path(trigger.manifest_path).parent
    assert directory.parent.name == str(step) and directory.name == "try-1"
    with slurm_sky.session() as s:
        (product,) = s.scalars(select(Product).where(Product.id.in_(result["product_ids"])))
        (f,) = product.files
    written = Path(f.storage_url.removeprefix("file://")).read_bytes()  # what the batch job wrote
    assert f.storage_url.startswith(f"file://{data_dirs['data']}/SKY-cluster/CALEXP_G/")
    assert hashlib.sha256(written).hexdigest() == f.sha256
    (event_extra,) = context["outlet_events"].values()
    assert event_extra.extra == {"job_step_id": step, "product_ids": result["product_ids"]}


def test_a_job_past_its_time_limit_fails_the_step_with_that_reason(slurm_sky: Catalog) -> None:
    step = _release(slurm_sky, "cluster_1min", proseo_test_mode="hang")
    op, context = _operator(slurm_sky, step), _context()
    deferred = _submit(op, context)
    event = _wait(deferred.trigger)
    assert event["state"] == "TIMEOUT", event
    with pytest.raises(AirflowException, match="Slurm time limit exceeded"):
        op.execute_complete(context, event)
    state, reason = _step(slurm_sky, step)
    assert state == "FAILED"
    assert reason is not None and reason.startswith(
        f"run: Slurm time limit exceeded (job {event['job_id']}, limit 1 min)"
    )


def test_killing_the_task_cancels_the_job(slurm_sky: Catalog) -> None:
    step = _release(slurm_sky, "cluster", proseo_test_mode="hang")
    op = _operator(slurm_sky, step)
    deferred = _submit(op, _context())
    job = deferred.trigger.job_id
    deadline = time.monotonic() + 120
    while _squeue(job) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _squeue(job) == "RUNNING"
    asyncio.run(deferred.trigger.on_kill())  # the task killed while deferred
    event = _wait(deferred.trigger)
    assert event["state"] == "CANCELLED", event
    # ... and while the operator itself runs (between sbatch and defer): its on_kill.
    second = _submit(op, _context(try_number=2))
    with slurm_sky.session() as s:  # the new try's job, not the first one's
        assert s.get(JobStep, step).run_ref == f"slurm:{second.trigger.job_id}" != f"slurm:{job}"
    op.on_kill()
    assert _wait(second.trigger)["state"] == "CANCELLED"


def test_a_failed_run_fails_the_step_with_the_processors_reason(slurm_sky: Catalog) -> None:
    step = _release(slurm_sky, "cluster", proseo_test_mode="fail")
    op, context = _operator(slurm_sky, step), _context()
    deferred = _submit(op, context)
    event = _wait(deferred.trigger)
    assert event["state"] == "FAILED", event  # the wrapper exits 1 with a FAILED manifest
    with pytest.raises(AirflowException, match="failed at run"):
        op.execute_complete(context, event)
    state, reason = _step(slurm_sky, step)
    assert (state, reason) == ("FAILED", "run: the processor failed with exit code 130")


def test_a_job_gone_from_squeue_ends_by_its_manifest_or_is_lost(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """This cluster has no accounting (sacct answers nothing), so a job the controller
    has forgotten (past MinJobAge; here an id it never had) is known only by its
    manifest; without one it is reported lost, never completed."""
    unknown = "999999"
    accounting = subprocess.run(["sacct", "-n", "-j", unknown], capture_output=True, text=True)
    assert "accounting storage is disabled" in accounting.stderr
    manifest = tmp_path / "manifest.json"
    lost = _wait(SlurmJobTrigger(unknown, str(manifest), poll_interval=0.1, grace_polls=2))
    assert (lost["state"], lost["source"]) == ("UNKNOWN", "lost"), lost
    manifest.write_text('{"job_step_id": 1, "status": "SUCCESS"}')
    found = _wait(SlurmJobTrigger(unknown, str(manifest), poll_interval=0.1))
    assert (found["state"], found["source"]) == ("UNKNOWN", "manifest"), found
    # An event never leaves before not_before (Airflow's race with a fast trigger).
    started = time.monotonic()
    held = SlurmJobTrigger(unknown, str(manifest), poll_interval=0.1, not_before=time.time() + 1.5)
    assert _wait(held)["source"] == "manifest"
    assert time.monotonic() - started >= 1.4
