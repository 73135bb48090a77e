"""The On-Demand Production Interface (ODIP): OData v4 under /proseo/odip/odata/v1.

An app of its own beside the PRIP's, sharing its pieces: OData's error body, the
OAuth2 token route (an ODIP client is an Airflow user), the catalogue and Airflow's
address (a cancel steers the order's DAG run like the REST API's cancel). Workflows
are read from the mission files (:mod:`proseo.interfaces.odip_workflows`); orders
live in :mod:`proseo.api.odip_orders`.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from proseo.api import odip_orders
from proseo.api.auth import CallerDep, CatalogDep, username
from proseo.api.odip_metadata import metadata_xml, service_document
from proseo.api.odip_orders import visible_missions
from proseo.api.prip import _odata_error, _token
from proseo.api.prip_products import prip_root
from proseo.catalog.access import Role
from proseo.errors import NotFoundError, ProseoError
from proseo.interfaces.odip_orders import mission_workflows

ROOT = "/odip/odata/v1"


def create_odip(parent: FastAPI) -> FastAPI:
    """The ODIP app, sharing the parent's catalogue and Airflow address; mount it at :data:`ROOT`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="proseo ODIP")
    app.state.catalog = parent.state.catalog
    app.state.airflow_url = getattr(parent.state, "airflow_url", None)
    app.add_exception_handler(ProseoError, _odata_error)

    @app.get("/", dependencies=[Depends(username)])
    def service(request: Request) -> JSONResponse:
        return JSONResponse(service_document(prip_root(request)))

    @app.get("/$metadata", dependencies=[Depends(username)])
    def metadata() -> Response:
        return Response(metadata_xml(), media_type="application/xml")

    @app.post("/oauth2/token")
    async def token(request: Request) -> JSONResponse:
        return _token(await request.body(), request.headers.get("authorization", ""))

    @app.get("/Workflows")
    def list_workflows(request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
        """Every workflow of the caller's missions."""
        with catalog.session() as session:
            found = mission_workflows(session, visible_missions(session, caller, Role.VIEWER))
        root = prip_root(request)
        return JSONResponse(
            {"@odata.context": f"{root}/$metadata#Workflows", "value": [w.entity() for w in found]}
        )

    @app.get("/Workflows({key})")
    def workflow(key: str, request: Request, caller: CallerDep, catalog: CatalogDep) -> JSONResponse:
        wanted = key.strip().strip("'")
        with catalog.session() as session:
            found = mission_workflows(session, visible_missions(session, caller, Role.VIEWER))
        match = next((w for w in found if wanted in (w.id, w.name)), None)
        if match is None:
            raise NotFoundError(f"Workflows({wanted[:80]}): no such workflow")
        root = prip_root(request)
        return JSONResponse({"@odata.context": f"{root}/$metadata#Workflows/$entity", **match.entity()})

    app.include_router(odip_orders.router)
    return app
