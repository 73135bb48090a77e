"""Our error tree as HTTP answers: every error keeps its message, which names the place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from proseo.api.airflow_client import AirflowApiError
from proseo.catalog.access import AccessDenied
from proseo.errors import (
    ConfigError,
    ConflictError,
    IllegalTransition,
    NotFoundError,
    OrderError,
    ProseoError,
    RuleSyntaxError,
    StorageNotFound,
)

#: First match wins, so subclasses come before their parents.
STATUS: tuple[tuple[type[ProseoError], int], ...] = (
    (AccessDenied, 403),
    (NotFoundError, 404),
    (StorageNotFound, 404),
    (IllegalTransition, 409),
    (ConflictError, 409),
    (AirflowApiError, 502),
    (ConfigError, 422),
    (RuleSyntaxError, 422),
    (OrderError, 422),
    (ProseoError, 400),
)


def status_of(exc: ProseoError) -> int:
    return next(code for cls, code in STATUS if isinstance(exc, cls))


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProseoError)
    body: dict[str, object] = {"detail": str(exc), "error": type(exc).__name__}
    for attr in ("mission", "order", "file", "url"):
        value = getattr(exc, attr, None)
        if value:
            body[attr] = value
    if isinstance(exc, ConfigError):
        body["issues"] = [str(i) for i in exc.issues]
    return JSONResponse(body, status_code=status_of(exc))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProseoError, _handle)
