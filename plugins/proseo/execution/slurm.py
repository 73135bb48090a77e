"""The Slurm backend: every job step is one batch job; the task waits for it deferred.

With :mod:`proseo.execution.slurm_batch` (the job: directory, options, script, sbatch,
scancel) and :mod:`proseo.execution.slurm_trigger` (the wait), the only modules of
proseo that know Slurm. No Slurm library: the operator calls ``sbatch`` and
``scancel``, the trigger ``squeue`` and ``sacct`` (asyncio subprocesses in the
triggerer), all found on PATH and pointed at the cluster by the usual ``SLURM_CONF``
of the worker and triggerer.

A run, try ``n`` of a step, in ``<shared_dir>/<mission>/<order>/<job step id>/try-<n>/``
(the facility's ``slurm.shared_dir``, the same path on the workers and the compute nodes):

1. :func:`proseo.execution.steptask.begin`; ``spec.json`` and ``job.sh`` are written
   there; a job of an earlier try of the step still queued or running is cancelled
   (``scancel --name``: a lost worker cannot leave two runs writing the same outputs);
2. ``sbatch job.sh``: the script ``exec``s ``proseo-wrapper run spec.json --xcom
   manifest.json`` of this environment, with ``PROSEO_SCRATCH`` set to the facility's
   ``scratch_path`` (node-local; the wrapper's working directory goes there and is
   removed after a successful run). Options from the processor's tasks and the facility:
   ``--cpus-per-task`` (the tasks' cpu summed, rounded up), ``--mem`` (summed, MiB),
   ``--time`` (``slurm.time_limit``, else max_run_time plus the staging allowance, whole
   minutes), ``--partition``, ``--account``, ``--qos``; job name
   ``proseo-<mission>-<order>-<step>``. The wrapper's stdout/stderr go to
   ``wrapper.out`` / ``wrapper.log``. The job gets an allow-list of the worker's
   environment only (:func:`proseo.execution.slurm_batch.job_env`: no catalogue URL,
   Airflow settings or variables, database or interface passwords);
3. the task defers to :class:`SlurmJobTrigger`: ``squeue`` until the job leaves the
   queue's states; a job gone from ``squeue`` is complete only when ``sacct`` or the
   manifest on the shared directory says so (clusters without accounting answer
   nothing in ``sacct``); with neither after ``grace_polls`` more polls it is lost.
   The wait is bounded: a job pending for a reason that cannot clear, a job not ended
   by the deadline (time limit plus the facility's ``queue_timeout``) and a ``squeue``
   failing ``unknown_polls`` times in a row end it (the job cancelled); Airflow's own
   deferral timeout, a little later, is the backstop (:meth:`resume_execution`
   cancels the job by its name);
4. :meth:`JobStepSlurmOperator.execute_complete`: a job that Slurm ended (TIMEOUT,
   CANCELLED, OUT_OF_MEMORY, NODE_FAIL, ...) or the trigger gave up on fails the step
   with the reason, e.g. "Slurm time limit exceeded" or "the Slurm job can never start
   (job 7: pending for PartitionTimeLimit, ...)"; otherwise the manifest is read back
   and goes to :func:`proseo.execution.steptask.finish`.

``on_kill`` (operator, while submitting) and :meth:`SlurmJobTrigger.on_kill` (deferred,
when the task is killed) cancel the job; when the run ends failed, the run-ended listener
cancels it again by the step's ``run_ref`` (:mod:`proseo.execution.runs`), for a trigger
that a triggerer down at the time never ran.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR
from pydantic import ValidationError

from proseo.execution import steptask
from proseo.execution.errors import ExecutionError
from proseo.execution.jobspec import build_job_spec
from proseo.execution.runs import SLURM
from proseo.execution.slurm_batch import (
    cancel,
    cancel_named,
    job_dir,
    settings_of,
    submit,
    time_limit_min,
)
from proseo.execution.slurm_trigger import SlurmJobTrigger
from proseo.wrapper.spec import Manifest, Status

__all__ = ["JobStepSlurmOperator", "SlurmJobTrigger", "read_manifest"]

#: Ends that Slurm imposed: the step fails with this reason whatever the manifest says.
SLURM_ENDS = {
    "TIMEOUT": "Slurm time limit exceeded",
    "CANCELLED": "the Slurm job was cancelled",
    "OUT_OF_MEMORY": "the Slurm job ran out of memory",
    "NODE_FAIL": "the Slurm job's node failed",
    "BOOT_FAIL": "the Slurm job's node failed to boot",
    "PREEMPTED": "the Slurm job was preempted",
    "DEADLINE": "the Slurm job missed its deadline",
    "REVOKED": "the Slurm job was revoked",
}
#: Ends that the trigger imposed (it cancelled the job or lost Slurm): the step fails
#: with this reason and the trigger's detail (the pending reason, squeue's error).
TRIGGER_ENDS = {
    "UNSCHEDULABLE": "the Slurm job can never start",
    "WAIT_TIMEOUT": "the Slurm job did not end within its time limit plus the queue timeout",
    "UNREACHABLE": "Slurm could not be asked about the job",
}
#: Lines of the wrapper's log shown when a job fails.
TAIL_LINES = 20
#: Airflow's own deferral timeout comes this long after the trigger's deadline: it is
#: the backstop for a trigger that could not run, never the usual end.
DEFER_BACKSTOP_S = 900
#: The trigger sends its event no sooner than this after the deferral: Airflow could
#: otherwise fail a task whose job ended within seconds (slurm_trigger.py's module doc).
DEFER_SETTLE_S = 10.0


class JobStepSlurmOperator(BaseOperator):
    """The processor task of a job step on a Slurm facility (the factory maps it).

    Made with serialisable arguments only; ``poll_interval`` (seconds) overrides the
    facility's, ``wrapper`` the wrapper command (default: ``proseo-wrapper`` beside this
    interpreter, which the compute nodes must see at the same path).
    """

    backend = "slurm"
    template_fields: Sequence[str] = ("job_step_id",)
    ui_color = "#fdd0a2"

    def __init__(
        self,
        *,
        job_step_id: Any,
        mission: str,
        catalog_url: str | None = None,
        poll_interval: float | None = None,
        wrapper: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_step_id = job_step_id
        self.mission = mission
        self.catalog_url = catalog_url
        self.poll_interval = poll_interval
        self.wrapper = list(wrapper) if wrapper else None
        self._job_id: str | None = None

    def execute(self, context: Context) -> None:
        step_id, ti = int(self.job_step_id), context["ti"]
        catalog = steptask.catalog_for(self.catalog_url)
        ctx = steptask.begin(
            catalog, step_id, task_id=ti.task_id, try_number=ti.try_number, backend=self.backend
        )
        self._job_id = submit(ctx, ti.try_number, wrapper=self.wrapper, log=self.log)
        steptask.record_run_ref(catalog, step_id, f"{SLURM}{self._job_id}")
        directory = job_dir(ctx, ti.try_number)
        settings = settings_of(ctx)
        interval = self.poll_interval or settings.poll_interval.total_seconds()
        limit_min = time_limit_min(ctx)
        wait_s = limit_min * 60 + settings.queue_allowance.total_seconds()
        trigger = SlurmJobTrigger(
            self._job_id,
            str(directory / "manifest.json"),
            interval,
            time_limit_min=limit_min,
            deadline=time.time() + wait_s,
            not_before=time.time() + DEFER_SETTLE_S,
        )
        backstop = timedelta(seconds=wait_s + DEFER_BACKSTOP_S + 5 * interval)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Airflow failing the deferred task (its timeout, a crashed trigger) cancels the job
        first: nobody would wait for it any more."""
        if next_method == TRIGGER_FAIL_REPR:
            # Best effort: the failure that follows matters more than a cancel that failed.
            with suppress(Exception), steptask.catalog_for(self.catalog_url).session() as s:
                cancel_named(build_job_spec(s, int(self.job_step_id)))
        return super().resume_execution(next_method, next_kwargs, context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """The job ended: Slurm's own end fails the step with its reason; else the manifest."""
        step_id, ti = int(self.job_step_id), context["ti"]
        catalog = steptask.catalog_for(self.catalog_url)
        job, state = event["job_id"], event["state"]
        base = Path(event["manifest_path"]).parent
        self.log.info("job step %s: Slurm job %s ended %s (%s)", step_id, job, state, event["detail"])
        manifest = read_manifest(base / "manifest.json")
        if state in SLURM_ENDS or state in TRIGGER_ENDS:
            if state in TRIGGER_ENDS:
                reason = f"{TRIGGER_ENDS[state]} (job {job}: {event['detail']})"
            else:
                reason = f"{SLURM_ENDS[state]} (job {job}"
                reason += f", limit {event['time_limit_min']} min)" if state == "TIMEOUT" else ")"
            if manifest is not None and manifest.reason:
                reason += f"; the wrapper said: {manifest.reason}"
            self.log.error(
                "job step %s: %s; wrapper log tail:\n%s", step_id, reason, _tail(base / "wrapper.log")
            )
            failed = Manifest(
                job_step_id=step_id,
                status=Status.FAILED,
                stage="run",
                reason=reason,
                exit_code=manifest.exit_code if manifest else None,
                log_url=manifest.log_url if manifest else None,
            )
            raise steptask.manifest_failure(catalog, step_id, failed, ti)
        if manifest is None:
            raise ExecutionError(
                f"Slurm job {job} ended {state} ({event['source']}: {event['detail']}) without a manifest "
                f"in {base}; wrapper log tail:\n{_tail(base / 'wrapper.log')}",
                job_step_id=step_id,
            )
        if str(manifest.job_step_id) != str(step_id):
            raise ExecutionError(
                f"the manifest in {base} is for job step {manifest.job_step_id}", job_step_id=step_id
            )
        return steptask.finish(
            catalog, step_id, manifest, mission=self.mission, context=context, log=self.log
        )

    def on_kill(self) -> None:
        if self._job_id is not None:
            cancel(self._job_id)


def read_manifest(path: Path) -> Manifest | None:
    """The wrapper's manifest, or None when it is missing or unreadable (a killed wrapper)."""
    try:
        return Manifest.model_validate_json(path.read_bytes())
    except (OSError, ValidationError):
        return None


def _tail(path: Path) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-TAIL_LINES:])
    except OSError:
        return f"({path} is not readable)"
