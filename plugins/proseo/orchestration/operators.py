"""The processor task of a job step: run it on its facility's backend, then register.

One mapped instance per job step. Before running it checks against the catalogue
that the step's upstream job steps completed (the DAG orders whole levels; the exact
edges of the plan are enforced here), marks the step RUNNING, runs the wrapper, and
registers the manifest in one transaction with provenance naming the Airflow run,
task and try. Registration is idempotent, so a retry after a crash between upload
and registration finds the products already there. Each registration emits one
Asset event per product class (``proseo://<mission>/<product_type>``) listing the
new product ids.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import Asset, BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from proseo.catalog.db import Catalog
from proseo.catalog.register import RunIdentity
from proseo.execution import stepstate
from proseo.execution.jobspec import StepContext
from proseo.execution.local import run_wrapper
from proseo.wrapper.spec import Manifest, Status

log = logging.getLogger(__name__)


def asset_for(mission: str, product_type: str) -> Asset:
    return Asset(f"proseo://{mission}/{product_type}")


def catalog_for(url: str | None) -> Catalog:
    return Catalog(url)  # None: PROSEO_CATALOG_URL of the worker, never a URL stored in the DAG


class JobStepOperator(BaseOperator):
    """Run one job step (``job_step_id`` is templated: it comes from the mapped group)."""

    template_fields = ("job_step_id",)
    ui_color = "#c7e9c0"

    def __init__(
        self, *, job_step_id: Any, mission: str, catalog_url: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_step_id = job_step_id
        self.mission = mission
        self.catalog_url = catalog_url

    def execute(self, context: Context) -> dict[str, Any]:
        step_id = int(self.job_step_id)
        ti = context["ti"]
        catalog = catalog_for(self.catalog_url)
        ctx = begin(catalog, step_id, task_id=ti.task_id, try_number=ti.try_number)
        if ctx.backend != "local":
            raise AirflowFailException(
                f"job step {step_id}: facility {ctx.facility} uses backend {ctx.backend!r}; "
                "JobStepOperator runs local facilities only (JobStepPodOperator runs Kubernetes ones)"
            )
        manifest = run_wrapper(ctx, ti.try_number, log=self.log)
        return finish(catalog, step_id, manifest, mission=self.mission, context=context, log=self.log)


def step_try_failed(context: Context) -> None:
    """``on_retry_callback`` of every proseo task: the step's reason says which try failed."""
    _record_task_failure(context, final=False)


def step_failed_for_good(context: Context) -> None:
    """``on_failure_callback`` of every proseo task: the step is FAILED, the order rolls up.

    Covers what the task itself cannot record: the wrapper or pod dying without a
    manifest, a registration error, a kill or timeout.
    """
    _record_task_failure(context, final=True)


def _record_task_failure(context: Context, *, final: bool) -> None:
    task, ti = context["task"], context["ti"]
    step_id = getattr(task, "job_step_id", None)
    if step_id is None:
        return
    error = context.get("exception")
    what = f"{type(error).__name__}: {error}" if error is not None else "no exception recorded"
    reason = f"task {ti.task_id} try {ti.try_number} failed: {what}"[:4000]
    try:
        with catalog_for(getattr(task, "catalog_url", None)).session() as s:
            stepstate.record_task_failure(s, int(step_id), reason, final=final)
    except Exception:  # a callback must not hide the task's own failure
        log.exception("job step %s: could not record the failed try in the catalogue", step_id)


def fail_on_failed_upstream(catalog: Catalog, step_id: int) -> None:
    """An upstream step failed: fail this one for good (no retry can help) and record it."""
    with catalog.session() as s:
        failed = stepstate.failed_upstream(s, step_id)
    if failed:
        reason = f"upstream job step(s) {failed} failed"
        with catalog.session() as s:
            stepstate.fail_step(s, step_id, reason)
        raise AirflowFailException(f"job step {step_id}: {reason}")


def begin(catalog: Catalog, step_id: int, *, task_id: str | None, try_number: int) -> StepContext:
    """Before the run: check the upstream steps, mark the step RUNNING; its StepContext.

    A failed upstream step fails this one for good (no retry can help) and records it,
    so the order rolls up to FAILED instead of waiting for a step that will never run.
    """
    fail_on_failed_upstream(catalog, step_id)
    try:
        with catalog.session() as s:
            return stepstate.start_step(s, step_id, task_id=task_id, try_number=try_number)
    except stepstate.UpstreamPending as exc:
        raise AirflowException(str(exc)) from None


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
    """After the run: record a FAILED manifest (and raise), or register the products,
    roll the order up and emit one Asset event per product class; the task's result."""
    if manifest.status is Status.FAILED:
        with catalog.session() as s:
            message = stepstate.fail_with_manifest(s, step_id, manifest)
        raise AirflowException(message)
    if run is None:
        assert context is not None, "finish needs the Airflow context or a RunIdentity"
        ti = context["ti"]
        run = RunIdentity(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=ti.try_number,
            map_index=ti.map_index,
        )
    with catalog.session() as s:
        registered = stepstate.complete_step(s, step_id, manifest, run)
    if context is not None:
        events = context["outlet_events"]
        for product_type, ids in registered.by_class.items():
            events[asset_for(mission, product_type)].extra = {"job_step_id": step_id, "product_ids": ids}
    log.info(
        "job step %s: registered %d product(s), %d new",
        step_id,
        len(registered.product_ids),
        registered.new,
    )
    return {
        "job_step_id": step_id,
        "product_ids": registered.product_ids,
        "status": manifest.status.value,
    }
