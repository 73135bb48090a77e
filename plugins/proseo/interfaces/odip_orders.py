"""ODIP ``ProductionOrder`` requests: a body turned into an order, who sees which orders, and finding them.

A request names a workflow (``WorkflowName``, or ``WorkflowId``), an input product
reference and options; it becomes an :class:`~proseo.planning.spec.OrderSpec` for the
workflow's class over the reference's window (``ContentDate``, else the validity of
the product named by ``Reference``), with the options as dynamic processing
parameters, plus an :class:`~proseo.catalog.model_odip.OdipOrder` row for what only
the ODIP knows. Every refusal names the body's field. The order and its row are
written in the caller's transaction: both exist, or neither.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from proseo.catalog.access import Grants, Role
from proseo.catalog.configs import revision_config_of
from proseo.catalog.mission_sync import latest_revision
from proseo.catalog.model_access import ALL_MISSIONS
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_odip import OdipOrder
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile
from proseo.errors import NotFoundError, ProseoError
from proseo.interfaces.notify_http import endpoint_problem
from proseo.interfaces.odip_workflows import OdipRequestError, Workflow, workflows
from proseo.interfaces.request_fields import text_field, uuid_key
from proseo.missions.types import parse_utc
from proseo.planning import orders as ops
from proseo.planning.spec import OrderSpec

FIELDS = {
    "Name",
    "WorkflowName",
    "WorkflowId",
    "WorkflowOptions",
    "InputProductReference",
    "Priority",
    "NotificationEndpoint",
    "NotificationEpUsername",
    "NotificationEpPassword",
}
#: Read-only properties a client may send back unchanged with ``POST /ProductionOrder``.
READ_ONLY = {"Id", "Status", "StatusMessage", "OrderOutputSize", "SubmissionDate", "EstimatedDate"}
READ_ONLY |= {"CompletedDate", "EvictionDate"}


def mission_workflows(session: Session, missions: list[str] | None = None) -> list[Workflow]:
    """Workflows of every mission (or of ``missions``), from each one's latest revision."""
    out: list[Workflow] = []
    query = select(Mission).order_by(Mission.code)
    if missions is not None:
        query = query.where(Mission.code.in_(missions))
    for mission in session.scalars(query):
        revision = latest_revision(session, mission.id)
        if revision is not None:
            out.extend(workflows(revision_config_of(revision)))
    return out


def _text(body: dict[str, Any], key: str, *, limit: int, required: bool = False) -> str | None:
    return text_field(body, key, limit=limit, required=required, error=OdipRequestError)


def _instant(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise OdipRequestError(where, "expected an instant such as 2025-03-01T00:00:00.000Z")
    try:
        return parse_utc(value)
    except (ValueError, ProseoError) as exc:
        raise OdipRequestError(where, f"not an instant: {value[:40]!r} ({exc})") from None


@dataclass(frozen=True)
class Request:
    """A checked request body."""

    workflow: Workflow
    start: datetime
    stop: datetime
    parameters: dict[str, Any]
    priority: int
    body: dict[str, Any]


def parse_request(session: Session, body: Any, allowed: list[str] | None) -> Request:
    """Check a creation body against the workflows of the missions in ``allowed`` (None: all)."""
    if not isinstance(body, dict):
        raise OdipRequestError("body", "expected a JSON object")
    for key in body:
        if key not in FIELDS and key not in READ_ONLY and not key.startswith("@odata."):
            raise OdipRequestError(key, f"unknown property; properties are {', '.join(sorted(FIELDS))}")
    workflow = choose_workflow(
        mission_workflows(session, allowed),
        _text(body, "WorkflowName", limit=200),
        _text(body, "WorkflowId", limit=64),
    )
    options = body.get("WorkflowOptions") or []
    if not isinstance(options, list):
        raise OdipRequestError("WorkflowOptions", "expected a list of {Name, Value}")
    parameters = workflow.options_to_parameters(options)
    start, stop = _window(session, workflow, body.get("InputProductReference"))
    priority = body.get("Priority", 50)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 100:
        raise OdipRequestError("Priority", f"expected an integer from 1 to 100, not {priority!r}")
    endpoint = _text(body, "NotificationEndpoint", limit=1000)
    problem = endpoint_problem(endpoint) if endpoint is not None else None
    if problem:
        raise OdipRequestError("NotificationEndpoint", problem)
    for key, limit in (("Name", 200), ("NotificationEpUsername", 200), ("NotificationEpPassword", 500)):
        _text(body, key, limit=limit)
    return Request(workflow, start, stop, parameters, priority, body)


def choose_workflow(found: list[Workflow], name: str | None, wid: str | None) -> Workflow:
    """The one workflow of ``found`` named ``name`` and/or with Id ``wid``.

    A name several workflows share (one product class made by two processors) is refused
    with their Ids rather than one of them picked silently.
    """
    if name is None and wid is None:
        raise OdipRequestError("WorkflowName", "required (or WorkflowId)")
    match = [w for w in found if (name is None or w.name == name) and (wid is None or w.id == wid)]
    if not match:
        field = "WorkflowName" if name is not None else "WorkflowId"
        raise OdipRequestError(field, f"no such workflow: {(name or wid)!r}")
    if len(match) > 1:
        ids = ", ".join(w.id for w in match)
        raise OdipRequestError("WorkflowName", f"ambiguous: give WorkflowId, one of {ids}")
    return match[0]


def _window(session: Session, workflow: Workflow, ref: Any) -> tuple[datetime, datetime]:
    """The order's window: ContentDate, else the validity of the product named by Reference."""
    where = "InputProductReference"
    if not isinstance(ref, dict):
        raise OdipRequestError(where, "required: {Reference, ContentDate: {Start, End}}")
    unknown = set(ref) - {"Reference", "ContentDate"}
    if unknown:
        raise OdipRequestError(f"{where}.{sorted(unknown)[0]}", "unknown property")
    content = ref.get("ContentDate")
    if content is not None:
        if not isinstance(content, dict):
            raise OdipRequestError(f"{where}.ContentDate", "expected {Start, End}")
        start = _instant(content.get("Start"), f"{where}.ContentDate.Start")
        stop = _instant(content.get("End"), f"{where}.ContentDate.End")
        if stop <= start:
            raise OdipRequestError(f"{where}.ContentDate.End", "must be after Start")
        return start, stop
    reference = ref.get("Reference")
    if not isinstance(reference, str) or not reference:
        raise OdipRequestError(where, "give ContentDate or the Reference of an input product")
    row = session.execute(
        select(Product.sensing_start, Product.sensing_stop)
        .join(ProductFile, ProductFile.product_id == Product.id)
        .join(Mission, Mission.id == Product.mission_id)
        .where(Mission.code == workflow.mission, ProductFile.file_name == reference)
    ).first()
    if row is None or row[0] is None or row[1] is None:
        raise OdipRequestError(
            f"{where}.Reference", f"no {workflow.mission} product named {reference[:200]!r}"
        )
    return row[0], row[1]


def create(session: Session, request: Request, user: str) -> ProcessingOrder:
    """The order (INITIAL) and its ODIP row, in the caller's transaction."""
    wf = request.workflow
    spec = OrderSpec(
        identifier=f"odip-{uuid.uuid4().hex[:16]}",
        requested_classes=[wf.product_class],
        start=request.start,
        stop=request.stop,
        dynamic_parameters=request.parameters,
        priority=request.priority,
    )
    order = ops.create_order(session, wf.mission, spec)
    body = request.body
    session.add(
        OdipOrder(
            order_id=order.id,
            name=body.get("Name"),
            workflow=wf.name,
            workflow_options=list(body.get("WorkflowOptions") or []),
            input_reference=dict(body["InputProductReference"]),
            notification_endpoint=body.get("NotificationEndpoint"),
            notification_username=body.get("NotificationEpUsername"),
            notification_password=body.get("NotificationEpPassword"),
            created_by=user,
        )
    )
    session.flush()
    return order


def visible(session: Session, grants: Grants) -> ColumnElement[bool] | None:
    """ODIP orders the caller sees: their own on missions they view, all on missions they administer.

    None: every order (an admin of every mission). The notification endpoint and its user
    are the client's, so another client of the mission never sees, nor cancels, them.
    """
    if grants.allows(ALL_MISSIONS, Role.ADMIN):
        return None
    codes = session.scalars(select(Mission.code)).all()
    viewed = grants.visible(codes)
    administered = [c for c in codes if grants.allows(c, Role.ADMIN)]
    if not viewed:
        return false()
    own = and_(OdipOrder.created_by == grants.user, Mission.code.in_(viewed))
    return or_(own, Mission.code.in_(administered))


def find(session: Session, key: str, scope: ColumnElement[bool] | None) -> tuple[ProcessingOrder, str]:
    """``ProductionOrder(<key>)``: the order and its mission code (404 outside ``scope``)."""
    wanted = uuid_key(key, "ProductionOrder", OdipRequestError, field="Id")
    query = (
        select(ProcessingOrder, Mission.code)
        .join(OdipOrder, OdipOrder.order_id == ProcessingOrder.id)
        .join(Mission, Mission.id == ProcessingOrder.mission_id)
        .where(ProcessingOrder.uuid == wanted)
    )
    if scope is not None:
        query = query.where(scope)
    row = session.execute(query).first()
    if row is None:
        raise NotFoundError(f"ProductionOrder({wanted}): no such production order")
    return row[0], row[1]


def page(
    session: Session, scope: ColumnElement[bool] | None, top: int, skip: int
) -> list[tuple[ProcessingOrder, str]]:
    query = (
        select(ProcessingOrder, Mission.code)
        .join(OdipOrder, OdipOrder.order_id == ProcessingOrder.id)
        .join(Mission, Mission.id == ProcessingOrder.mission_id)
        .order_by(ProcessingOrder.id.desc())
        .limit(top)
        .offset(skip)
    )
    if scope is not None:
        query = query.where(scope)
    return [(o, code) for o, code in session.execute(query).all()]
