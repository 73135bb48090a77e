"""The Slurm backend never waits for good and hands a job none of the worker's secrets.

Against the real single-node Slurm of ``slurm_cluster`` (``slurm_sky`` in conftest.py, the
helpers in test_slurm_backend.py): a job that can never start, a job past its wait
deadline, a ``squeue`` that keeps failing, Airflow failing the deferred task, and the
job's environment.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowException, TaskDeferralTimeout
from test_slurm_backend import (
    _context,
    _operator,
    _release,
    _squeue,
    _step,
    _submit,
    _wait,
)

from proseo.catalog.db import Catalog
from proseo.devtools.slurm import SlurmCluster
from proseo.execution.slurm_trigger import SlurmJobTrigger, permanent_reason


def _running(job: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while _squeue(job) != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _squeue(job) == "RUNNING"


def test_which_pending_reasons_are_permanent() -> None:
    permanent = [
        "PartitionTimeLimit",
        "BadConstraints",
        "PartitionConfig",
        "QOSMaxCpuPerJobLimit",
        "AssocMaxWallDurationPerJobLimit",
    ]
    passing = [
        "Resources",
        "Priority",
        "ReqNodeNotAvail",
        "AssocMaxJobsLimit",
        "JobHeldAdmin",
        "QOSGrpCpuLimit",
    ]
    assert [r for r in permanent if permanent_reason(r)] == permanent
    assert [r for r in passing if permanent_reason(r)] == []


def test_a_job_that_can_never_start_is_cancelled_and_fails_the_step_naming_why(slurm_sky: Catalog) -> None:
    """The step's default time limit (190 min) exceeds the ``short`` partition's 1 min:
    Slurm queues the job (EnforcePartLimits=NO) pending for PartitionTimeLimit."""
    step = _release(slurm_sky, "cluster_short")
    op, context = _operator(slurm_sky, step), _context()
    deferred = _submit(op, context)
    wait_s = 190 * 60 + 2 * 3600  # the time limit plus the facility's queue_timeout
    assert deferred.trigger.deadline == pytest.approx(time.time() + wait_s, abs=60)
    assert deferred.timeout is not None and deferred.timeout.total_seconds() > wait_s
    event = _wait(deferred.trigger, timeout_s=120)
    assert event["state"] == "UNSCHEDULABLE" and "PartitionTimeLimit" in event["detail"], event
    assert _squeue(event["job_id"]) == "CANCELLED"
    with pytest.raises(AirflowException, match="can never start"):
        op.execute_complete(context, event)
    state, reason = _step(slurm_sky, step)
    assert state == "FAILED"
    assert reason == (
        f"run: the Slurm job can never start (job {event['job_id']}: "
        "pending for PartitionTimeLimit, which cannot clear)"
    )


def test_a_job_asking_for_more_cpus_than_any_node_has_is_given_up(
    slurm_cluster: SlurmCluster, tmp_path: Path
) -> None:
    """Slurm queues it (PartitionConfig) instead of refusing it; the trigger cancels it."""
    cpus = f"--cpus-per-task={slurm_cluster.cpus * 4}"
    submitted = subprocess.run(
        ["sbatch", "--parsable", cpus, f"--chdir={tmp_path}", "--wrap=true"],
        capture_output=True,
        text=True,
        check=True,
    )
    job = submitted.stdout.strip()
    event = _wait(SlurmJobTrigger(job, str(tmp_path / "manifest.json"), poll_interval=1.0), timeout_s=120)
    assert (event["state"], event["detail"]) == (
        "UNSCHEDULABLE",
        "pending for PartitionConfig, which cannot clear",
    ), event
    assert _squeue(job) == "CANCELLED"


def test_a_job_past_its_wait_deadline_is_cancelled_and_fails_the_step(slurm_sky: Catalog) -> None:
    step = _release(slurm_sky, "cluster", proseo_test_mode="hang")
    op, context = _operator(slurm_sky, step), _context()
    deferred = _submit(op, context)
    job = deferred.trigger.job_id
    _running(job)
    trigger = SlurmJobTrigger(**{**deferred.trigger.serialize()[1], "deadline": time.time()})
    event = _wait(trigger, timeout_s=120)
    assert event["state"] == "WAIT_TIMEOUT" and event["detail"].startswith("still RUNNING"), event
    assert _wait(deferred.trigger)["state"] == "CANCELLED"
    with pytest.raises(AirflowException, match="queue timeout"):
        op.execute_complete(context, event)
    state, reason = _step(slurm_sky, step)
    assert state == "FAILED" and reason is not None
    assert reason.startswith(
        "run: the Slurm job did not end within its time limit plus the queue timeout "
        f"(job {job}: still RUNNING"
    )


def test_airflow_failing_the_deferred_task_cancels_its_job(slurm_sky: Catalog) -> None:
    """Airflow's deferral timeout (the backstop) resumes the task with ``__fail__``."""
    step = _release(slurm_sky, "cluster", proseo_test_mode="hang")
    op, context = _operator(slurm_sky, step), _context()
    deferred = _submit(op, context)
    _running(deferred.trigger.job_id)
    fresh = _operator(slurm_sky, step)  # a resumed task is a new operator: no job id
    with pytest.raises(TaskDeferralTimeout):
        fresh.resume_execution(TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context)
    assert _wait(deferred.trigger)["state"] == "CANCELLED"


def test_a_failing_squeue_ends_the_wait_with_its_error(
    slurm_cluster: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    squeue = fake / "squeue"
    error = "slurm_load_jobs error: Unable to contact slurm controller"
    squeue.write_text(f"#!/bin/sh\necho '{error}' >&2\nexit 1\n")
    squeue.chmod(squeue.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    trigger = SlurmJobTrigger("424242", str(tmp_path / "manifest.json"), poll_interval=0.05, unknown_polls=3)
    event = _wait(trigger, timeout_s=60)
    assert (event["state"], event["source"]) == ("UNREACHABLE", "squeue"), event
    assert event["detail"] == f"squeue failed 3 times in a row: (1) {error}"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))  # no squeue at all
    event = _wait(SlurmJobTrigger("424242", str(tmp_path / "m.json"), poll_interval=0.05, unknown_polls=2))
    assert event["state"] == "UNREACHABLE" and "No such file or directory: 'squeue'" in event["detail"], event


def test_the_job_inherits_none_of_the_workers_secrets(
    slurm_sky: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = {
        "AUX_PASSWORD": "s1",
        "PROSEO_CADIP_PASSWORD": "s2",
        "PROSEO_CATALOG_URL": "postgresql://u:s3@db/x",
        "AIRFLOW_VAR_TOKEN": "s4",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql://u:s5@db/a",
        "PGPASSWORD": "s6",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "storage-key")  # S3 storage needs it
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    dump = tmp_path / "dump_env"  # stands in for the wrapper: writes its environment
    dump.write_text('#!/bin/sh\nenv > "$(dirname "$2")/env.txt"\n')
    dump.chmod(dump.stat().st_mode | stat.S_IXUSR)
    step = _release(slurm_sky, "cluster")
    op = _operator(slurm_sky, step)
    op.wrapper = [str(dump)]
    deferred = _submit(op, _context())
    event = _wait(deferred.trigger, timeout_s=120)
    assert event["state"] == "COMPLETED", event
    lines = (Path(deferred.trigger.manifest_path).parent / "env.txt").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert not set(secrets) & set(env), sorted(env)
    assert not any(v in line for v in secrets.values() for line in lines)
    assert env["AWS_ACCESS_KEY_ID"] == "storage-key" and env["LC_ALL"] == "C.UTF-8"
    assert "PATH" in env and env["PROSEO_SCRATCH"].endswith("SKY-cluster")
    assert "SLURM_JOB_ID" in env
