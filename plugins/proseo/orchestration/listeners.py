"""Airflow listeners that keep the catalogue's orders in step with their DAG runs.

Job steps update their own state as they run (execution/steptask.py); what the steps cannot
see is the end of the DAG run itself: a sensor that failed leaves its processor task
upstream-failed and its step waiting, a run that was marked failed by hand leaves
steps planned. When a proseo DAG run ends, every job step that did not finish is
marked FAILED with the reason, and the order rolls up, so an order never stays
RUNNING after its run ended. Listeners must never break Airflow: errors are logged.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

if TYPE_CHECKING:
    from proseo.planning.blueprint import Blueprint

log = logging.getLogger(__name__)


def finish_order_for_run(dag_id: str, run_id: str, state: str) -> str | None:
    """Finalise the order behind ``dag_id``; returns its new state (None if not ours).

    A run that ended failed also ends the backend runs its failed steps still name
    (:mod:`proseo.execution.runs`: a triggerer down at the cancel never ran the trigger's
    ``on_kill``); that failing is logged, the order is final either way.
    """
    if not dag_id.startswith("proseo__"):
        return None
    from sqlalchemy import select

    from proseo.catalog.db import Catalog
    from proseo.catalog.model_order import ProcessingOrder
    from proseo.execution.runs import failed_step_runs
    from proseo.planning.lifecycle import finalize_order

    catalog = Catalog()
    with catalog.session() as session:
        order = session.execute(
            select(ProcessingOrder.id, ProcessingOrder.identifier).where(ProcessingOrder.dag_id == dag_id)
        ).first()
        if order is None:
            return None
        new_state = finalize_order(session, order.id, f"DAG run {run_id} ended {state}")
        refs = failed_step_runs(session, order.id) if state == "failed" else []
    if refs:  # in a thread: a hanging scancel must not hold the scheduler's loop or an API call
        threading.Thread(
            target=_end_runs,
            args=(refs, order.identifier, dag_id, run_id),
            name="proseo-end-runs",
            daemon=True,
        ).start()
    return new_state


def _end_runs(refs: list[str], order: str, dag_id: str, run_id: str) -> None:
    from proseo.execution.runs import cancel_runs

    try:
        cancel_runs(refs, order=order)
    except Exception:
        log.exception(
            "proseo: DAG run %s/%s ended failed; its job steps' runs are not all ended", dag_id, run_id
        )


def _safely(dag_run: Any, state: str) -> None:
    try:
        finish_order_for_run(dag_run.dag_id, dag_run.run_id, state)
    except Exception:  # a listener must not fail the scheduler
        log.exception("proseo: could not finalise the order of DAG run %s/%s", dag_run.dag_id, dag_run.run_id)


def blueprint_of(dag_id: str) -> Blueprint | None:
    """The validated blueprint of the order behind ``dag_id`` (None: no such order).

    Raises :class:`~proseo.planning.blueprint.BlueprintError` naming the order when the
    stored blueprint does not validate.
    """
    from sqlalchemy import select

    from proseo.catalog.db import Catalog
    from proseo.catalog.model_mission import Mission
    from proseo.catalog.model_order import ProcessingOrder
    from proseo.planning.blueprint import read_blueprint

    with Catalog().session() as session:
        row = session.execute(
            select(Mission.code, ProcessingOrder.identifier, ProcessingOrder.dag_blueprint)
            .join(Mission, Mission.id == ProcessingOrder.mission_id)
            .where(ProcessingOrder.dag_id == dag_id)
        ).first()
    if row is None or row.dag_blueprint is None:
        return None
    return read_blueprint(row.dag_blueprint, order=f"{row.code}/{row.identifier}")


def ensure_pool(dag_run: Any) -> str | None:
    """Create or resize the order's facility pool (the scheduler has the metadata DB).

    A facility's ``max_concurrent_job_steps`` is the pool's size; every processor task
    of the facility's orders runs in it, so the limit holds across orders.

    Nothing here may fail the scheduler's transaction. The scheduler calls this inside
    its own session, in a section where a commit is refused ("UNEXPECTED COMMIT - THIS
    WILL BREAK HA LOCKS!") and would detach its DagRuns, and it starts several runs in
    one session before it commits. ``Pool.create_or_update_pool`` adds an ORM object
    after a SELECT that does not see other pending objects (the scheduler's session does
    not autoflush): three first runs of one facility added three pools, and the
    scheduler's commit, outside any try/except of ours, died on the unique pool name,
    again after every restart. So no ORM object of ours ever enters that session:

    * one ``INSERT ... ON CONFLICT DO NOTHING`` (``INSERT IGNORE`` on MySQL) runs at
      once, so a pool created by an earlier call in the same session, another
      scheduler or a person is never inserted twice, and nothing is left to flush;
    * then an ``UPDATE`` of the size, only where it differs (no row lock otherwise);
    * both inside a SAVEPOINT on the session's connection (not ``Session.begin_nested``,
      which would flush the scheduler's own pending changes): any database error rolls
      back our statements only and leaves the scheduler's transaction usable.

    Without a session (``dag.test()``, a stand-in run) the same runs in a session of its own.
    """
    if not dag_run.dag_id.startswith("proseo__"):
        return None
    blueprint = blueprint_of(dag_run.dag_id)
    if blueprint is None or not blueprint.pool:
        return None
    from sqlalchemy.orm import object_session
    from sqlalchemy.orm.exc import UnmappedInstanceError

    name = blueprint.pool
    # The order's facility's pool, and those of the facilities the facility choice placed steps at.
    pools = [(name, blueprint.pool_slots or 1, blueprint.facility)] + [
        (p.pool, p.pool_slots, f) for f, p in sorted(blueprint.places.items())
    ]
    try:
        scheduler_session = object_session(dag_run)
    except UnmappedInstanceError:
        scheduler_session = None
    if scheduler_session is None:
        from airflow.utils.session import create_session

        with create_session() as own:
            for pool, slots, facility in pools:
                _upsert_pool(own.connection(), pool, slots, _description(facility, blueprint.mission))
        return name
    connection = scheduler_session.connection()
    with connection.begin_nested():
        for pool, slots, facility in pools:
            _upsert_pool(connection, pool, slots, _description(facility, blueprint.mission))
    return name


def _description(facility: str | None, mission: str) -> str:
    return f"proseo facility {facility} of mission {mission}"


def _upsert_pool(connection: Any, name: str, slots: int, description: str) -> None:
    """The pool exists with ``slots`` afterwards; no statement can violate its unique name."""
    from airflow.models.pool import Pool
    from sqlalchemy import exists, insert, literal, select, update

    table = Pool.__table__
    values = {"pool": name, "slots": slots, "description": description, "include_deferred": False}
    dialect = connection.dialect.name
    statement: Any
    if dialect in ("postgresql", "sqlite"):
        module = __import__(f"sqlalchemy.dialects.{dialect}", fromlist=["insert"])
        statement = module.insert(table).values(**values).on_conflict_do_nothing()
    elif dialect in ("mysql", "mariadb"):
        statement = insert(table).values(**values).prefix_with("IGNORE")
    else:  # only where missing; a race is still caught by the savepoint
        chosen = select(*(literal(v).label(k) for k, v in values.items())).where(
            ~exists().where(table.c.pool == name)
        )
        statement = insert(table).from_select(list(values), chosen)
    connection.execute(statement)
    connection.execute(update(table).where(table.c.pool == name, table.c.slots != slots).values(slots=slots))


#: What a proseo task process would otherwise import for itself: the DAG factory and step
#: operators it parses, the catalogue models, the wrapper the local backend forks from the
#: task, Airflow's DAG bag.
TASK_PATH: tuple[str, ...] = (
    "proseo.orchestration.factory",
    "proseo.catalog.models",
    "proseo.execution.steptask",
    "proseo.execution.local",
    "proseo.execution.backends",
    "proseo.wrapper.main",
    "airflow.dag_processing.dagbag",
)


def warm_task_path() -> None:
    """Import what every proseo task process would import, in a process that forks them.

    LocalExecutor workers are forked from the scheduler and each task process from its
    worker (the DAG processor likewise forks its parsing children from its manager; a
    Celery worker's pool from its main process, see :mod:`proseo.orchestration.celery_preload`),
    so whatever these parents imported before forking costs a task nothing. Without this,
    every task process pays for importing :data:`TASK_PATH` (about 0.3 s) and for the Task
    SDK's asset-URI handlers, which the first ``Asset(...)`` of a process initialises by
    importing every provider's handlers, the Amazon S3 hook among them (0.4-0.6 s).
    """
    import importlib

    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    for name in TASK_PATH:
        importlib.import_module(name)
    ProvidersManagerTaskRuntime().initialize_providers_asset_uri_resources()


@hookimpl
def on_starting(component: Any) -> None:
    # Airflow's job components (scheduler, DAG processor, triggerer) call this at start,
    # before the scheduler's LocalExecutor forks its workers.
    try:
        warm_task_path()
    except Exception:
        log.exception("proseo: could not pre-import the task path in %s", type(component).__name__)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    dag_id, run_id = dag_run.dag_id, dag_run.run_id  # read before anything can detach the run
    try:
        ensure_pool(dag_run)
    except Exception:
        log.exception("proseo: could not create the pool for DAG run %s/%s", dag_id, run_id)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _safely(dag_run, "success")


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _safely(dag_run, "failed")
