"""Who is calling: Airflow's own JWT, checked by whatever auth manager Airflow runs.

Every /proseo route depends on :func:`caller`. The token comes from the
``Authorization: Bearer`` header (scripts, the CLI) or from Airflow's ``_token``
cookie (our pages opened from Airflow's UI). No token, or one the auth manager
does not accept (bad signature, expired, revoked), answers 401 with
``WWW-Authenticate: Bearer``; what the user may do per mission is then read from the
catalogue's role table (:mod:`proseo.catalog.access`) and refused with 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from proseo.catalog.access import Grants, Role, grants_of
from proseo.catalog.db import Catalog

TOKEN_COOKIE = "_token"  # Airflow's UI keeps its JWT in this cookie


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


async def username(request: Request) -> str:
    """The authenticated user's name, or 401."""
    token = _token(request)
    if not token:
        raise _unauthorized("not authenticated: send Airflow's JWT (POST /auth/token) as a Bearer token")
    from airflow.api_fastapi.app import get_auth_manager

    try:
        manager = get_auth_manager()
    except RuntimeError as exc:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"Airflow auth manager not ready: {exc}"
        ) from exc
    try:
        user = await manager.get_user_from_token(token)
    except Exception as exc:  # expired, bad signature, revoked, malformed: all mean "not authenticated"
        raise _unauthorized(f"invalid token: {type(exc).__name__}: {exc}") from exc
    return str(user.get_name())


def catalog_of(request: Request) -> Catalog:
    return request.app.state.catalog()


@dataclass(frozen=True)
class Caller:
    """The authenticated user and the roles they hold, read once per request."""

    name: str
    grants: Grants
    token: str | None

    def require(self, mission: str, needed: Role) -> None:
        self.grants.require(mission, needed)


def caller(
    request: Request,
    name: Annotated[str, Depends(username)],
    catalog: Annotated[Catalog, Depends(catalog_of)],
) -> Caller:
    with catalog.session() as session:
        grants = grants_of(session, name)
    return Caller(name, grants, _token(request))


CallerDep = Annotated[Caller, Depends(caller)]
CatalogDep = Annotated[Catalog, Depends(catalog_of)]


class TokenRefused(Exception):
    """Credentials the auth manager did not accept (``status``: 400 malformed, 401 wrong)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code


def issue_token(user: str, password: str, *, expires_in: int) -> str:
    """A JWT of Airflow's auth manager for a user name and password (the PRIP's OAuth2 route).

    Airflow's SimpleAuthManager checks the password in process, as its own ``/auth/token``
    does; any other auth manager is asked through Airflow's ``POST /auth/token`` at
    ``PROSEO_AIRFLOW_URL`` (every auth manager that issues tokens answers there).
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.datamodels.login import LoginBody
    from airflow.api_fastapi.auth.managers.simple.services.login import SimpleAuthManagerLogin
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    if not user or not password:
        raise TokenRefused(400, "a user name (or client_id) and a password (or client_secret) are needed")
    if isinstance(get_auth_manager(), SimpleAuthManager):
        try:
            return str(
                SimpleAuthManagerLogin.create_token(
                    LoginBody(username=user, password=password), expiration_time_in_seconds=expires_in
                )
            )
        except HTTPException as exc:
            raise TokenRefused(exc.status_code, str(exc.detail)) from exc
    from proseo.api.airflow_client import AirflowApiError, AirflowClient
    from proseo.settings import get_settings

    url = get_settings().airflow_url
    if not url:
        raise TokenRefused(503, "tokens come from Airflow's /auth/token: set PROSEO_AIRFLOW_URL")
    try:
        return AirflowClient(url, username=user, password=password).bearer()
    except AirflowApiError as exc:
        raise TokenRefused(exc.status or 502, str(exc)) from exc
