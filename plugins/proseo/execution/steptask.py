"""The processor task of a job step, whatever the backend: everything around the run.

Every backend operator (:mod:`proseo.execution.local`, :mod:`proseo.execution.kubernetes`)
is the same task with a different middle:

1. :func:`begin`: an upstream step FAILED -> this step fails for good
   (``AirflowFailException``; no retry can help, the order rolls up); an upstream step
   not COMPLETED yet -> ``AirflowException`` (Airflow retries; nothing changed);
   otherwise the step's :class:`~proseo.execution.jobspec.StepContext` is built, the
   step goes RUNNING and the order rolls up (RELEASED -> RUNNING with the first step);
2. the backend runs the context and gets the wrapper's :class:`Manifest`;
3. :func:`finish`: registers the manifest (products, provenance, lineage: COMPLETED),
   emits one Asset event per product class (``proseo://<mission>/<type>``) and rolls the
   order up. A FAILED manifest is noted on the step and fails the task; the step becomes
   FAILED only on the task's final try (or when no retry can help), otherwise it stays
   RUNNING with "try n failed: ...; Airflow retries it", so the order never rolls up to
   FAILED while a retry is still coming;
4. the factory gives every task :func:`step_try_failed` / :func:`step_failed_for_good` as
   retry / failure callbacks: what a task cannot record itself (the wrapper or pod died
   without a manifest, registration raised, a kill or timeout) still reaches its step.

Every write of a step's state goes through :mod:`proseo.planning.step_states`.
Functions taking a ``session`` work in the caller's transaction; the others open theirs.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Asset, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.model_order import Job, JobStep, StepState
from proseo.catalog.register import Registered, RunIdentity, register_manifest
from proseo.execution.jobspec import StepContext, build_job_spec
from proseo.planning.lifecycle import rollup_order
from proseo.planning.step_states import FINAL_STEP_STATES, IllegalStepTransition, StepOp, move_step
from proseo.planning.stepinputs import read_step_inputs, upstream_steps
from proseo.wrapper.spec import Manifest, Status

log = logging.getLogger(__name__)

RETRIED = "Airflow retries it"
MAX_REASON = 4000


class UpstreamPending(Exception):
    """An upstream job step has not completed (yet): a retry may help."""


# --- the catalogue side ------------------------------------------------------------------


def upstream(session: Any, step_id: int) -> list[tuple[int, str]]:
    """(job step id, its state) of every step whose outputs ``step_id``'s inputs are bound to.

    Read the one way (:func:`proseo.planning.stepinputs.read_step_inputs`): upstream steps
    of the order and steps of other orders that make a product this one waits for.
    Bindings given up after an input timeout (RUN_WITH_AVAILABLE: the step runs with
    what exists) no longer count.
    """
    return sorted(upstream_steps(read_step_inputs(session, [step_id], names=False)[step_id]).items())


def failed_upstream(session: Any, step_id: int) -> list[int]:
    return [u for u, state in upstream(session, step_id) if state == StepState.FAILED.value]


def check_upstream(session: Any, step_id: int) -> None:
    pending = [u for u, state in upstream(session, step_id) if state != StepState.COMPLETED.value]
    if pending:
        raise UpstreamPending(f"job step {step_id}: upstream job step(s) {pending} have not completed")


def _step(session: Session, step_id: int) -> JobStep:
    step = session.get(JobStep, step_id)
    assert step is not None, f"job step {step_id} does not exist"
    return step


def _rollup(session: Session, step: JobStep) -> None:
    order_id = session.scalar(select(Job.order_id).where(Job.id == step.job_id))
    if order_id is not None:
        rollup_order(session, order_id)


def start_step(
    session: Session, step_id: int, *, task_id: str | None, try_number: int, backend: str | None = None
) -> StepContext:
    """Check the upstream steps, build the StepContext, mark the step RUNNING, roll up.

    ``backend``: the backend of the calling operator; a facility of another backend is
    refused for good (nothing is changed then).
    """
    check_upstream(session, step_id)
    ctx = build_job_spec(session, step_id, try_number=try_number)
    if backend is not None and ctx.backend != backend:
        raise AirflowFailException(
            f"{ctx.mission}/{ctx.order_identifier} job step {step_id}: facility {ctx.facility} uses "
            f"backend {ctx.backend!r}, this task runs {backend!r} facilities (the order's DAG is stale)"
        )
    step = _step(session, step_id)
    # A retry starts a RUNNING step again: the note on the failed try stays until it ends.
    move_step(step, StepOp.START, keep_reason=step.state == StepState.RUNNING.value)
    step.started_at = utcnow()
    step.task_id = task_id
    step.try_number = try_number
    step.run_ref = None  # the new try has submitted nothing yet
    session.flush()
    rollup_order(session, ctx.order_id)
    return ctx


def record_run_ref(catalog: Catalog, step_id: int, ref: str) -> None:
    """The backend's name for this try's run (``slurm:<job id>``), for whoever looks it up."""
    with catalog.session() as session:
        _step(session, step_id).run_ref = ref[:200]


def fail_step(
    session: Session, step_id: int, reason: str, *, exit_code: int | None = None, log_url: str | None = None
) -> None:
    """Mark the step FAILED for good (with why) and roll its order up."""
    step = _step(session, step_id)
    move_step(step, StepOp.FAIL, reason=reason[:MAX_REASON])
    if exit_code is not None:
        step.exit_code = exit_code
    if log_url is not None:
        step.log_url = log_url
    session.flush()
    _rollup(session, step)


def failure_text(step_id: int, manifest: Manifest) -> str:
    return f"job step {step_id} failed at {manifest.stage}: {manifest.reason} (log: {manifest.log_url})"


def record_failed_manifest(
    session: Session, step_id: int, manifest: Manifest, *, try_number: int, final: bool
) -> str:
    """Note a FAILED manifest on its step: FAILED if ``final``, else a note on the RUNNING
    step. A step that already ended is left as it is. Returns the message to fail with."""
    step = _step(session, step_id)
    if step.state in FINAL_STEP_STATES:
        return failure_text(step_id, manifest)
    step.exit_code = manifest.exit_code
    step.log_url = manifest.log_url or step.log_url
    what = f"{manifest.stage}: {manifest.reason}"
    if final:
        fail_step(session, step_id, what)
    else:
        step.failure_reason = f"try {try_number} failed: {what}; {RETRIED}"[:MAX_REASON]
        session.flush()
    return failure_text(step_id, manifest)


def complete_step(session: Session, step_id: int, manifest: Manifest, run: RunIdentity) -> Registered:
    """Register the manifest (idempotent; the step becomes COMPLETED) and roll the order up."""
    registered = register_manifest(session, step_id, manifest, run=run)
    step = _step(session, step_id)
    step.log_url = manifest.log_url
    session.flush()
    _rollup(session, step)  # COMPLETED with the last step
    return registered


def record_task_failure(session: Session, step_id: int, reason: str, *, try_number: int, final: bool) -> None:
    """A try of the step's task failed: FAILED (rolled up) if ``final``, else a note saying
    which try failed. A step that already ended keeps its state and its own reason, and a
    note the task itself made on this try (its manifest's reason) is kept too."""
    step = _step(session, step_id)
    if step.state in FINAL_STEP_STATES:
        return
    if final:
        fail_step(session, step_id, reason)
    elif not (step.failure_reason or "").startswith(f"try {try_number} failed: "):
        step.failure_reason = f"{reason}; {RETRIED}"[:MAX_REASON]
        session.flush()


# --- the Airflow side ----------------------------------------------------------------------


def catalog_for(url: str | None) -> Catalog:
    return Catalog(url)  # None: PROSEO_CATALOG_URL of the worker, never a URL stored in the DAG


def asset_for(mission: str, product_type: str) -> Asset:
    return Asset(f"proseo://{mission}/{product_type}")


def is_final_try(ti: Any) -> bool:
    """Whether Airflow will NOT retry this try if it fails (no task instance: final).

    Airflow's own rule: the server's ``should_retry`` when the task runner has it, else
    ``try_number <= max_tries`` (``max_tries`` is the task's ``retries``, raised by a clear).
    """
    if ti is None:
        return True
    server = getattr(ti, "_ti_context_from_server", None)
    should_retry = getattr(server, "should_retry", None)
    if isinstance(should_retry, bool):
        return not should_retry
    max_tries = getattr(ti, "max_tries", None)
    if max_tries is None:
        max_tries = getattr(getattr(ti, "task", None), "retries", 0) or 0
    return not (max_tries and int(ti.try_number) <= int(max_tries))


def begin(
    catalog: Catalog, step_id: int, *, task_id: str | None, try_number: int, backend: str
) -> StepContext:
    """Before the run: the upstream checks, then the step RUNNING; its StepContext.

    A step the catalogue does not let start (it ended: an order operation moves it
    again, e.g. a retry of the order) fails the task for good, as a failed upstream does.
    """
    try:
        with catalog.session() as s:
            failed = failed_upstream(s, step_id)
            if failed:
                reason = f"upstream job step(s) {failed} failed"
                fail_step(s, step_id, reason)
        if failed:
            raise AirflowFailException(f"job step {step_id}: {reason}")
        with catalog.session() as s:
            return start_step(s, step_id, task_id=task_id, try_number=try_number, backend=backend)
    except UpstreamPending as exc:
        raise AirflowException(str(exc)) from None
    except IllegalStepTransition as exc:
        raise AirflowFailException(str(exc)) from None


def manifest_failure(catalog: Catalog, step_id: int, manifest: Manifest, ti: Any) -> AirflowException:
    """Record a FAILED manifest on its step; the exception that fails the task.

    A spec the wrapper refused fails the same way every time: final, not retried.
    """
    retryable = manifest.stage != "spec"
    final = not retryable or is_final_try(ti)
    with catalog.session() as s:
        message = record_failed_manifest(
            s, step_id, manifest, try_number=int(getattr(ti, "try_number", 1) or 1), final=final
        )
    return AirflowException(message) if retryable else AirflowFailException(f"{message}; not retried")


def finish(
    catalog: Catalog,
    step_id: int,
    manifest: Manifest,
    *,
    mission: str,
    context: Context | None,
    log: Any,
    run: RunIdentity | None = None,
) -> dict[str, Any]:
    """After the run: register, emit the Asset events, roll up; the task's result (XCom).

    Needs the Airflow ``context`` (task instance, Asset events) or, outside Airflow, ``run``.
    """
    ti = context["ti"] if context is not None else None
    if manifest.status is Status.FAILED:
        raise manifest_failure(catalog, step_id, manifest, ti)
    if run is None:
        assert ti is not None, "finish needs the Airflow context or a RunIdentity"
        run = RunIdentity(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=ti.try_number,
            map_index=ti.map_index,
        )
    with catalog.session() as s:
        registered = complete_step(s, step_id, manifest, run)
    if context is not None:
        events = context["outlet_events"]
        for product_type, ids in registered.by_class.items():
            extra: dict[str, Any] = {"job_step_id": step_id, "product_ids": ids}
            events[asset_for(mission, product_type)].extra = extra
    if manifest.status is Status.WARNING:
        log.warning(
            "job step %s: finished with a warning (exit code %s): %s",
            step_id,
            manifest.exit_code,
            manifest.reason,
        )
    log.info(
        "job step %s: registered %d product(s), %d new", step_id, len(registered.product_ids), registered.new
    )
    return {"job_step_id": step_id, "product_ids": registered.product_ids, "status": manifest.status.value}


def step_try_failed(context: Context) -> None:
    """``on_retry_callback`` of every proseo task: the step says which try failed."""
    _record_task_failure(context, final=False)


def step_failed_for_good(context: Context) -> None:
    """``on_failure_callback`` of every proseo task: the step is FAILED, the order rolls up."""
    _record_task_failure(context, final=True)


def _record_task_failure(context: Context, *, final: bool) -> None:
    task, ti = context["task"], context["ti"]
    step_id = getattr(task, "job_step_id", None)
    if step_id is None:
        return
    error = context.get("exception")
    what = f"{type(error).__name__}: {error}" if error is not None else "no exception recorded"
    reason = f"task {ti.task_id} try {ti.try_number} failed: {what}"
    try:
        with catalog_for(getattr(task, "catalog_url", None)).session() as s:
            record_task_failure(s, int(step_id), reason, try_number=int(ti.try_number), final=final)
    except Exception:  # a callback must not hide the task's own failure
        log.exception("job step %s: could not record the failed try in the catalogue", step_id)
