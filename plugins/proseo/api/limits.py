"""What the /proseo app refuses before doing any work: large bodies, NUL characters, huge numbers.

* :class:`BodyLimit` answers 413 as soon as a request body exceeds
  ``PROSEO_MAX_REQUEST_BYTES``: at once when ``Content-Length`` says so, otherwise
  (chunked bodies) after reading no more than the limit plus one chunk. Nothing
  behind it ever sees a body larger than the limit.
* :func:`reject_nul` refuses path and query parameters holding a NUL character
  (PostgreSQL cannot even compare with one) with a 422 that names the parameter.
* :data:`Offset` and :data:`Id` keep paging offsets and ids within 64 bits, the
  range both catalogue backends can bind.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proseo.text import MAX_INT64

Offset = Annotated[int, Query(ge=0, le=MAX_INT64, description="Rows to skip (at most 2**63-1).")]
Id = Annotated[int, Path(ge=1, le=MAX_INT64)]


class BodyLimit:
    """ASGI middleware: request bodies of at most ``max_bytes``, else 413 naming the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                chunks_then: list[Message] = [message]
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, None)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                chunks_then = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]
                break

        async def replay() -> Message:
            return chunks_then.pop(0) if chunks_then else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        said = f" (Content-Length {declared})" if declared is not None else ""
        detail = (
            f"request body larger than {self.max_bytes} bytes{said}: "
            "this server accepts no more (PROSEO_MAX_REQUEST_BYTES)"
        )
        response = JSONResponse(
            {"detail": detail, "error": "RequestTooLarge"}, status_code=413, headers={"Connection": "close"}
        )
        await response(scope, receive, send)


def reject_nul(request: Request) -> None:
    """Router dependency: 422 for a path or query parameter with a NUL character."""
    errors = [
        {
            "type": "string_nul",
            "loc": (where, name),
            "msg": f"NUL character at position {value.index(chr(0))}: text cannot contain NUL (\\0)",
            "input": value,
        }
        for where, items in (
            ("path", list(request.path_params.items())),
            ("query", request.query_params.multi_items()),
        )
        for name, value in items
        if isinstance(value, str) and "\x00" in value
    ]
    if errors:
        raise RequestValidationError(errors)
