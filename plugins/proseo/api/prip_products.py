"""PRIP ``Products``: the entity set and single products, answered from the catalogue.

The query core (:mod:`proseo.interfaces`) turns the OData options into one SQL
statement; here the request's options are collected (``$expand`` may be repeated, as
EODAG sends it; any other option twice is refused), the caller's missions become the
statement's scope, and footprints are plugged in.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from proseo.api.auth import Caller, CallerDep, CatalogDep
from proseo.api.json_fast import FastJSONResponse
from proseo.catalog.db import Catalog
from proseo.catalog.footprints import footprint_of, intersects
from proseo.catalog.model_mission import Mission
from proseo.errors import NotFoundError, ProseoError
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.prip_entity import products_answer

router = APIRouter()


def product_uuid(key: str) -> str:
    """The UUID of ``Products(<key>)``: bare (OData's Guid literal) or quoted."""
    text = key.strip().strip("'")
    try:
        return str(uuid.UUID(text))
    except ValueError as exc:
        raise ProductKeyError(f"Products({key[:80]}): the key must be a product Id (a UUID)") from exc


class ProductKeyError(ProseoError):
    """``Products(<key>)`` whose key is not a UUID."""


def query_options(request: Request) -> dict[str, str]:
    """The request's query parameters; repeated ``$expand`` values are joined."""
    params: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in params:
            if key != "$expand":
                raise ODataError(key, value, None, "given more than once")
            params[key] = f"{params[key]},{value}"
        else:
            params[key] = value
    return params


def _scope(session: Session, caller: Caller) -> ColumnElement[bool] | None:
    """The caller's missions (None: every mission)."""
    if caller.grants.everywhere:  # a role on "*" is at least a viewer's
        return None
    return Mission.code.in_(caller.grants.visible(session.scalars(select(Mission.code)).all()))


def prip_root(request: Request) -> str:
    """The PRIP's root URL as the client reached it (links in answers start here)."""
    return str(request.base_url).rstrip("/") + request.scope.get("root_path", "").rstrip("/")


def _answer(
    request: Request, caller: Caller, catalog: Catalog, params: dict[str, str], context: str
) -> dict[str, Any]:
    root = prip_root(request)
    with catalog.session() as session:
        return products_answer(
            session,
            params,
            base_url=f"{root}/Products",
            scope=_scope(session, caller),
            footprint=intersects,
            footprint_of=lambda row: footprint_of(row.product),
            context=f"{root}/$metadata#{context}",
        )


@router.get("/Products")
def products(request: Request, caller: CallerDep, catalog: CatalogDep) -> FastJSONResponse:
    """Products of the caller's missions matching ``$filter``, ordered and paged."""
    return FastJSONResponse(_answer(request, caller, catalog, query_options(request), "Products"))


@router.get("/Products({key})")
def product(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> FastJSONResponse:
    """One product by Id (``$select`` and ``$expand`` apply)."""
    wanted = product_uuid(key)
    params = {k: v for k, v in query_options(request).items() if k in ("$select", "$expand")}
    params["$filter"] = f"Id eq {wanted}"
    body = _answer(request, caller, catalog, params, "Products/$entity")
    if not body["value"]:
        raise NotFoundError(f"Products({wanted}): no such product")
    return FastJSONResponse({"@odata.context": body["@odata.context"], **body["value"][0]})
