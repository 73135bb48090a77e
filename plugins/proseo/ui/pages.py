"""The pages under ``/proseo/ui/``: server-rendered HTML that Airflow's UI shows in a frame.

=====================================================  ==========================================
``/ui/orders?mission=&state=&limit=&offset=``          orders the caller may see, progress bars
``/ui/orders/{mission}/{identifier}``                  state, request, history, job-step graph,
                                                       job steps with their inputs and why
``/ui/products?mission=&product_type=&start=&stop=``   product browser with download links
``/ui/products/{mission}/{ref}/lineage``               lineage picture and table of a product
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

import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from proseo.api import routes_missions, routes_orders, routes_products
from proseo.api.auth import Caller, CallerDep, CatalogDep
from proseo.api.errors import status_of
from proseo.api.schemas import OrderSummary, job_step_details, job_steps, product_out
from proseo.catalog.access import Role
from proseo.catalog.lineage import Lineage, find_product, lineage
from proseo.catalog.model_order import OrderState
from proseo.errors import ProseoError
from proseo.missions.types import format_utc, parse_utc
from proseo.planning import orders as ops
from proseo.planning.graph import STATES, colour, to_svg

HERE = Path(__file__).resolve().parent
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_LIMIT = 25

#: Order states on the step palette, so an order reads like the steps it rolls up.
ORDER_STATE_COLOURS: dict[str, str] = {
    "INITIAL": colour("PLANNED"),
    "APPROVED": colour("PLANNED"),
    "PLANNING": colour("READY"),
    "PLANNED": colour("PLANNED"),
    "PLANNING_FAILED": colour("FAILED"),
    "RELEASING": colour("READY"),
    "RELEASED": colour("READY"),
    "RUNNING": colour("RUNNING"),
    "SUSPENDING": colour("WAITING_INPUT"),
    "COMPLETED": colour("COMPLETED"),
    "FAILED": colour("FAILED"),
    "CLOSED": colour("SKIPPED"),
}

#: Progress bars fill from the left with what is done, then what runs, then what waits.
BAR_ORDER = ("COMPLETED", "FAILED", "SKIPPED", "RUNNING", "READY", "WAITING_INPUT", "PLANNED", "EXISTING")
assert set(BAR_ORDER) == set(STATES)

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Cannot do that",
    503: "Not ready",
}


# --- rendering ---------------------------------------------------------------------------------


def _when(value: datetime | str | None) -> str:
    """``2025-03-01 08:00:00Z``: the instant in UTC to the second, readable in a table."""
    if value is None or value == "":
        return "—"
    text = format_utc(value) if isinstance(value, datetime) else str(value)
    return re.sub(r"\.\d+(?=Z$)", "", text).replace("T", " ")


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _css_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, size=_size, css=_css_name, colour=colour)
    env.globals.update(order_colour=lambda s: ORDER_STATE_COLOURS.get(s, colour(s)))
    return env


ENV = _environment()
CSS = Markup((HERE / "static" / "proseo.css").read_text(encoding="utf-8"))  # our own stylesheet


class Links:
    """Every URL a page shows, from the mount point of the app (``/proseo`` under Airflow)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    @staticmethod
    def _q(params: Mapping[str, Any]) -> str:
        kept = {k: v for k, v in params.items() if v not in (None, "", False)}
        return "?" + urlencode(kept) if kept else ""

    @staticmethod
    def seg(text: object) -> str:
        return quote(str(text), safe="")

    def orders(self, **params: Any) -> str:
        return f"{self.root}/ui/orders{self._q(params)}"

    def order(self, mission: str, identifier: str, **params: Any) -> str:
        return f"{self.root}/ui/orders/{self.seg(mission)}/{self.seg(identifier)}{self._q(params)}"

    def products(self, **params: Any) -> str:
        return f"{self.root}/ui/products{self._q(params)}"

    def lineage(self, mission: str, ref: object, **params: Any) -> str:
        return f"{self.root}/ui/products/{self.seg(mission)}/{self.seg(ref)}/lineage{self._q(params)}"

    def api(self, path: str) -> str:
        return f"{self.root}/api/v1{path}"

    def api_order(self, mission: str, identifier: str, rest: str = "") -> str:
        return self.api(f"/missions/{self.seg(mission)}/orders/{self.seg(identifier)}{rest}")

    def step_log(self, mission: str, identifier: str, step_id: int) -> str:
        return self.api_order(mission, identifier, f"/job-steps/{step_id}/log")

    def step_json(self, mission: str, identifier: str, step_id: int) -> str:
        return self.api_order(mission, identifier, f"/job-steps/{step_id}")

    def download(self, mission: str, product_id: int, file_name: str) -> str:
        return self.api(f"/missions/{self.seg(mission)}/products/{product_id}/files/{self.seg(file_name)}")


def render(
    request: Request,
    template: str,
    *,
    caller: Caller | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    links = Links(request.scope.get("root_path", ""))
    roles = sorted((m, r.label) for m, r in caller.grants.by_mission.items()) if caller else []
    html = ENV.get_template(template).render(
        css=CSS, links=links, caller=caller, roles=roles, status_code=status_code, **context
    )
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def error_page(
    request: Request, code: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    title = TITLES.get(code, "Error")
    hint = {
        401: "Open this page from Airflow's menu after signing in to Airflow (its token cookie "
        "authenticates these pages), or sign in again if the session expired.",
        403: "Ask a mission admin for a role on this mission (viewer is enough to look).",
    }.get(code, "")
    return render(
        request,
        "error.html",
        status_code=code,
        headers=headers,
        title=f"{code} {title}",
        detail=detail,
        hint=hint,
        active="",
    )


def _svg(picture: str) -> Markup:
    """A standalone SVG made inline: without its XML declaration (its text is escaped by to_svg)."""
    return Markup(re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", picture))  # text escaped by graph.xml()


class PageRoute(APIRoute):
    """A route whose failures are HTML pages (the API's are JSON): 401, 403, 404, 400 ..."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:  # 401 (and 503) from proseo.api.auth
                return error_page(request, exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                return error_page(request, status.HTTP_400_BAD_REQUEST, problems or str(exc))
            except ProseoError as exc:  # AccessDenied -> 403, NotFoundError -> 404 ...
                return error_page(request, status_of(exc), str(exc))

        return page


router = APIRouter(prefix="/ui", route_class=PageRoute, include_in_schema=False)

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]


def _pager(links: Callable[..., str], total: int, limit: int, offset: int, **params: Any) -> dict[str, Any]:
    """Paging facts and links for a page of ``total`` rows."""
    last = max(0, (total - 1) // limit * limit)
    return {
        "first": offset + 1 if total else 0,
        "last": min(offset + limit, total),
        "total": total,
        "limit": limit,
        "prev": links(**params, limit=limit, offset=max(0, offset - limit)) if offset > 0 else None,
        "next": links(**params, limit=limit, offset=offset + limit) if offset + limit < total else None,
        "start": links(**params, limit=limit) if offset > 0 else None,
        "end": links(**params, limit=limit, offset=last) if offset + limit < total else None,
    }


def progress(order: OrderSummary) -> dict[str, Any]:
    """Bar segments (state, count, percent, colour) in pipeline order, and the numbers."""
    counts = order.progress
    total = sum(counts.values())
    states = [s for s in BAR_ORDER if counts.get(s)] + sorted(
        s for s in counts if s not in BAR_ORDER and counts[s]
    )
    segments = [
        {"state": s, "count": counts[s], "percent": 100.0 * counts[s] / total, "colour": colour(s)}
        for s in states
    ]
    done = counts.get("COMPLETED", 0)
    return {
        "total": total,
        "completed": done,
        "percent": round(100.0 * done / total) if total else 0,
        "segments": segments,
        "text": ", ".join(f"{seg['count']} {seg['state'].lower().replace('_', ' ')}" for seg in segments),
    }


def _instant(value: str, name: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise ProseoError(f"{name}: {exc}") from None


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
        pager=_pager(links.orders, page.total, limit, offset, **filters),
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
        graph=_svg(bytes(graph.body).decode("utf-8")),
        steps=[d for d in details if d is not None],
        step_states=list(STATES[1:]),
        filters={"state": state.upper()},
        pager=_pager(
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
        window = (_instant(start, "start"), _instant(stop, "stop"))
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
            "pager": _pager(links.products, page.total, limit, offset, **filters),
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
        graph=_svg(to_svg(tree.to_graph())),
        depth=depth.strip(),
        forward=onwards,
    )


def install(app: FastAPI) -> None:
    """Add the pages to the /proseo app (called by :func:`proseo.api.app.create_app`)."""
    app.include_router(router)
