"""The order steps: create, approve, plan, release; each recognises work already done.

Every step looks at the order's state first, so a retry after a crash, or a second
run with the same identifier, moves the order forward or skips, and never creates a
second order.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select

from proseo.catalog.configs import revision_config_of
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import latest_revision
from proseo.catalog.model_order import OrderEvent, OrderState, ProcessingOrder
from proseo.errors import NotFoundError, OrderError
from proseo.missions.models import MissionConfig
from proseo.orchestration.order_request.validate import RequestError
from proseo.planning import lifecycle
from proseo.planning import orders as ops
from proseo.planning.spec import OrderSpec, effective_file_class, effective_mode

log = logging.getLogger(__name__)


def _ref(order: ProcessingOrder, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "mission": request["mission"],
        "identifier": order.identifier,
        "state": order.state,
    }


def _find(session: Any, mission: str, identifier: str) -> ProcessingOrder | None:
    try:
        return ops.get_order(session, mission, identifier)
    except NotFoundError:
        return None


def _differences(session: Any, order: ProcessingOrder, spec: OrderSpec, cfg: MissionConfig) -> list[str]:
    """Fields in which ``spec`` differs from the stored order (defaults resolved as create does)."""
    stored = ops.spec_of(session, order).model_dump()
    wanted = spec.model_copy(
        update={
            "processing_mode": effective_mode(spec, cfg),
            "output_file_class": effective_file_class(spec, cfg),
            "facility": spec.facility or (cfg.default_facility() if stored["facility"] else None),
        }
    ).model_dump()
    return [name for name in wanted if wanted[name] != stored[name]]


def create_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    mission, identifier = request["mission"], request["identifier"]
    spec = OrderSpec.model_validate(request["request"])
    with catalog.session() as session:
        existing = _find(session, mission, identifier)
        if existing is not None:
            cfg = revision_config_of(latest_revision(session, existing.mission_id))  # type: ignore[arg-type]
            differs = _differences(session, existing, spec, cfg)
            if differs:
                raise RequestError(
                    f"an order with this identifier exists with a different request "
                    f"(differs in: {', '.join(differs)}); choose another identifier",
                    mission=mission,
                    order=identifier,
                )
            log.info("%s/%s exists already (%s): not created again", mission, identifier, existing.state)
            return {**_ref(existing, request), "created": False}
        order = ops.create_order(session, mission, spec)
        log.info("created order %s/%s (id %s, INITIAL)", mission, identifier, order.id)
        return {**_ref(order, request), "created": True}


def _state(catalog: Catalog, request: dict[str, Any]) -> ProcessingOrder:
    with catalog.session() as session:
        order = ops.get_order(session, request["mission"], request["identifier"])
        session.expunge(order)
        return order


def approve_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    order = _state(catalog, request)
    if order.state == OrderState.INITIAL.value:
        order = lifecycle.approve_order(catalog, request["mission"], request["identifier"])
        return {**_ref(order, request), "approved": True}
    log.info("%s/%s is %s: approval skipped", request["mission"], request["identifier"], order.state)
    return {**_ref(order, request), "approved": False}


def plan_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    mission, identifier = request["mission"], request["identifier"]
    order = _state(catalog, request)
    planned = False
    if order.state in (OrderState.APPROVED.value, OrderState.PLANNING_FAILED.value):
        plan = lifecycle.plan_order(
            catalog, mission, identifier, max_steps=request.get("max_steps") or lifecycle.DEFAULT_MAX_STEPS
        )
        planned = True
        log.info("planned %s/%s: %s", mission, identifier, plan.summary())
    elif order.state in (OrderState.INITIAL.value, OrderState.PLANNING.value):
        raise OrderError(f"cannot plan an order in state {order.state}", mission=mission, order=identifier)
    else:
        log.info("%s/%s is %s: planning skipped", mission, identifier, order.state)
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        return {
            **_ref(order, request),
            "planned": planned,
            "plan": order.plan_summary,
            "job_steps": ops.step_counts(session, order),
        }


def release_step(catalog: Catalog, request: dict[str, Any]) -> dict[str, Any]:
    mission, identifier = request["mission"], request["identifier"]
    released = False
    note = None
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        last = session.scalar(
            select(OrderEvent.operation)
            .where(OrderEvent.order_id == order.id)
            .order_by(OrderEvent.id.desc())
            .limit(1)
        )
    if order.state == OrderState.PLANNED.value:
        if last in ("suspend", "suspended"):
            note = "suspended by an operator: not released again (resume it explicitly)"
        elif not request.get("release", True):
            note = "release=false: left PLANNED for review"
        else:
            lifecycle.release_order(catalog, mission, identifier)
            released = True
    elif order.state in (
        OrderState.INITIAL.value,
        OrderState.APPROVED.value,
        OrderState.PLANNING.value,
        OrderState.PLANNING_FAILED.value,
    ):
        raise OrderError(f"cannot release an order in state {order.state}", mission=mission, order=identifier)
    else:
        note = f"already {order.state}: release skipped"
    if note:
        log.info("%s/%s: %s", mission, identifier, note)
    with catalog.session() as session:
        order = ops.get_order(session, mission, identifier)
        blueprint = order.dag_blueprint or {}
        return {
            **_ref(order, request),
            "released": released,
            "note": note,
            "dag_id": order.dag_id,
            "levels": len(blueprint.get("levels", [])),
            "plan": order.plan_summary,
            "job_steps": ops.step_counts(session, order),
        }
