"""The ``proseo_order_request`` DAG itself: validate -> create -> approve -> plan -> release.

Only the assembly lives here: the form, the validation and the steps are plain
functions elsewhere (tested without a DAG run); each task opens the catalogue and
turns a refused request into a failure that Airflow does not retry.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from proseo.catalog.db import Catalog
from proseo.catalog.schema import require_current
from proseo.errors import ConflictError, IllegalTransition, NotFoundError, OrderError, PlanningError
from proseo.orchestration.order_request.choices import MissionChoices, known_missions
from proseo.orchestration.order_request.form import DAG_ID, request_params
from proseo.orchestration.order_request.steps import approve_step, create_step, plan_step, release_step
from proseo.orchestration.order_request.validate import validate_request

START = datetime(2025, 1, 1, tzinfo=UTC)


def _catalog() -> Catalog:
    catalog = Catalog()  # PROSEO_CATALOG_URL of the worker (proseo.settings)
    require_current(catalog.engine)
    return catalog


def _run(step: Any, *args: Any) -> dict[str, Any]:
    """Run a step; a refused request fails the task for good (a retry cannot help).

    A transition or identifier lost to a concurrent run of the same request is left to
    Airflow's retry, which then finds the order further on and skips forward.
    """
    try:
        return step(*args)
    except (IllegalTransition, ConflictError):
        raise
    except PlanningError as exc:
        raise AirflowFailException(f"planning failed: {exc}") from exc
    except (OrderError, NotFoundError) as exc:
        raise AirflowFailException(str(exc)) from exc


DOC_MD = """
### proseo: order request

Creates, plans and releases one processing order from the form (or from
`POST /api/v2/dags/proseo_order_request/dagRuns` with the same fields as `conf`).
A bad request fails the **validate** task with every problem named by its field, and
nothing is written. Running it again with the same identifier and request creates no
second order: the steps see what is done already and skip forward. The **release**
task's XCom names the order's own DAG (`dag_id`), which appears once the DAG
processor has re-parsed the `proseo_orders_*` shard files.
"""


def build_dag(missions: list[MissionChoices] | None = None) -> DAG:
    """The ``proseo_order_request`` DAG (``missions``: the form's choices; read when None)."""
    if missions is None:
        missions = known_missions()
    with DAG(
        DAG_ID,
        dag_display_name="proseo: order request",
        description="Create, plan and release a processing order from a form",
        doc_md=DOC_MD,
        schedule=None,
        start_date=START,
        catchup=False,
        is_paused_upon_creation=False,
        tags=["proseo"],
        params=request_params(missions),
        default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    ) as dag:

        @task(task_display_name="Validate the request", retries=0)
        def validate() -> dict[str, Any]:
            context = get_current_context()
            dag_run = context["dag_run"]
            return _run(
                validate_request,
                _catalog(),
                dict(context["params"]),
                dict(dag_run.conf or {}),
                dag_run.run_id,
            )

        @task(task_display_name="Create the order")
        def create(request: dict[str, Any]) -> dict[str, Any]:
            return _run(create_step, _catalog(), request)

        @task(task_display_name="Approve")
        def approve(request: dict[str, Any]) -> dict[str, Any]:
            return _run(approve_step, _catalog(), request)

        @task(task_display_name="Plan")
        def plan(request: dict[str, Any]) -> dict[str, Any]:
            return _run(plan_step, _catalog(), request)

        @task(task_display_name="Release")
        def release(request: dict[str, Any]) -> dict[str, Any]:
            return _run(release_step, _catalog(), request)

        request = validate()
        created, approved, planned, released = (
            create(request),
            approve(request),
            plan(request),
            release(request),
        )
        created >> approved >> planned >> released
    return dag
