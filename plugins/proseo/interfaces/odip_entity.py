"""The ODIP ``ProductionOrder`` entity: an order as the client sees it, with what it made.

Apart from the request side (:mod:`proseo.interfaces.odip_orders`) because it is read by
every listing and every notification, and knows the order's end events, its products
and the estimate of when it will be done, none of which creation needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from proseo.catalog.db import utcnow
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_odip import OdipOrder
from proseo.catalog.model_order import Job, JobStep, OrderEvent, OrderState, ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile
from proseo.interfaces.odip_estimate import estimate_date, observed_medians, remaining_steps
from proseo.interfaces.odip_orders import mission_workflows
from proseo.interfaces.odip_status import FINAL, production_status
from proseo.interfaces.odip_workflows import Workflow
from proseo.interfaces.prip_entity import odata_time

_END = (
    OrderState.COMPLETED.value,
    OrderState.FAILED.value,
    OrderState.PLANNING_FAILED.value,
    OrderState.CLOSED.value,
)


def output_products(session: Session, order_id: int) -> list[tuple[str, int]]:
    """The requested products the order made: (product Id, size in bytes), oldest first.

    A product stored at several facilities has a file row per replica: each file name is
    counted once.
    """
    rows = session.execute(
        select(Product.uuid, ProductFile.file_name, ProductFile.size)
        .join(JobStep, JobStep.id == Product.job_step_id)
        .join(Job, Job.id == JobStep.job_id)
        .join(ProductFile, ProductFile.product_id == Product.id)
        .where(Job.order_id == order_id, JobStep.requested)
        .order_by(Product.id, ProductFile.id)
    ).all()
    sizes: dict[str, dict[str, int]] = {}
    for uid, file_name, size in rows:
        sizes.setdefault(str(uid), {}).setdefault(file_name, int(size or 0))
    return [(uid, sum(files.values())) for uid, files in sizes.items()]


def end_event(session: Session, order_id: int) -> OrderEvent | None:
    """The last event that took the order to COMPLETED, FAILED or CLOSED."""
    return session.scalars(
        select(OrderEvent)
        .where(OrderEvent.order_id == order_id, OrderEvent.to_state.in_(_END))
        .order_by(OrderEvent.id.desc())
        .limit(1)
    ).first()


def _ended_by(session: Session, order: ProcessingOrder) -> tuple[OrderEvent | None, str | None, str | None]:
    """(the end event, the operation that ended the order, the state a CLOSED order was closed from)."""
    ends = session.scalars(
        select(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.to_state.in_(_END))
        .order_by(OrderEvent.id.desc())
        .limit(2)
    ).all()
    if not ends:
        return None, None, None
    if ends[0].to_state == OrderState.CLOSED.value:
        before = ends[1].operation if len(ends) > 1 else None
        return ends[0], before, ends[0].from_state
    return ends[0], ends[0].operation, None


def entity(
    session: Session, order: ProcessingOrder, mission: str, now: datetime | None = None
) -> dict[str, Any]:
    """The ``ProductionOrder`` entity (JSON) of an ODIP order."""
    odip = session.scalars(select(OdipOrder).where(OdipOrder.order_id == order.id)).one()
    end, ended_by, closed_from = _ended_by(session, order)
    status = production_status(
        order.state, ended_by=ended_by, closed_from=closed_from, reason=order.state_message
    )
    now = now or utcnow()
    products = output_products(session, order.id)
    final = status.status in FINAL
    if final:
        estimated = end.at if end is not None else order.updated_at
    else:
        remaining = remaining_steps(session, order.id)
        if not remaining and order.planned_at is None:  # not planned yet: one step of the workflow
            processor = _processor_of(session, order, odip.workflow)
            remaining = {processor: 1} if processor else {}
        estimated = estimate_date(now, remaining, observed_medians(session, order.mission_id, remaining))
    return {
        "Id": order.uuid,
        "Name": odip.name,
        "Status": status.status.value,
        "StatusMessage": status.message,
        "OrderOutputSize": sum(size for _, size in products) if status.status.value == "completed" else 0,
        "SubmissionDate": odata_time(order.created_at),
        "EstimatedDate": odata_time(estimated),
        "CompletedDate": odata_time(end.at) if final and end is not None else None,
        "EvictionDate": None,
        "Priority": order.priority,
        "InputProductReference": odip.input_reference,
        "WorkflowId": _workflow_id(session, mission, odip.workflow),
        "WorkflowName": odip.workflow,
        "WorkflowOptions": odip.workflow_options,
        "NotificationEndpoint": odip.notification_endpoint,
        "NotificationEpUsername": odip.notification_username,
    }


def _workflow(session: Session, mission: str, name: str) -> Workflow | None:
    return next((w for w in mission_workflows(session, [mission]) if w.name == name), None)


def _workflow_id(session: Session, mission: str, name: str) -> str | None:
    wf = _workflow(session, mission, name)
    return wf.id if wf else None


def _processor_of(session: Session, order: ProcessingOrder, name: str) -> str | None:
    mission = session.scalar(select(Mission.code).where(Mission.id == order.mission_id)) or ""
    wf = _workflow(session, mission, name)
    return wf.processor if wf else None
