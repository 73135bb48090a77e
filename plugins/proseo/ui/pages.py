"""The pages under ``/proseo/ui/``: server-rendered HTML that Airflow's UI shows in a frame.

=====================================================  ==========================================
``/ui/orders?mission=&state=&limit=&offset=``          orders the caller may see, progress bars
``/ui/orders/{mission}/{identifier}``                  state, request, history, job-step graph,
                                                       job steps with their inputs and why
``/ui/products?mission=&product_type=&start=&stop=``   product browser with download links
``/ui/products/{mission}/{ref}/lineage``               lineage picture and table of a product
``/ui/kpi/{mission}?since=&until=&product_type=&by=``  timeliness: delays over time, histogram,
                                                       aggregates (:mod:`proseo.ui.page_kpi`)
=====================================================  ==========================================

Authentication is the REST API's own (:mod:`proseo.api.auth`): a browser sends the
``_token`` cookie that Airflow's UI sets; roles are checked per mission with the
same calls. The data comes from the API's route functions and builders
(:mod:`proseo.api.schemas`) and the catalogue functions, so a page shows exactly what
the API answers. Errors are pages too: 401 without a valid token, 403 for a mission
the user holds no role on, 404 for what does not exist, 400 for bad filters.

Everything is escaped by Jinja2's autoescaping; the only markup passed through is our
own stylesheet and the SVG pictures, whose text :func:`proseo.planning.graph.to_svg`
escapes. Pages are self-contained (inline CSS, a few lines of inline script, nothing
fetched from elsewhere), since they run inside Airflow's UI without internet access.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from proseo.api import routes_missions, routes_orders, routes_products
from proseo.api.auth import CallerDep, CatalogDep
from proseo.api.limits import reject_nul
from proseo.api.schemas import job_step_details, job_steps, product_out
from proseo.catalog.access import Role
from proseo.catalog.lineage import Lineage, find_product, lineage
from proseo.catalog.model_order import OrderState
from proseo.errors import ProseoError
from proseo.planning import orders as ops
from proseo.planning.graph import STATES, to_svg
from proseo.text import MAX_INT64
from proseo.ui import page_campaigns, page_kpi
from proseo.ui.render import (
    DEFAULT_LIMIT,
    PAGE_SIZES,
    Links,
    PageRoute,
    pager,
    parse_instant,
    progress,
    render,
    svg_markup,
)

router = APIRouter(
    prefix="/ui", route_class=PageRoute, include_in_schema=False, dependencies=[Depends(reject_nul)]
)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=MAX_INT64)]

# --- pages -------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def home(request: Request, caller: CallerDep) -> Response:
    return RedirectResponse(Links(request.scope.get("root_path", "")).orders(), status.HTTP_303_SEE_OTHER)


@router.get("/orders", response_class=HTMLResponse)
def orders_page(
    request: Request,
    caller: CallerDep,
    catalog: CatalogDep,
    mission: str = "",
    state: str = "",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Response:
    page = routes_orders.list_orders(
        caller=caller,
        catalog=catalog,
        mission=mission or None,
        state=state or None,
        limit=limit,
        offset=offset,
    )
    links = Links(request.scope.get("root_path", ""))
    filters = {"mission": mission, "state": state.upper()}
    return render(
        request,
        "orders.html",
        caller=caller,
        active="orders",
        title="Orders",
        missions=routes_missions.list_missions(caller=caller, catalog=catalog),
        order_states=[s.value for s in OrderState],
        filters=filters,
        orders=[(o, progress(o)) for o in page.items],
        pager=pager(links.orders, page.total, limit, offset, **filters),
        page_sizes=PAGE_SIZES,
    )


@router.get("/orders/{mission}/{identifier}", response_class=HTMLResponse)
def order_page(
    request: Request,
    mission: str,
    identifier: str,
    caller: CallerDep,
    catalog: CatalogDep,
    state: str = "",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Response:
    order = routes_orders.show_order(mission=mission, identifier=identifier, caller=caller, catalog=catalog)
    graph = routes_orders.order_graph_view(
        mission=mission, identifier=identifier, caller=caller, catalog=catalog, format="svg"
    )
    with catalog.session() as session:
        row = ops.get_order(session, mission, identifier)
        steps = job_steps(session, row, state=state or None, limit=limit, offset=offset)
        details = job_step_details(session, row, [s.id for s in steps.items])
    links = Links(request.scope.get("root_path", ""))
    return render(
        request,
        "order.html",
        caller=caller,
        active="orders",
        title=f"{mission} order {identifier}",
        order=order,
        bar=progress(order),
        graph=svg_markup(bytes(graph.body).decode("utf-8")),
        steps=[d for d in details if d is not None],
        step_states=list(STATES[1:]),
        filters={"state": state.upper()},
        pager=pager(
            lambda **p: links.order(mission, identifier, **p) + "#job-steps",
            steps.total,
            limit,
            offset,
            state=state.upper(),
        ),
        page_sizes=PAGE_SIZES,
    )


@router.get("/products", response_class=HTMLResponse)
def products_page(
    request: Request,
    caller: CallerDep,
    catalog: CatalogDep,
    mission: str = "",
    product_type: str = "",
    start: str = "",
    stop: str = "",
    limit: Limit = DEFAULT_LIMIT,
    offset: Offset = 0,
) -> Response:
    missions = routes_missions.list_missions(caller=caller, catalog=catalog)
    code = mission or (missions[0].code if missions else "")
    filters = {"mission": code, "product_type": product_type, "start": start.strip(), "stop": stop.strip()}
    context: dict[str, Any] = {"classes": [], "products": [], "pager": None}
    if code:
        window = (parse_instant(start, "start"), parse_instant(stop, "stop"))
        classes = routes_missions.list_product_classes(mission=code, caller=caller, catalog=catalog)
        page = routes_products.list_products(
            mission=code,
            caller=caller,
            catalog=catalog,
            product_type=product_type or None,
            start=window[0],
            stop=window[1],
            file_class=None,
            mode=None,
            param=None,
            limit=limit,
            offset=offset,
        )
        links = Links(request.scope.get("root_path", ""))
        context = {
            "classes": classes,
            "products": page.items,
            "pager": pager(links.products, page.total, limit, offset, **filters),
        }
    return render(
        request,
        "products.html",
        caller=caller,
        active="products",
        title="Products",
        missions=missions,
        filters=filters,
        page_sizes=PAGE_SIZES,
        **context,
    )


def _depth(value: str) -> int | None:
    text = value.strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ProseoError(
            f"depth: expected a number from 1 to 100 (or nothing for all levels), got {value!r}"
        )
    return int(text)


def _by_type(children: list[tuple[Any, Any]]) -> list[tuple[str, list[tuple[Any, Any]]]]:
    """The next products of a lineage node grouped by product type (already sorted by type)."""
    groups: dict[str, list[tuple[Any, Any]]] = {}
    for node, edge in children:
        groups.setdefault(node.product_type, []).append((node, edge))
    return list(groups.items())


@router.get("/products/{mission}/{ref}/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    mission: str,
    ref: str,
    caller: CallerDep,
    catalog: CatalogDep,
    depth: str = "",
    forward: str = "",
) -> Response:
    caller.require(mission, Role.VIEWER)
    levels = _depth(depth)
    onwards = forward.strip().lower() in ("1", "true", "yes", "on")
    with catalog.session() as session:
        found = find_product(session, ref, mission=mission)
        product = product_out(found)
        tree: Lineage = lineage(session, found.id, depth=levels, forward=onwards)
    rows = [(node, _by_type(tree.children(node.id))) for node in tree.nodes.values()]
    return render(
        request,
        "lineage.html",
        caller=caller,
        active="products",
        title=f"{mission} product {product.id}: lineage",
        mission=mission,
        product=product,
        tree=tree,
        rows=rows,
        graph=svg_markup(to_svg(tree.to_graph())),
        depth=depth.strip(),
        forward=onwards,
    )


def install(app: FastAPI) -> None:
    """Add the pages to the /proseo app (called by :func:`proseo.api.app.create_app`)."""
    app.include_router(router)
    app.include_router(page_kpi.router)
    app.include_router(page_campaigns.router)
