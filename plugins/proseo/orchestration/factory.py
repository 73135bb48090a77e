"""The DAG factory: one DAG per released, unfinished order, built from its blueprint.

Each shard file in ``dags/`` calls :func:`build_shard`, which reads the blueprints of
the shard's active orders in ONE catalogue query and builds their DAGs. A DAG has
one mapped task group per level of the plan (see :mod:`proseo.planning.blueprint`),
split into the steps that wait for external inputs (a deferrable input sensor, then
the processor task) and those that do not (the processor task only); so the parse
cost is a few tasks per order whatever the number of job steps, and every job step
is still its own task instance in Airflow's grid, retryable on its own. When a
worker parses a file to run one task, ``get_parsing_context()`` names the DAG and
only that DAG is built.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_parsing_context, task_group
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import OrderState, ProcessingOrder
from proseo.orchestration.operators import (
    JobStepOperator,
    asset_for,
    step_failed_for_good,
    step_try_failed,
)

#: Orders whose DAG exists: released and not finished.
DAG_STATES = (OrderState.RELEASED.value, OrderState.RUNNING.value, OrderState.SUSPENDING.value)
DEFAULT_SHARDS = 4
START = datetime(2025, 1, 1, tzinfo=UTC)


def shard_count() -> int:
    return int(os.environ.get("PROSEO_DAG_SHARDS", DEFAULT_SHARDS))


def blueprints(catalog: Catalog, shard: int, shards: int, dag_id: str | None = None) -> list[dict[str, Any]]:
    """Blueprints of the shard's active orders: one query (one order when ``dag_id`` is given)."""
    query = select(ProcessingOrder.dag_blueprint).where(
        ProcessingOrder.state.in_(DAG_STATES), ProcessingOrder.dag_blueprint.isnot(None)
    )
    query = query.where(ProcessingOrder.id % shards == shard)
    if dag_id is not None:
        query = query.where(ProcessingOrder.dag_id == dag_id)
    with catalog.session() as session:
        return [bp for bp in session.scalars(query.order_by(ProcessingOrder.id)) if bp]


def build_dag(bp: dict[str, Any], *, catalog_url: str | None = None) -> DAG:
    """The DAG of one order (no catalogue access: everything comes from the blueprint)."""
    mission = bp["mission"]
    default_args: dict[str, Any] = {
        # The facility's pool (created by the DAG-run listener) caps its concurrent steps.
        "pool": bp.get("pool") or "default_pool",
        "priority_weight": int(bp.get("priority") or 50),
        "weight_rule": "absolute",
        "retries": int(os.environ.get("PROSEO_TASK_RETRIES", 2)),
        "retry_delay": timedelta(seconds=float(os.environ.get("PROSEO_TASK_RETRY_DELAY_S", 60))),
        # Failures the task cannot record itself (no manifest, killed) reach the step too.
        "on_retry_callback": step_try_failed,
        "on_failure_callback": step_failed_for_good,
    }
    dag = DAG(
        bp["dag_id"],
        schedule="@once",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["proseo", mission],
        default_args=default_args,
        description=f"proseo order {mission}/{bp['order']} ({bp['job_steps']} job steps)",
    )
    with dag:
        previous: list[Any] = []
        for n, level in enumerate(bp["levels"]):
            outlets = [asset_for(mission, c) for c in level["classes"]]
            waiting = set(level["waiting"])
            current = []
            groups = (
                ("wait", [s for s in level["steps"] if s in waiting], True),
                ("run", [s for s in level["steps"] if s not in waiting], False),
            )
            for kind, steps, sensed in groups:
                if not steps:
                    continue
                if sensed:
                    group = _group(
                        f"level_{n}_{kind}", mission, bp, outlets, sensed, catalog_url, first=n == 0
                    )
                    expanded = group.expand(job_step_id=steps)
                else:
                    # No sensor: a plain mapped task is cheaper to parse than a mapped group.
                    expanded = (
                        _processor_class(bp)
                        .partial(
                            task_id=f"level_{n}_{kind}",
                            mission=mission,
                            catalog_url=catalog_url,
                            outlets=outlets,
                            trigger_rule="all_success" if n == 0 else "all_done",
                        )
                        .expand(job_step_id=steps)
                    )
                for upstream in previous:
                    upstream >> expanded
                current.append(expanded)
            previous = current
    return dag


def _processor_class(bp: dict[str, Any]) -> type[Any]:
    """The processor task's class for the order's facility backend.

    The Kubernetes one is imported only when such a DAG is built (the provider costs
    seconds to import; local facilities never pay for it).
    """
    backend = bp.get("backend") or "local"
    if backend == "local":
        return JobStepOperator
    if backend == "kubernetes":
        from proseo.execution.kubernetes import JobStepPodOperator

        return JobStepPodOperator
    raise ValueError(f"order {bp['mission']}/{bp['order']}: unknown execution backend {backend!r}")


def _group(
    group_id: str,
    mission: str,
    bp: dict[str, Any],
    outlets: list[Any],
    sensed: bool,
    catalog_url: str | None,
    *,
    first: bool,
) -> Any:
    # Later levels start when the previous level is done, whatever its outcome: each
    # step then checks its own upstream steps in the catalogue, so one failed orbit
    # does not hold back the unrelated rest of the order.
    trigger_rule = "all_success" if first else "all_done"

    @task_group(group_id=group_id)
    def step(job_step_id: Any) -> None:
        process = _processor_class(bp)(
            task_id="process",
            job_step_id=job_step_id,
            mission=mission,
            catalog_url=catalog_url,
            outlets=outlets,
            trigger_rule="all_success" if sensed else trigger_rule,
        )
        if sensed:
            from proseo.orchestration.sensors import JobStepInputSensor

            sensor = JobStepInputSensor(
                task_id="inputs",
                job_step_id=job_step_id,
                catalog_url=catalog_url,
                poll_interval=float(os.environ.get("PROSEO_INPUT_POLL_S", 30)),
                timeout_s=bp.get("input_timeout_s"),
                on_timeout=bp.get("on_input_timeout") or "FAIL",
                trigger_rule=trigger_rule,
            )
            sensor >> process

    return step


def build_shard(namespace: dict[str, Any], shard: int, shards: int | None = None) -> list[str]:
    """Build the shard's DAGs into ``namespace`` (a DAG file's globals()); returns their ids."""
    shards = shards or shard_count()
    catalog = Catalog(os.environ.get("PROSEO_CATALOG_URL"))
    wanted = get_parsing_context().dag_id
    if wanted is not None and not wanted.startswith("proseo__"):
        return []
    built = []
    for bp in blueprints(catalog, shard, shards, dag_id=wanted):
        dag = build_dag(bp)
        namespace[bp["dag_id"]] = dag
        built.append(bp["dag_id"])
    return built
