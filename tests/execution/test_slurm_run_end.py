"""An order's DAG run that ends failed ends the Slurm jobs its failed steps still name.

The trigger's ``on_kill`` cancels a job when Airflow cancels the trigger; with the
triggerer down at that moment nobody would. Here nothing runs the trigger at all (the
triggerer is down) while the order is cancelled in the catalogue, as the steering does,
and then the run-ended listener's function runs as it does when Airflow marks the run
failed: the real Slurm job is CANCELLED. Against the real single-node Slurm of
``slurm_cluster``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select
from test_slurm_backend import _context, _operator, _release, _squeue, _step, _submit

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import ProcessingOrder
from proseo.execution.errors import ExecutionError
from proseo.execution.runs import cancel_runs, slurm_jobs
from proseo.orchestration.listeners import finish_order_for_run
from proseo.planning import lifecycle


def _until(job: str, states: set[str], timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while (state := _squeue(job)) not in states and time.monotonic() < deadline:
        time.sleep(0.5)
    return state


def _dag_id(catalog: Catalog) -> str:
    with catalog.session() as s:
        dag_id = s.scalar(select(ProcessingOrder.dag_id).where(ProcessingOrder.identifier == "o1"))
    assert dag_id
    return dag_id


def test_a_cancel_with_the_triggerer_down_still_ends_the_job(
    slurm_sky: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROSEO_CATALOG_URL", slurm_sky.url)  # the listener's own Catalog()
    step = _release(slurm_sky, "cluster", proseo_test_mode="hang")
    job = _submit(_operator(slurm_sky, step), _context()).trigger.job_id
    assert _until(job, {"RUNNING"}) == "RUNNING"
    lifecycle.cancel_order(slurm_sky, "SKY", "o1", message="stop it")
    assert _squeue(job) == "RUNNING"  # the catalogue alone ends nothing
    assert finish_order_for_run(_dag_id(slurm_sky), "r1", "failed") == "FAILED"
    assert _until(job, {"CANCELLED"}, timeout_s=60) == "CANCELLED"
    assert _step(slurm_sky, step) == ("FAILED", "order cancelled")


def test_a_run_that_succeeded_cancels_nothing(slurm_sky: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a failed run ends jobs: a successful one has no failed step to end."""
    monkeypatch.setenv("PROSEO_CATALOG_URL", slurm_sky.url)
    step = _release(slurm_sky, "cluster", proseo_test_mode="hang")
    job = _submit(_operator(slurm_sky, step), _context()).trigger.job_id
    assert _until(job, {"RUNNING"}) == "RUNNING"
    lifecycle.cancel_order(slurm_sky, "SKY", "o1")
    finish_order_for_run(_dag_id(slurm_sky), "r1", "success")
    time.sleep(3)
    assert _squeue(job) == "RUNNING"
    assert cancel_runs([f"slurm:{job}"], order="SKY/o1") == [f"slurm:{job}"]
    assert _until(job, {"CANCELLED"}, timeout_s=60) == "CANCELLED"
    # a job that has ended already is no error
    assert cancel_runs([f"slurm:{job}"], order="SKY/o1") == [f"slurm:{job}"]


def test_only_slurm_references_are_cancelled() -> None:
    refs = ["slurm:12", "slurm:9", "slurm:12", "pod:abc", "slurm:", "slurm:7;x"]
    assert slurm_jobs(refs) == ["9", "12"]
    assert cancel_runs(["pod:abc"], order="S/o") == []


def test_a_missing_scancel_names_the_order_and_the_jobs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no scancel anywhere
    with pytest.raises(ExecutionError, match=r"SKY/o1: could not cancel Slurm job\(s\) 3, 41: "):
        cancel_runs(["slurm:41", "slurm:3"], order="SKY/o1")
