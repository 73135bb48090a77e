"""PRIP ``Subscriptions`` (CDSE's model): create, list, read, pause/resume, delete; pull Read/Ack.

The routes only carry requests to :mod:`proseo.interfaces.subscriptions` (who sees what,
validation) and :mod:`proseo.interfaces.subscription_pull`; matching and push delivery
run elsewhere (the ``proseo_subscriptions`` DAG), so creating a subscription never waits
for a product, and publishing a product never waits for a subscriber.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from proseo.api.auth import CallerDep, CatalogDep
from proseo.api.prip_products import prip_root
from proseo.api.request_parts import count_option, json_body
from proseo.catalog.db import utcnow
from proseo.interfaces import subscription_pull
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.subscriptions import (
    NotOwner,
    SubscriptionError,
    create_subscription,
    delete_subscription,
    entity_of,
    find_subscription,
    list_subscriptions,
    set_status,
    subscription_entity,
)

router = APIRouter()


async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request, SubscriptionError, empty={})
    if not isinstance(body, dict):
        raise SubscriptionError("body", "must be a JSON object")
    return body


def _top(request: Request, default: int) -> int:
    return count_option(
        request.query_params, "$top", default, 1, subscription_pull.MAX_READ, SubscriptionError
    )


@router.post("/Subscriptions")
async def create(request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """A new subscription of the caller (201, with its entity and Location)."""
    body = await _body(request)
    root = prip_root(request)
    with catalog.session() as session:
        sub = create_subscription(session, caller.grants, body, utcnow())
        _, code = find_subscription(session, caller.grants, sub.uuid)
        entity = subscription_entity(sub, code, {})
    return JSONResponse(
        {"@odata.context": f"{root}/$metadata#Subscriptions/$entity", **entity},
        status_code=201,
        headers={"Location": f"{root}/Subscriptions({entity['Id']})"},
    )


@router.get("/Subscriptions")
def listing(request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """The caller's subscriptions (a mission admin: every subscription of the mission)."""
    with catalog.session() as session:
        value = list_subscriptions(session, caller.grants)
    return JSONResponse({"@odata.context": f"{prip_root(request)}/$metadata#Subscriptions", "value": value})


@router.get("/Subscriptions({key})")
def one(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    with catalog.session() as session:
        entity = entity_of(session, *find_subscription(session, caller.grants, key))
    return JSONResponse({"@odata.context": f"{prip_root(request)}/$metadata#Subscriptions/$entity", **entity})


@router.patch("/Subscriptions({key})")
async def patch(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """Pause or resume: ``{"Status": "paused"}`` / ``{"Status": "running"}``."""
    body = await _body(request)
    other = sorted(set(body) - {"Status"})
    if other:
        raise SubscriptionError(other[0], "only Status can be changed (paused or running)")
    with catalog.session() as session:
        entity = set_status(session, caller.grants, key, body.get("Status"))
    return JSONResponse({"@odata.context": f"{prip_root(request)}/$metadata#Subscriptions/$entity", **entity})


@router.delete("/Subscriptions({key})")
def remove(key: str, caller: CallerDep, catalog: CatalogDep) -> Response:
    with catalog.session() as session:
        delete_subscription(session, caller.grants, key)
    return Response(status_code=204)


@router.get("/Subscriptions({key})/Read")
def read(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """A pull subscription's oldest unacknowledged notifications (the caller's own only)."""
    with catalog.session() as session:
        sub, _ = find_subscription(session, caller.grants, key)
        _owner_only(sub.owner, caller.name, sub.uuid)
        body = subscription_pull.read(session, sub, _top(request, 20), utcnow())
    return JSONResponse(body)


@router.post("/Subscriptions({key})/Ack")
def ack(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """Acknowledge ``$ackid`` and every older notification."""
    ack_id = request.query_params.get("$ackid")
    if ack_id is None:
        raise ODataError("$ackid", "", None, "required: the AckId of the last notification handled")
    with catalog.session() as session:
        sub, _ = find_subscription(session, caller.grants, key, lock=True)
        _owner_only(sub.owner, caller.name, sub.uuid)
        return JSONResponse(subscription_pull.ack(session, sub, ack_id, utcnow()))


@router.get("/Subscriptions({key})/Notifications")
def notifications(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
    """Every notification of the subscription with its delivery state, attempts and last error."""
    skip = count_option(request.query_params, "$skip", 0, 0, 10**9, SubscriptionError)
    with catalog.session() as session:
        sub, _ = find_subscription(session, caller.grants, key)
        value = subscription_pull.notifications(session, sub, _top(request, 100), skip)
    return JSONResponse({"value": value})


def _owner_only(owner: str, caller: str, uuid: str) -> None:
    if owner != caller:
        raise NotOwner(f"Subscriptions({uuid})", f"only its owner ({owner}) reads and acknowledges")
