"""The /proseo FastAPI app that Airflow's API server mounts from our plugin.

``/proseo/api/v1/...`` is the REST API (OpenAPI at ``/proseo/openapi.json``, docs
at ``/proseo/docs``); the pages under ``/proseo/ui/`` are added by
:mod:`proseo.ui`. Every route, the OpenAPI document included, needs Airflow's JWT
(see :mod:`proseo.api.auth`).

The catalogue is opened lazily, on the first request, from ``PROSEO_CATALOG_URL``
(or the URL given to :func:`create_app`), so importing the plugin in the scheduler
or a worker costs no database connection.

Every request passes :mod:`proseo.api.limits` first: bodies beyond
``PROSEO_MAX_REQUEST_BYTES`` are refused (413) before they are read, path and query
parameters with NUL characters too (422).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from proseo.api import (
    errors,
    routes_campaigns,
    routes_kpi,
    routes_missions,
    routes_orders,
    routes_products,
)
from proseo.api.auth import username
from proseo.api.limits import BodyLimit, reject_nul
from proseo.api.odip import ROOT as ODIP_ROOT
from proseo.api.odip import create_odip
from proseo.api.prip import ROOT as PRIP_ROOT
from proseo.api.prip import create_prip
from proseo.catalog.db import Catalog
from proseo.settings import get_settings

API_PREFIX = "/api/v1"


def _lazy_catalog(url: str | None) -> Callable[[], Catalog]:
    lock = threading.Lock()
    made: list[Catalog] = []

    def get() -> Catalog:
        if not made:
            with lock:
                if not made:
                    made.append(Catalog(url))
        return made[0]

    return get


def create_app(
    *, catalog_url: str | None = None, airflow_url: str | None = None, max_request_bytes: int | None = None
) -> FastAPI:
    """The app.

    ``airflow_url``: Airflow's base URL, where order runs are steered with the caller's
    token (the plugin passes Airflow's own); None = ``PROSEO_AIRFLOW_URL``, read when a
    run is steered; "" = never steer (tests without Airflow). Never taken from a
    request: its Host header is the client's to forge.
    ``max_request_bytes``: largest request body; None = ``PROSEO_MAX_REQUEST_BYTES``.
    """
    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        title="proseo",
        version="1",
        summary="Processing orders, product catalogue and lineage of proseo missions.",
        description=(
            "Authenticate with Airflow's JWT (`POST /auth/token`) as a Bearer token. "
            "What a user may do per mission (viewer, operator, admin) is kept in the proseo catalogue."
        ),
    )
    app.state.catalog = _lazy_catalog(catalog_url)
    app.state.airflow_url = airflow_url
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes or get_settings().max_request_bytes)
    errors.install(app)
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(reject_nul)])
    for module in (routes_missions, routes_orders, routes_products, routes_kpi, routes_campaigns):
        api.include_router(module.router)
    app.include_router(api)

    # The PRIP speaks OData (its own URL forms and error body): an app of its own.
    app.mount(PRIP_ROOT, create_prip(app))
    app.mount(ODIP_ROOT, create_odip(app))

    # OpenAPI and its docs page need a token like everything else (the UI's cookie does).
    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(username)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(username)])
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title="proseo API")

    try:
        from proseo.ui.pages import install as install_pages
    except ImportError:  # pragma: no cover - the pages ship with the package
        pass
    else:
        install_pages(app)
    return app
