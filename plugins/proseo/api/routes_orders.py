"""/orders: create, list with progress, every life-cycle operation, graph, job steps, logs.

Operations go through :mod:`proseo.planning.lifecycle` (one locked transaction
each, the same code the CLI runs); the steering ones (suspend, resume, cancel,
retry) move the order's Airflow DAG run too, with the caller's own token, so
Airflow's permissions apply to that part, and both sides move or neither does
(:mod:`proseo.api.steering`). Airflow's address comes from the app (the plugin
passes Airflow's own) or ``PROSEO_AIRFLOW_URL``, never from the request.

The caller's role on the mission is checked before the request body is validated,
so a body from someone without the role costs nothing to refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from proseo.api.airflow_runs import STEERING, AirflowRuns
from proseo.api.auth import Caller, CallerDep, CatalogDep
from proseo.api.limits import Id, Offset
from proseo.api.schemas import (
    JobStepDetail,
    JobStepOut,
    OperationRequest,
    OrderDetail,
    OrderSummary,
    Page,
    job_step_detail,
    job_steps,
    order_detail,
    order_summaries,
)
from proseo.api.steering import AirflowNotConfigured, steer
from proseo.api.stored import stored_object
from proseo.catalog.access import Role
from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_order import JobStep, ProcessingOrder
from proseo.errors import NotFoundError, OrderError
from proseo.planning import lifecycle
from proseo.planning import orders as ops
from proseo.planning.graph import to_dot, to_svg, to_text
from proseo.planning.spec import OrderSpec
from proseo.planning.store import order_graph
from proseo.settings import get_settings

router = APIRouter(tags=["orders"])

OPERATIONS: dict[str, Callable[..., Any]] = {
    "approve": lifecycle.approve_order,
    "release": lifecycle.release_order,
    "suspend": lifecycle.suspend_order,
    "resume": lifecycle.resume_order,
    "cancel": lifecycle.cancel_order,
    "retry": lifecycle.retry_order,
    "reset": lifecycle.reset_order,
    "close": lifecycle.close_order,
}


class OperationResult(BaseModel):
    order: OrderDetail
    airflow: str | None = Field(default=None, description="What was done to the order's Airflow DAG run.")


def operator(mission: str, caller: CallerDep) -> Caller:
    """The caller, if an operator of the mission: checked before the body is read."""
    caller.require(mission, Role.OPERATOR)
    return caller


OperatorDep = Annotated[Caller, Depends(operator)]


def _detail(catalog: Catalog, mission: str, identifier: str) -> OrderDetail:
    with catalog.session() as session:
        return order_detail(session, ops.get_order(session, mission, identifier), mission)


@router.get("/orders", response_model=Page[OrderSummary], summary="Orders with job-step progress, paged")
def list_orders(
    caller: CallerDep,
    catalog: CatalogDep,
    mission: str | None = None,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[OrderSummary]:
    if mission:
        caller.require(mission, Role.VIEWER)
    query = select(ProcessingOrder, Mission.code).join(Mission, Mission.id == ProcessingOrder.mission_id)
    if mission:
        query = query.where(Mission.code == mission)
    elif not caller.grants.everywhere:
        query = query.where(Mission.code.in_(caller.grants.visible(caller.grants.by_mission)))
    if state:
        query = query.where(ProcessingOrder.state == state.upper())
    with catalog.session() as session:
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.execute(query.order_by(ProcessingOrder.id.desc()).limit(limit).offset(offset)).all()
        items = order_summaries(session, [(o, code) for o, code in rows])
    return Page[OrderSummary](items=items, total=total, limit=limit, offset=offset)


@router.post("/missions/{mission}/orders", response_model=OrderDetail, status_code=status.HTTP_201_CREATED)
def create_order(
    mission: str,
    spec: OrderSpec,
    caller: OperatorDep,
    catalog: CatalogDep,
    plan: bool = False,
    release: bool = False,
) -> OrderDetail:
    """Create an order (INITIAL); ``plan=true`` approves and plans it, ``release=true`` also releases it."""
    with catalog.session() as session:
        ops.create_order(session, mission, spec)
    if plan or release:
        lifecycle.approve_order(catalog, mission, spec.identifier, message=f"by {caller.name}")
        lifecycle.plan_order(catalog, mission, spec.identifier, max_steps=lifecycle.DEFAULT_MAX_STEPS)
    if release:
        lifecycle.release_order(catalog, mission, spec.identifier, message=f"by {caller.name}")
    return _detail(catalog, mission, spec.identifier)


@router.get("/missions/{mission}/orders/{identifier}", response_model=OrderDetail)
def show_order(mission: str, identifier: str, caller: CallerDep, catalog: CatalogDep) -> OrderDetail:
    caller.require(mission, Role.VIEWER)
    return _detail(catalog, mission, identifier)


@router.post("/missions/{mission}/orders/{identifier}/{operation}", response_model=OperationResult)
def operate(
    mission: str,
    identifier: str,
    operation: str,
    request: Request,
    caller: OperatorDep,
    catalog: CatalogDep,
    body: OperationRequest | None = None,
) -> OperationResult:
    """approve, plan, release, suspend, resume, cancel, retry, reset or close the order.

    suspend, resume, cancel and retry also steer the order's Airflow DAG run: both
    sides change, or neither (403 or 502 naming Airflow's answer, the order unchanged).
    """
    body = body or OperationRequest()
    message = body.message or f"by {caller.name}"
    if operation == "plan":
        max_steps = body.max_steps or lifecycle.DEFAULT_MAX_STEPS
        with catalog.session() as session:
            state = ops.get_order(session, mission, identifier).state
        if state == "INITIAL":
            lifecycle.approve_order(catalog, mission, identifier, message=message)
        lifecycle.plan_order(catalog, mission, identifier, max_steps=max_steps)
    elif operation in STEERING:
        client = _airflow(request, caller)
        done = steer(catalog, mission, identifier, operation, client, message=message, force=body.force)
        return OperationResult(order=_detail(catalog, mission, identifier), airflow=done)
    elif operation in OPERATIONS:
        OPERATIONS[operation](catalog, mission, identifier, message=message, force=body.force)
    else:
        known = ", ".join(["plan", *OPERATIONS])
        raise OrderError(
            f"unknown operation {operation!r}; operations are {known}", mission=mission, order=identifier
        )
    return OperationResult(order=_detail(catalog, mission, identifier))


def _airflow(request: Request, caller: Caller) -> AirflowRuns | None:
    """The client of Airflow's API for this caller: the app's address, else PROSEO_AIRFLOW_URL.

    Never the request's own host: a forged ``Host`` header would receive the caller's token.
    None when the app was built with steering off (``airflow_url=""``).
    """
    url = request.app.state.airflow_url
    if url == "":
        return None
    url = url or get_settings().airflow_url
    if not url:
        raise AirflowNotConfigured(
            "Airflow's address is not configured: set PROSEO_AIRFLOW_URL "
            "(inside Airflow the plugin passes Airflow's [api] base_url); nothing was changed"
        )
    return AirflowRuns(url.rstrip("/"), token=caller.token)


@router.get("/missions/{mission}/orders/{identifier}/graph", summary="Job-step graph: svg, dot or text")
def order_graph_view(
    mission: str,
    identifier: str,
    caller: CallerDep,
    catalog: CatalogDep,
    format: Annotated[str, Query(pattern="^(svg|dot|text)$")] = "svg",
) -> Response:
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        graph = order_graph(session, ops.get_order(session, mission, identifier))
    media = {"svg": "image/svg+xml", "dot": "text/vnd.graphviz", "text": "text/plain"}[format]
    rendered = {"svg": to_svg, "dot": to_dot, "text": to_text}[format](graph)
    return Response(rendered, media_type=media)


@router.get("/missions/{mission}/orders/{identifier}/job-steps", response_model=Page[JobStepOut])
def list_job_steps(
    mission: str,
    identifier: str,
    caller: CallerDep,
    catalog: CatalogDep,
    state: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[JobStepOut]:
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        return job_steps(session, order, state=state, limit=limit, offset=offset)


def _step(catalog: Catalog, mission: str, identifier: str, step_id: int) -> tuple[JobStepDetail, int | None]:
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        detail = job_step_detail(session, order, step_id)
        # The log is in the storage of the facility the step ran at (its own, else the order's).
        step = session.get(JobStep, step_id) if detail is not None else None
        facility_id = (step.facility_id if step is not None else None) or order.facility_id
    if detail is None:
        raise NotFoundError(f"{mission}/{identifier}: no job step {step_id} in this order")
    return detail, facility_id


@router.get("/missions/{mission}/orders/{identifier}/job-steps/{step_id}", response_model=JobStepDetail)
def show_job_step(
    mission: str, identifier: str, step_id: Id, caller: CallerDep, catalog: CatalogDep
) -> JobStepDetail:
    """One job step with its inputs: the rule, whether it was satisfied, what was chosen and why."""
    caller.require(mission, Role.VIEWER)
    return _step(catalog, mission, identifier, step_id)[0]


@router.get(
    "/missions/{mission}/orders/{identifier}/job-steps/{step_id}/log", response_class=PlainTextResponse
)
def job_step_log(mission: str, identifier: str, step_id: Id, caller: CallerDep, catalog: CatalogDep) -> str:
    """The processor's log as kept in storage by the wrapper (also for failed runs)."""
    caller.require(mission, Role.VIEWER)
    detail, facility_id = _step(catalog, mission, identifier, step_id)
    if not detail.log_url:
        raise NotFoundError(
            f"{mission}/{identifier}: job step {step_id} has no log yet (state {detail.state})"
        )
    with catalog.session() as session:
        storage, key = stored_object(session, facility_id, detail.log_url)
    return storage.get_bytes(key).decode("utf-8", "replace")
