"""What the PRIP Subscriptions and the ODIP share in reading a client's request.

One error for a refused field (its ``option`` is the OData error body's ``target``, see
api/prip.py's handler), one reader of a text field, one reader of an entity key that must
be a UUID: the two interfaces answer the same mistake the same way.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from proseo.errors import ProseoError


class FieldError(ProseoError):
    """A refused request: names the field (or query option, or key) to fix."""

    http_status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.option = field  # the OData error body's target


def text_field(
    body: Mapping[str, Any],
    key: str,
    *,
    limit: int,
    required: bool = False,
    error: type[FieldError] = FieldError,
) -> str | None:
    """``body[key]``: None when absent, else a non-blank string of at most ``limit`` characters, no NUL."""
    value = body.get(key)
    if value is None:
        if required:
            raise error(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise error(key, f"expected non-blank text of at most {limit} characters, without NUL")
    return value


def uuid_key(key: str, entity: str, error: type[FieldError] = FieldError, field: str | None = None) -> str:
    """The UUID of ``<entity>(<key>)``, bare or quoted; refused naming ``field`` (else the entity)."""
    text = key.strip().strip("'")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        where = f"{entity}({key[:80]})"
        why = "the key must be an Id (a UUID)"
        raise error(field, f"{where}: {why}") if field else error(where, why) from None
