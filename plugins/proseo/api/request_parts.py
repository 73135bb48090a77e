"""Reading a request's JSON body and its integer query options, shared by the PRIP
Subscriptions and the ODIP routes so both refuse the same mistakes the same way
(a :class:`~proseo.interfaces.request_fields.FieldError` naming ``body`` or the option)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from proseo.interfaces.request_fields import FieldError


async def json_body(request: Request, error: type[FieldError] = FieldError, *, empty: Any = None) -> Any:
    """The request's JSON (``empty`` when it has no body); not JSON is refused on ``body``."""
    raw = await request.body()
    if not raw:
        return empty
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error("body", f"not JSON: {exc}") from None


def count_option(
    params: Mapping[str, str],
    key: str,
    default: int,
    low: int,
    high: int,
    error: type[FieldError] = FieldError,
) -> int:
    """The integer query option ``key`` (``$top``, ``$skip``) from ``low`` to ``high``, else ``default``."""
    text = params.get(key)
    if text is None:
        return default
    if not text.strip().isdigit() or not low <= int(text) <= high:
        raise error(key, f"expected an integer from {low} to {high}, not {text[:20]!r}")
    return int(text)
