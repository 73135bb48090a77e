"""A task that fails without a manifest (wrapper or pod died, killed, registration error)
still tells its job step why: the retry callback notes the failed try, the failure
callback marks the step FAILED and rolls the order up. Every factory task carries both."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from tests_execution_helpers import DAY, ingest, plan, steps_of

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import JobStep, ProcessingOrder
from proseo.execution import ExecutionError
from proseo.execution.local import JobStepOperator
from proseo.execution.steptask import start_step, step_failed_for_good, step_try_failed
from proseo.planning.blueprint import Blueprint
from proseo.planning.lifecycle import release_order


def _context(catalog: Catalog, step_id: int, try_number: int, error: BaseException | None) -> dict[str, Any]:
    task = JobStepOperator(task_id="level_0_run", job_step_id=step_id, mission="SKY", catalog_url=catalog.url)
    return {
        "task": task,
        "ti": SimpleNamespace(task_id="level_0_run", try_number=try_number),
        "exception": error,
    }


def _state(catalog: Catalog, step_id: int) -> tuple[str, str | None, str]:
    with catalog.session() as s:
        step = s.get(JobStep, step_id)
        assert step is not None
        order = s.scalar(select(ProcessingOrder).where(ProcessingOrder.identifier == "o1"))
        assert order is not None
        return step.state, step.failure_reason, order.state


def test_a_try_without_a_manifest_is_noted_then_fails_the_step(sky_cat: Catalog, tmp_path: Path) -> None:
    ingest(sky_cat, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    plan(sky_cat, "SKY", requested_classes=["CALEXP_G"], start=DAY, stop=DAY + timedelta(days=1))
    release_order(sky_cat, "SKY", "o1")
    (step_id,) = steps_of(sky_cat)["CALEXP_G"]
    with sky_cat.session() as s:
        start_step(s, step_id, task_id="level_0_run", try_number=1)
    died = ExecutionError("try 1: the wrapper exited 70 without a valid manifest", job_step_id=step_id)

    step_try_failed(_context(sky_cat, step_id, 1, died))
    state, reason, order = _state(sky_cat, step_id)
    assert (state, order) == ("RUNNING", "RUNNING")
    assert reason == (
        f"task level_0_run try 1 failed: ExecutionError: job step {step_id}: try 1: the wrapper "
        "exited 70 without a valid manifest; Airflow retries it"
    )

    step_failed_for_good(_context(sky_cat, step_id, 3, TimeoutError("killed after 600 s")))
    state, reason, order = _state(sky_cat, step_id)
    assert (state, order) == ("FAILED", "FAILED")
    assert reason == "task level_0_run try 3 failed: TimeoutError: killed after 600 s"

    # A step that already ended keeps its own reason (e.g. its FAILED manifest's).
    step_failed_for_good(_context(sky_cat, step_id, 4, None))
    assert _state(sky_cat, step_id)[1] == reason


def test_every_factory_task_carries_both_callbacks() -> None:
    from proseo.orchestration.factory import build_dag

    blueprint = Blueprint.model_validate(
        {
            "dag_id": "proseo__SKY__cb",
            "mission": "SKY",
            "order": "cb",
            "job_steps": 3,
            "pool": "proseo_SKY_local",
            "priority": 50,
            "backend": "local",
            "levels": [
                {"classes": ["CALEXP_G"], "steps": [1, 2], "waiting": [2]},
                {"classes": ["COADD_G"], "steps": [3], "waiting": []},
            ],
        }
    )
    dag = build_dag(blueprint)
    assert len(dag.tasks) == 4  # level 0: a run task, a wait+run group; level 1: a run task
    for task in dag.tasks:
        assert task.on_retry_callback == [step_try_failed], task.task_id
        assert task.on_failure_callback == [step_failed_for_good], task.task_id
