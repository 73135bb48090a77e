"""Our error tree as HTTP answers: every error keeps its message, which names the place.

Airflow refusing a steering call answers 403 when Airflow said 401/403 (the caller's
Airflow role), else 502; 503 when Airflow's address is not configured. Validation
errors (422) echo what was refused; NaN and infinity are echoed as text, since JSON
cannot carry them (FastAPI's own answer would fail with a 500).
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from proseo.api.airflow_client import AirflowApiError
from proseo.api.steering import AirflowNotConfigured
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
    (AirflowNotConfigured, 503),
    (ConfigError, 422),
    (RuleSyntaxError, 422),
    (OrderError, 422),
    (ProseoError, 400),
)


def status_of(exc: ProseoError) -> int:
    """The HTTP status of an error: its own ``http_status`` if it has one, else by class."""
    own = getattr(exc, "http_status", None)
    if isinstance(own, int):
        return own
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


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by its text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _finite(jsonable_encoder(exc.errors()))}, status_code=422)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ProseoError, _handle)
    app.add_exception_handler(RequestValidationError, _invalid)
