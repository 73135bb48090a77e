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

An order with a deadline gets a deadline alert (:mod:`proseo.orchestration.deadlines`)
and tasks weighted by its slack (:mod:`proseo.orchestration.urgency`).

Every task of an order goes to its facility's pool and executor queue
(:func:`proseo.planning.blueprint.facility_queue`): on the CeleryExecutor a worker
serves the queues of the facilities it can reach.

The processor task's class comes from the facility's backend through
:data:`proseo.execution.backends.OPERATORS`; an order whose blueprint does not
validate, or names an unknown backend, is left out with a logged error naming it,
and the rest of the shard is built.
"""

from __future__ import annotations

import logging
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, get_parsing_context, task_group
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_order import OrderState, ProcessingOrder
from proseo.errors import ProseoError
from proseo.execution.backends import operator_class
from proseo.execution.steptask import asset_for, step_failed_for_good, step_try_failed
from proseo.planning.blueprint import Blueprint, facility_queue, read_blueprint
from proseo.settings import get_settings

log = logging.getLogger(__name__)

#: Orders whose DAG exists: released and not finished.
DAG_STATES = (OrderState.RELEASED.value, OrderState.RUNNING.value, OrderState.SUSPENDING.value)
SHARD_FILES = "proseo_orders_*.py"
START = datetime(2025, 1, 1, tzinfo=UTC)


class ShardCountWarning(UserWarning):
    """``PROSEO_DAG_SHARDS`` and the number of shard files in ``dags/`` disagree."""


def shard_count() -> int:
    return get_settings().dag_shards


def check_shard_files(dag_file: str | Path, shards: int) -> str | None:
    """Warn (log and ``warnings``) when the shard files beside ``dag_file`` are not ``shards``
    many: with more shards than files, the orders of the missing shards get no DAG; with
    fewer, files build the same orders twice. Returns the warning, if any."""
    folder = Path(dag_file).resolve().parent
    found = sorted(p.name for p in folder.glob(SHARD_FILES))
    if len(found) == shards:
        return None
    message = (
        f"PROSEO_DAG_SHARDS is {shards} but {folder} holds {len(found)} shard file(s) "
        f"({', '.join(found) or 'none'}): "
        + (
            "orders of the shards without a file get no DAG"
            if shards > len(found)
            else "shard files beyond the count build no or duplicate DAGs"
        )
        + f"; make them agree (files proseo_orders_00.py .. proseo_orders_{shards - 1:02d}.py)"
    )
    log.warning("%s", message)
    warnings.warn(message, ShardCountWarning, stacklevel=3)
    return message


def blueprints(
    catalog: Catalog, shard: int, shards: int, dag_id: str | None = None
) -> list[tuple[str, dict[str, Any] | None]]:
    """(``MISSION/ORDER``, stored blueprint) of the shard's active orders: ONE query
    (one order when ``dag_id`` is given)."""
    query = (
        select(Mission.code, ProcessingOrder.identifier, ProcessingOrder.dag_blueprint)
        .join(Mission, Mission.id == ProcessingOrder.mission_id)
        .where(ProcessingOrder.state.in_(DAG_STATES), ProcessingOrder.dag_blueprint.isnot(None))
        .where(ProcessingOrder.id % shards == shard)
    )
    if dag_id is not None:
        query = query.where(ProcessingOrder.dag_id == dag_id)
    with catalog.session() as session:
        rows = session.execute(query.order_by(ProcessingOrder.id)).all()
    return [(f"{mission}/{identifier}", bp) for mission, identifier, bp in rows]


def build_dag(bp: Blueprint, *, catalog_url: str | None = None) -> DAG:
    """The DAG of one order (no catalogue access: everything comes from the blueprint)."""
    settings = get_settings()
    processor = operator_class(bp.backend, order=bp.where, facility=bp.facility)
    default_args: dict[str, Any] = {
        # The facility's pool (created by the DAG-run listener) caps its concurrent steps.
        "pool": bp.pool or "default_pool",
        "priority_weight": bp.priority,
        "weight_rule": "absolute",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        # Failures the task cannot record itself (no manifest, killed) reach the step too.
        "on_retry_callback": step_try_failed,
        "on_failure_callback": step_failed_for_good,
    }
    if bp.facility is not None:
        # The facility's queue: on the CeleryExecutor only workers that reach it run its steps.
        default_args["queue"] = facility_queue(bp.mission, bp.facility)
    params: dict[str, Any] = {}
    deadline = None
    if bp.deadline is not None:
        from proseo.orchestration.deadlines import deadline_alert
        from proseo.orchestration.urgency import STRATEGY, urgency_params

        # The weight rises as the deadline comes closer (computed as each task instance
        # is created); the strategy reads the order's urgency from the DAG's params.
        default_args["weight_rule"] = STRATEGY
        params = urgency_params(bp.priority, bp.deadline)
        if bp.order_id is not None:
            deadline = deadline_alert(
                deadline=bp.deadline,
                order_id=bp.order_id,
                mission=bp.mission,
                order=bp.order,
                catalog_url=catalog_url,
            )
    dag = DAG(
        bp.dag_id,
        schedule="@once",
        start_date=START,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["proseo", bp.mission],
        default_args=default_args,
        params=params,
        deadline=deadline,
        description=f"proseo order {bp.where} ({bp.job_steps} job steps)"
        + (f", due {bp.deadline.isoformat()}" if bp.deadline else ""),
    )
    with dag:
        previous: list[Any] = []
        for n, level in enumerate(bp.levels):
            outlets = [asset_for(bp.mission, c) for c in level.classes]
            waiting = set(level.waiting)
            # Later levels start when the previous level is done, whatever its outcome: each
            # step then checks its own upstream steps in the catalogue, so one failed orbit
            # does not hold back the unrelated rest of the order.
            trigger_rule = "all_success" if n == 0 else "all_done"
            current = []
            for place, steps in level.groups():
                # Steps the facility choice put at another facility: that facility's operator
                # and pool, task ids suffixed with its name.
                suffix, op, extra = "", processor, {}
                if place is not None:
                    where = bp.places[place]
                    suffix = "__" + "".join(c if c.isalnum() or c in "-_." else "_" for c in place)
                    op = operator_class(where.backend, order=bp.where, facility=place)
                    extra = {"pool": where.pool, "queue": facility_queue(bp.mission, place)}
                sensed = [s for s in steps if s in waiting]
                if sensed:
                    group = _sensed_group(
                        f"level_{n}_wait{suffix}", bp, op, outlets, catalog_url, trigger_rule, extra
                    )
                    current.append(group.expand(job_step_id=sensed))
                plain = [s for s in steps if s not in waiting]
                if plain:
                    # No sensor: a plain mapped task is cheaper to parse than a mapped group.
                    current.append(
                        op.partial(
                            task_id=f"level_{n}_run{suffix}",
                            mission=bp.mission,
                            catalog_url=catalog_url,
                            outlets=outlets,
                            trigger_rule=trigger_rule,
                            **extra,
                        ).expand(job_step_id=plain)
                    )
            for upstream in previous:
                for task in current:
                    upstream >> task
            previous = current
    return dag


def _sensed_group(
    group_id: str,
    bp: Blueprint,
    processor: type[Any],
    outlets: list[Any],
    catalog_url: str | None,
    trigger_rule: str,
    extra: dict[str, Any] | None = None,
) -> Any:
    """[inputs sensor -> processor task] for the steps that wait for external inputs
    (``extra``: the processor task's pool when the steps run at another facility)."""
    from proseo.orchestration.sensors import JobStepInputSensor

    poll_interval = get_settings().input_poll_s

    @task_group(group_id=group_id)
    def step(job_step_id: Any) -> None:
        sensor = JobStepInputSensor(
            task_id="inputs",
            job_step_id=job_step_id,
            catalog_url=catalog_url,
            poll_interval=poll_interval,
            timeout_s=bp.input_timeout_s,
            on_timeout=bp.on_input_timeout or "FAIL",
            trigger_rule=trigger_rule,
        )
        process = processor(
            task_id="process",
            job_step_id=job_step_id,
            mission=bp.mission,
            catalog_url=catalog_url,
            outlets=outlets,
            trigger_rule="all_success",
            **(extra or {}),
        )
        sensor >> process

    return step


def build_shard(namespace: dict[str, Any], shard: int, shards: int | None = None) -> list[str]:
    """Build the shard's DAGs into ``namespace`` (a DAG file's globals()); returns their ids.

    An order whose blueprint cannot be built is logged (naming it) and left out.
    """
    shards = shards or shard_count()
    if namespace.get("__file__"):
        check_shard_files(namespace["__file__"], shards)
    wanted = get_parsing_context().dag_id
    if wanted is not None and not wanted.startswith("proseo__"):
        return []
    built = []
    for where, stored in blueprints(Catalog(), shard, shards, dag_id=wanted):
        try:
            dag = build_dag(read_blueprint(stored, order=where))
        except ProseoError as exc:
            log.error("proseo DAG factory: order %s left out of shard %d: %s", where, shard, exc)
            continue
        namespace[dag.dag_id] = dag
        built.append(dag.dag_id)
    return built
