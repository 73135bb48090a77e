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

from typing import Any

from airflow.sdk import Asset, BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sqlalchemy import select

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.model_order import Job, JobStep, JobStepEdge, StepState
from proseo.catalog.register import RunIdentity, register_manifest
from proseo.execution.jobspec import build_job_spec
from proseo.execution.local import run_wrapper
from proseo.planning.lifecycle import rollup_order
from proseo.wrapper.spec import Status


def asset_for(mission: str, product_type: str) -> Asset:
    return Asset(f"proseo://{mission}/{product_type}")


def _catalog(url: str | None) -> Catalog:
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
        catalog = _catalog(self.catalog_url)
        with catalog.session() as s:
            failed = self._failed_upstream(s, step_id)
        if failed:
            # Fail for good (no retry can help) and record it, so the order rolls up to
            # FAILED instead of waiting for a step that will never run.
            reason = f"upstream job step(s) {failed} failed"
            with catalog.session() as s:
                step = s.get(JobStep, step_id)
                assert step is not None
                step.state = StepState.FAILED.value
                step.failure_reason = reason
                s.flush()
                order_id = s.scalar(select(Job.order_id).where(Job.id == step.job_id))
                if order_id is not None:
                    rollup_order(s, order_id)
            raise AirflowFailException(f"job step {step_id}: {reason}")
        with catalog.session() as s:
            self._check_upstream(s, step_id)
            ctx = build_job_spec(s, step_id, try_number=ti.try_number)
            step = s.get(JobStep, step_id)
            assert step is not None
            step.state = StepState.RUNNING.value
            step.started_at = utcnow()
            step.task_id = ti.task_id
            step.try_number = ti.try_number
            step.failure_reason = None
            s.flush()
            rollup_order(s, ctx.order_id)  # RELEASED -> RUNNING with the first step
        if ctx.backend != "local":
            raise AirflowFailException(
                f"job step {step_id}: facility {ctx.facility} uses backend {ctx.backend!r}; "
                "the mapped DAG runs local facilities only so far"
            )
        manifest = run_wrapper(ctx, ti.try_number, log=self.log)
        if manifest.status is Status.FAILED:
            with catalog.session() as s:
                step = s.get(JobStep, step_id)
                assert step is not None
                step.state = StepState.FAILED.value
                step.exit_code = manifest.exit_code
                step.failure_reason = f"{manifest.stage}: {manifest.reason}"
                step.log_url = manifest.log_url
                s.flush()
                rollup_order(s, ctx.order_id)
            raise AirflowException(
                f"job step {step_id} failed at {manifest.stage}: {manifest.reason} (log: {manifest.log_url})"
            )
        run = RunIdentity(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=ti.try_number,
            map_index=ti.map_index,
        )
        with catalog.session() as s:
            registered = register_manifest(s, step_id, manifest, run=run)
            step = s.get(JobStep, step_id)
            assert step is not None
            step.log_url = manifest.log_url
            s.flush()
            rollup_order(s, ctx.order_id)  # COMPLETED with the last step
        events = context["outlet_events"]
        for product_type, ids in registered.by_class.items():
            events[asset_for(self.mission, product_type)].extra = {"job_step_id": step_id, "product_ids": ids}
        self.log.info(
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

    @staticmethod
    def _upstream(session: Any, step_id: int) -> list[tuple[int, str]]:
        return [
            (u, state)
            for u, state in session.execute(
                select(JobStepEdge.upstream_id, JobStep.state)
                .join(JobStep, JobStep.id == JobStepEdge.upstream_id)
                .where(JobStepEdge.downstream_id == step_id)
            )
        ]

    @classmethod
    def _failed_upstream(cls, session: Any, step_id: int) -> list[int]:
        return [u for u, state in cls._upstream(session, step_id) if state == StepState.FAILED.value]

    @classmethod
    def _check_upstream(cls, session: Any, step_id: int) -> None:
        rows = cls._upstream(session, step_id)
        pending = [u for u, state in rows if state != StepState.COMPLETED.value]
        if pending:
            raise AirflowException(f"job step {step_id}: upstream job step(s) {pending} have not completed")
