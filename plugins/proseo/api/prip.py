"""The Production Interface Delivery Point (PRIP, ESA-EOPG-EOPGC-IF-3): OData v4 under /proseo/prip/odata/v1.

A FastAPI app of its own, mounted into the /proseo app, because OData clients expect
OData's error body (``{"error": {"code", "message"}}``) rather than the REST API's,
and their own URL forms (``Products(<Id>)/$value``). Authentication is the REST API's
(Airflow's JWT); a caller sees the products of the missions they may view, nothing
else, and a product of another mission answers 404 as if it did not exist.
"""

from __future__ import annotations

import base64
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select

from proseo.api import prip_products, prip_subscriptions
from proseo.api.auth import Caller, CallerDep, CatalogDep, TokenRefused, issue_token, username
from proseo.api.downloads import file_response
from proseo.api.errors import status_of
from proseo.api.prip_metadata import metadata_xml, service_document
from proseo.api.prip_products import prip_root, product_uuid
from proseo.api.stored import stored_object
from proseo.catalog.access import Role
from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_product import Product, ProductFile
from proseo.errors import NotFoundError, ProseoError

ROOT = "/prip/odata/v1"


def create_prip(parent: FastAPI) -> FastAPI:
    """The PRIP app, sharing the parent's catalogue; mount it at :data:`ROOT`."""
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="proseo PRIP")
    app.state.catalog = parent.state.catalog
    app.add_exception_handler(ProseoError, _odata_error)

    @app.get("/", dependencies=[Depends(username)])
    def service(request: Request) -> JSONResponse:
        return JSONResponse(service_document(prip_root(request)))

    @app.get("/$metadata", dependencies=[Depends(username)])
    def metadata() -> Response:
        return Response(metadata_xml(), media_type="application/xml")

    app.include_router(prip_products.router)
    app.include_router(prip_subscriptions.router)

    @app.post("/oauth2/token")
    async def token(request: Request) -> JSONResponse:
        return _token(await request.body(), request.headers.get("authorization", ""))

    @app.get("/Products({key})/$value")
    def value(
        key: str, caller: CallerDep, catalog: CatalogDep, range: Annotated[str | None, Header()] = None
    ) -> Response:
        return _download(key, caller, catalog, range)

    return app


#: How long a PRIP token lasts (the ICD's access note: 3,600 s).
TOKEN_SECONDS = 3600


def _token(body: bytes, authorization: str) -> JSONResponse:
    """OAuth2 (RFC 6749) token endpoint: the password and client-credentials grants.

    Both end in the same check, Airflow's auth manager's, so a PRIP client is simply an
    Airflow user (a client's id and secret are its user name and password, sent in the
    form or by HTTP Basic); the token is an Airflow JWT like every other /proseo caller's.
    """
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant = form.get("grant_type", "")
    if grant == "password":
        user, password = form.get("username", ""), form.get("password", "")
    elif grant == "client_credentials":
        user, password = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic" and value:
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return _oauth_error(
                    401, "invalid_client", "the Basic credentials are not base64 of id:secret"
                )
    else:
        shown = repr(grant[:40]) if grant else "none"
        return _oauth_error(
            400, "unsupported_grant_type", f"grant_type {shown}: password or client_credentials"
        )
    try:
        access = issue_token(user, password, expires_in=TOKEN_SECONDS)
    except TokenRefused as exc:
        if exc.status_code == 401:
            code = "invalid_client" if grant == "client_credentials" else "invalid_grant"
            return _oauth_error(400 if code == "invalid_grant" else 401, code, str(exc))
        return _oauth_error(exc.status_code, "invalid_request", str(exc))
    return JSONResponse(
        {"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _oauth_error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def _download(key: str, caller: Caller, catalog: Catalog, header: str | None) -> Response:
    wanted = product_uuid(key)
    with catalog.session() as session:
        row = session.execute(
            select(Product.id, Mission.code)
            .join(Mission, Mission.id == Product.mission_id)
            .where(Product.uuid == wanted)
        ).first()
        if row is None or not caller.grants.allows(row[1], Role.VIEWER):
            raise NotFoundError(f"Products({wanted}): no such product")
        f = session.scalars(
            select(ProductFile).where(ProductFile.product_id == row[0]).order_by(ProductFile.id)
        ).first()
        if f is None:
            raise NotFoundError(f"Products({wanted}): the product has no file")
        storage, stored_key = stored_object(session, f.facility_id, f.storage_url)
        size, name, md5, sha256 = f.size, f.file_name, f.md5, f.sha256
    return file_response(
        storage,
        stored_key,
        size,
        name,
        header,
        {
            # The whole file's digests (RFC 9530), whatever range is sent: a client checks
            # the file it reassembled; MD5 is the ICD's Checksum algorithm.
            "Repr-Digest": f"sha-256=:{_b64(sha256)}:",
            "X-Checksum-MD5": md5,
            "X-Checksum-SHA256": sha256,
        },
    )


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


async def _odata_error(request: Request, exc: Exception) -> JSONResponse:
    """OData's error body; the status as the REST API would answer it (400 for a bad query)."""
    assert isinstance(exc, ProseoError)
    code = status_of(exc)
    error: dict[str, object] = {"code": type(exc).__name__, "message": str(exc)}
    option = getattr(exc, "option", None)
    if isinstance(option, str):  # a query option that did not parse: where, as OData's target
        error["target"] = option
        if isinstance(getattr(exc, "offset", None), int):
            error["offset"] = exc.offset  # type: ignore[attr-defined]
    body = {"error": error}
    return JSONResponse(body, status_code=code)
