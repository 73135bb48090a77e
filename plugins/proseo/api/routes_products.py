"""/products: query with paging, metadata, downloads with HTTP Range, lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from proseo.api.auth import CallerDep, CatalogDep
from proseo.api.downloads import file_response
from proseo.api.limits import Offset
from proseo.api.schemas import Page, ProductOut, product_out
from proseo.api.stored import stored_object
from proseo.catalog.access import Role
from proseo.catalog.lineage import find_product, lineage
from proseo.catalog.products import ProductQuery, query_products
from proseo.errors import NotFoundError, ProseoError
from proseo.planning.graph import to_dot, to_svg

router = APIRouter(tags=["products"])

#: Deepest lineage the API walks (far beyond any processing chain).
MAX_DEPTH = 1000


@router.get("/missions/{mission}/products", response_model=Page[ProductOut])
def list_products(
    mission: str,
    caller: CallerDep,
    catalog: CatalogDep,
    product_type: str | None = None,
    start: datetime | None = None,
    stop: datetime | None = None,
    file_class: str | None = None,
    mode: str | None = None,
    param: Annotated[list[str] | None, Query(description="key:value, repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Page[ProductOut]:
    """Products of a class whose validity overlaps [start, stop), filtered by typed parameters."""
    caller.require(mission, Role.VIEWER)
    parameters: dict[str, str] = {}
    for item in param or []:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise ProseoError(f"query parameter param={item!r}: expected key:value")
        parameters[key] = value
    q = ProductQuery(mission, product_type, start, stop, parameters or None, file_class, mode, limit, offset)
    with catalog.session() as session:
        found, total = query_products(session, q)
        items = [product_out(p) for p in found]
    return Page[ProductOut](items=items, total=total, limit=limit, offset=offset)


@router.get("/missions/{mission}/products/{ref}", response_model=ProductOut)
def show_product(mission: str, ref: str, caller: CallerDep, catalog: CatalogDep) -> ProductOut:
    """A product by id, UUID or file name."""
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        return product_out(find_product(session, ref, mission=mission))


@router.get("/missions/{mission}/products/{ref}/lineage")
def product_lineage(
    mission: str,
    ref: str,
    caller: CallerDep,
    catalog: CatalogDep,
    depth: Annotated[int | None, Query(ge=1, le=MAX_DEPTH)] = None,
    forward: bool = False,
    format: Annotated[str, Query(pattern="^(json|svg|dot|text)$")] = "json",
) -> Response:
    """Where a product came from (or, with forward=true, what was made from it)."""
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        product = find_product(session, ref, mission=mission)
        tree = lineage(session, product.id, depth=depth, forward=forward)
    if format == "json":
        return JSONResponse(tree.to_dict())
    if format == "text":
        return Response(tree.to_text(), media_type="text/plain")
    graph = tree.to_graph()
    if format == "dot":
        return Response(to_dot(graph), media_type="text/vnd.graphviz")
    return Response(to_svg(graph), media_type="image/svg+xml")


@router.get("/missions/{mission}/products/{ref}/files/{file_name}", response_class=StreamingResponse)
def download(
    mission: str,
    ref: str,
    file_name: str,
    caller: CallerDep,
    catalog: CatalogDep,
    range: Annotated[str | None, Header()] = None,
) -> Response:
    """A product file; honours ``Range: bytes=a-b`` (206) so large downloads can resume."""
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        product = find_product(session, ref, mission=mission)
        match = [f for f in product.files if f.file_name == file_name]
        if not match:
            raise NotFoundError(f"{mission}: product {product.id} has no file {file_name!r}")
        f = match[0]
        storage, key = stored_object(session, f.facility_id, f.storage_url)
        size, sha256 = f.size, f.sha256
    extra = {"X-Checksum-SHA256": sha256} if sha256 else {}
    return file_response(storage, key, size, file_name, range, extra)
