"""ODIP ``ProductionOrder``: create (``POST /ProductionOrder`` and the action
``OData.CSC.Order``), list, read, cancel (``OData.CSC.Cancel``), and the product made.

A caller sees, reads and cancels their own orders (on missions they may view; cancel
needs operator); a mission's admin, every order of the mission.
Creation writes the order and its ODIP row in one transaction, approves the order
and answers ``queued`` at once; planning and release follow in the background (and,
should the server stop first, in the ``proseo_odip`` DAG's sweep). Cancel is the REST
API's cancel (:mod:`proseo.api.steering`): the catalogue and the order's Airflow run
move together. The product is the PRIP's: its entity and ``$value`` download.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from proseo.api.auth import Caller, CallerDep, CatalogDep
from proseo.api.prip import ROOT as PRIP_ROOT
from proseo.api.prip import _download
from proseo.api.prip_products import prip_root
from proseo.api.request_parts import count_option, json_body
from proseo.api.routes_orders import _airflow
from proseo.api.steering import steer
from proseo.catalog.access import Role
from proseo.catalog.db import Catalog
from proseo.catalog.footprints import footprint_of, intersects
from proseo.catalog.model_mission import Mission
from proseo.errors import NotFoundError
from proseo.interfaces import odip_entity
from proseo.interfaces import odip_orders as core
from proseo.interfaces.odip_workflows import OdipRequestError
from proseo.interfaces.prip_entity import products_answer
from proseo.planning import lifecycle
from proseo.planning.states import TERMINAL

router = APIRouter()
log = logging.getLogger(__name__)
MAX_TOP = 1000


def visible_missions(session: Session, caller: Caller, role: Role) -> list[str]:
    """Codes of the missions on which the caller holds at least ``role``."""
    codes = session.scalars(select(Mission.code).order_by(Mission.code)).all()
    return [c for c in codes if caller.grants.allows(c, role)]


def _scope(session: Session, caller: Caller) -> ColumnElement[bool] | None:
    """The caller's own orders, and every order of the missions they administer."""
    return core.visible(session, caller.grants)


async def _body(request: Request) -> Any:
    return await json_body(request, OdipRequestError)


def _release(catalog: Catalog, mission: str, identifier: str) -> None:
    """Plan and release a queued order (after the answer; the DAG's sweep retries what this misses)."""
    released: list[str] = []
    failed: list[str] = []
    try:
        lifecycle.carry_to_release(catalog, mission, [(identifier, "APPROVED")], released, failed)
    except Exception:  # the sweep retries; nobody waits for this answer
        log.exception("odip: releasing %s/%s failed; the proseo_odip sweep retries it", mission, identifier)
        return
    for reason in failed:
        log.warning(
            "odip: %s/%s not released yet (the proseo_odip sweep retries it): %s", mission, identifier, reason
        )


async def _create(request: Request, caller: Caller, catalog: Catalog, tasks: BackgroundTasks) -> JSONResponse:
    body = await _body(request)
    with catalog.session() as session:
        allowed = visible_missions(session, caller, Role.OPERATOR)
        if not allowed:
            raise OdipRequestError("WorkflowName", "the caller may order on no mission")
        parsed = core.parse_request(session, body, allowed)
        order = core.create(session, parsed, caller.name)
        mission, identifier, key = parsed.workflow.mission, order.identifier, order.uuid
    try:
        lifecycle.approve_order(catalog, mission, identifier, message=f"ODIP, by {caller.name}")
    except Exception:
        # The order exists (committed above): an error answer would make a client that retries
        # create it twice. It stays INITIAL, and the proseo_odip sweep approves and releases it.
        log.exception(
            "odip: approving %s/%s failed; the proseo_odip sweep takes it over", mission, identifier
        )
    else:
        tasks.add_task(_release, catalog, mission, identifier)
    return _entity_answer(request, catalog, caller, key, status=201)


def _entity_answer(
    request: Request, catalog: Catalog, caller: Caller, key: str, *, status: int = 200
) -> JSONResponse:
    root = prip_root(request)
    with catalog.session() as session:
        order, mission = core.find(session, key, _scope(session, caller))
        body = odip_entity.entity(session, order, mission)
    return JSONResponse(
        {"@odata.context": f"{root}/$metadata#ProductionOrder/$entity", **body},
        status_code=status,
        headers={"Location": f"{root}/ProductionOrder({body['Id']})"} if status == 201 else None,
    )


@router.post("/ProductionOrder")
async def create_order(
    request: Request, caller: CallerDep, catalog: CatalogDep, tasks: BackgroundTasks
) -> JSONResponse:
    """prosEO's creation: the entity posted to the set (201, Status queued)."""
    return await _create(request, caller, catalog, tasks)


@router.post("/ProductionOrder/OData.CSC.Order")
async def order_action(
    request: Request, caller: CallerDep, catalog: CatalogDep, tasks: BackgroundTasks
) -> JSONResponse:
    """CDSE's creation: the bound action on the set (201, Status queued)."""
    return await _create(request, caller, catalog, tasks)


@router.get("/ProductionOrder")
def list_orders(request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """The caller's own production orders (an admin: the mission's), newest first; ``$top``/``$skip`` page."""
    params = dict(request.query_params)
    for key in params:
        if key not in ("$top", "$skip"):
            raise OdipRequestError(key, "not supported on ProductionOrder (use $top and $skip)")
    top = count_option(params, "$top", 100, 1, MAX_TOP, OdipRequestError)
    skip = count_option(params, "$skip", 0, 0, 10**9, OdipRequestError)
    root = prip_root(request)
    with catalog.session() as session:
        rows = core.page(session, _scope(session, caller), top + 1, skip)
        values = [odip_entity.entity(session, o, code) for o, code in rows[:top]]
    answer: dict[str, Any] = {"@odata.context": f"{root}/$metadata#ProductionOrder", "value": values}
    if len(rows) > top:
        answer["@odata.nextLink"] = f"{root}/ProductionOrder?$top={top}&$skip={skip + top}"
    return JSONResponse(answer)


@router.get("/ProductionOrder({key})")
def read_order(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    return _entity_answer(request, catalog, caller, key)


@router.post("/ProductionOrder({key})/OData.CSC.Cancel")
def cancel_order(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """Cancel: the order FAILED as cancelled, its Airflow run marked failed (Status cancelled)."""
    with catalog.session() as session:
        order, mission = core.find(session, key, _scope(session, caller))
        identifier, state = order.identifier, order.state
    caller.require(mission, Role.OPERATOR)
    if state in TERMINAL:
        raise OdipRequestError("Id", f"ProductionOrder({key}) is closed")
    steer(
        catalog, mission, identifier, "cancel", _airflow(request, caller), message="ODIP cancel", force=False
    )
    return _entity_answer(request, catalog, caller, key)


def _product_id(catalog: Catalog, caller: Caller, key: str) -> str:
    with catalog.session() as session:
        order, _ = core.find(session, key, _scope(session, caller))
        made = odip_entity.output_products(session, order.id)
        state = order.state
    if not made:
        raise NotFoundError(f"ProductionOrder({key})/Product: no product yet (order {state})")
    return made[0][0]


@router.get("/ProductionOrder({key})/Product")
def order_product(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """The product the order made, as the PRIP shows it."""
    wanted = _product_id(catalog, caller, key)
    prip = prip_root(request).removesuffix("/odip/odata/v1") + PRIP_ROOT
    with catalog.session() as session:
        body = products_answer(
            session,
            {"$filter": f"Id eq {wanted}"},
            base_url=f"{prip}/Products",
            scope=None,
            footprint=intersects,
            footprint_of=lambda row: footprint_of(row.product),
            context=f"{prip}/$metadata#Products/$entity",
        )
    if not body["value"]:  # not AVAILABLE (the PRIP lists only those)
        raise NotFoundError(f"ProductionOrder({key})/Product: the product is not available")
    return JSONResponse({"@odata.context": body["@odata.context"], **body["value"][0]})


@router.get("/ProductionOrder({key})/Product/$value")
def order_product_value(
    key: str, caller: CallerDep, catalog: CatalogDep, range: Annotated[str | None, Header()] = None
) -> Response:
    """The product's file (HTTP Range, checksums in the headers), as ``Products(<Id>)/$value``."""
    return _download(_product_id(catalog, caller, key), caller, catalog, range)
