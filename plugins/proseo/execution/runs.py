"""Ending job steps' backend runs from outside their tasks, by the references they recorded.

A step's ``run_ref`` names what its backend started for the current try (``slurm:<job
id>``). While the task waits deferred, the trigger's ``on_kill`` ends the job when the
task is killed; but a triggerer that is down when an order is cancelled never runs it (the
trigger row is gone when it comes back), and the batch job would run on for nothing. So
when an order's DAG run ends failed, the run-ended listener also ends every run that a
failed step of the order still names (:func:`failed_step_runs`, :func:`cancel_runs`).
Cancelling a run that has already ended is harmless: Slurm answers that the job is done.

Importing this module imports no Airflow.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.model_order import Job, JobStep, StepState
from proseo.execution.errors import ExecutionError

log = logging.getLogger(__name__)

#: How a Slurm step names its job in ``run_ref``: ``slurm:<job id>`` (set by execution/slurm.py).
SLURM = "slurm:"


def failed_step_runs(session: Session, order_id: int) -> list[str]:
    """The run references of the order's FAILED steps, in step order."""
    rows = session.scalars(
        select(JobStep.run_ref)
        .join(Job, Job.id == JobStep.job_id)
        .where(
            Job.order_id == order_id, JobStep.state == StepState.FAILED.value, JobStep.run_ref.is_not(None)
        )
        .order_by(JobStep.id)
    )
    return [ref for ref in rows if ref]


def slurm_jobs(refs: Iterable[str]) -> list[str]:
    """The Slurm job ids among ``refs`` (other backends' references are left out)."""
    ids = {ref[len(SLURM) :] for ref in refs if ref.startswith(SLURM)}
    return sorted((i for i in ids if i.isdigit()), key=int)


def cancel_runs(refs: Iterable[str], *, order: str, timeout_s: float = 20.0) -> list[str]:
    """Ask the backends to end the runs named by ``refs``; the references asked about.

    One ``scancel`` for all of the order's Slurm jobs. Jobs already ended are no error
    (``scancel`` reports them and goes on); a missing or hanging ``scancel`` is an
    :class:`ExecutionError` naming the order and the jobs it could not end.
    """
    jobs = slurm_jobs(refs)
    if not jobs:
        return []
    try:
        done = subprocess.run(
            ["scancel", *jobs], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExecutionError(f"could not cancel Slurm job(s) {', '.join(jobs)}: {exc}", order=order) from None
    if done.returncode != 0:  # e.g. "Job has already finished": not an error here
        log.info("proseo: scancel %s for order %s: %s", " ".join(jobs), order, done.stderr.strip())
    return [SLURM + job for job in jobs]
