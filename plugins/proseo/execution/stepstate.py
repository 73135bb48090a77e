"""The catalogue side of running one job step, shared by every processor task (no Airflow).

Both :class:`proseo.orchestration.operators.JobStepOperator` (local facilities) and
:class:`proseo.execution.kubernetes.JobStepPodOperator` (Kubernetes facilities) go
through the same steps around the run:

1. :func:`failed_upstream`: an upstream job step failed -> :func:`fail_step` (for good);
2. :func:`start_step`: every upstream step completed (else :class:`UpstreamPending`),
   build the step's :class:`~proseo.execution.jobspec.StepContext`, mark it RUNNING
   and roll the order up (RELEASED -> RUNNING with the first step);
3. after the run, :func:`fail_with_manifest` (a FAILED manifest) or
   :func:`complete_step` (register the manifest, keep its log URL, roll up);
4. when the task fails without either (the wrapper or pod died, registration raised,
   the task was killed), :func:`record_task_failure` from the task's failure and retry
   callbacks, so a step never shows RUNNING for a task that is no longer running.

The callers own the sessions (one transaction each) and translate the exceptions
into Airflow's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from proseo.catalog.db import utcnow
from proseo.catalog.model_order import Job, JobStep, StepState
from proseo.catalog.register import Registered, RunIdentity, register_manifest
from proseo.execution.jobspec import StepContext, build_job_spec
from proseo.planning.lifecycle import rollup_order
from proseo.planning.stepinputs import read_step_inputs, upstream_steps
from proseo.wrapper.spec import Manifest


class UpstreamPending(Exception):
    """An upstream job step has not completed (yet): a retry may help."""


def upstream(session: Any, step_id: int) -> list[tuple[int, str]]:
    """(job step id, its state) of every step whose outputs ``step_id``'s inputs are bound to.

    Read the one way (:func:`proseo.planning.stepinputs.read_step_inputs`): upstream steps
    of the order and steps of other orders that make a product this one waits for.
    Bindings given up after an input timeout (RUN_WITH_AVAILABLE: the step runs with
    what exists) no longer count.
    """
    return sorted(upstream_steps(read_step_inputs(session, [step_id])[step_id]).items())


def failed_upstream(session: Any, step_id: int) -> list[int]:
    return [u for u, state in upstream(session, step_id) if state == StepState.FAILED.value]


def check_upstream(session: Any, step_id: int) -> None:
    pending = [u for u, state in upstream(session, step_id) if state != StepState.COMPLETED.value]
    if pending:
        raise UpstreamPending(f"job step {step_id}: upstream job step(s) {pending} have not completed")


def _step(session: Any, step_id: int) -> JobStep:
    step = session.get(JobStep, step_id)
    assert step is not None, f"job step {step_id} does not exist"
    return step


def _rollup(session: Any, step: JobStep) -> None:
    order_id = session.scalar(select(Job.order_id).where(Job.id == step.job_id))
    if order_id is not None:
        rollup_order(session, order_id)


def fail_step(
    session: Any,
    step_id: int,
    reason: str,
    *,
    exit_code: int | None = None,
    log_url: str | None = None,
) -> None:
    """Mark the step FAILED (with why) and roll its order up."""
    step = _step(session, step_id)
    step.state = StepState.FAILED.value
    step.failure_reason = reason
    if exit_code is not None:
        step.exit_code = exit_code
    if log_url is not None:
        step.log_url = log_url
    session.flush()
    _rollup(session, step)


def start_step(session: Any, step_id: int, *, task_id: str | None, try_number: int) -> StepContext:
    """Check the upstream steps, build the StepContext, mark the step RUNNING, roll up."""
    check_upstream(session, step_id)
    ctx = build_job_spec(session, step_id, try_number=try_number)
    step = _step(session, step_id)
    step.state = StepState.RUNNING.value
    step.started_at = utcnow()
    step.task_id = task_id
    step.try_number = try_number
    step.failure_reason = None
    session.flush()
    rollup_order(session, ctx.order_id)  # RELEASED -> RUNNING with the first step
    return ctx


def failure_text(step_id: int, manifest: Manifest) -> str:
    return f"job step {step_id} failed at {manifest.stage}: {manifest.reason} (log: {manifest.log_url})"


def fail_with_manifest(session: Any, step_id: int, manifest: Manifest) -> str:
    """Record a FAILED manifest on its step; returns the message to raise with."""
    step = _step(session, step_id)
    step.state = StepState.FAILED.value
    step.exit_code = manifest.exit_code
    step.failure_reason = f"{manifest.stage}: {manifest.reason}"
    step.log_url = manifest.log_url
    session.flush()
    _rollup(session, step)
    return failure_text(step_id, manifest)


def complete_step(session: Any, step_id: int, manifest: Manifest, run: RunIdentity) -> Registered:
    """Register the manifest (idempotent; the step becomes COMPLETED) and roll the order up."""
    registered = register_manifest(session, step_id, manifest, run=run)
    step = _step(session, step_id)
    step.log_url = manifest.log_url
    session.flush()
    _rollup(session, step)  # COMPLETED with the last step
    return registered


def record_task_failure(session: Any, step_id: int, reason: str, *, final: bool) -> None:
    """A try of the step's task failed: say why on the step; FAILED (rolled up) if ``final``.

    A step that already ended (COMPLETED, or FAILED with its manifest's reason) is left
    as it is.
    """
    step = _step(session, step_id)
    if step.state in (StepState.COMPLETED.value, StepState.FAILED.value):
        return
    if final:
        fail_step(session, step_id, reason)
    else:
        step.failure_reason = f"{reason} (Airflow retries it)"
        session.flush()
