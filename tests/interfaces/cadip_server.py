"""A CADIP test server: downlink sessions whose blocks and QualityInfo are published late.

Not a product: it exists to test :mod:`proseo.interfaces.cadip` over real HTTP. A
:class:`CadipWorld` holds sessions, files and QualityInfo, each published at a *tick*;
only what was published at or before ``world.tick`` is visible, so a test moves time on
by setting the tick. Served by FastAPI under uvicorn in a thread (:func:`serve`).

What it understands (anything else is a 400, so a client sending more is caught):

- ``POST /oauth2/token`` (password grant) -> a bearer token, required on every GET;
- ``GET /Sessions`` and ``GET /Files`` with ``$filter`` as clauses joined by ``and``,
  each ``<Property> <eq|ne|gt|ge|lt|le> <'string' | instant | integer | true | false>``;
  ``$orderby=PublicationDate asc`` (the only order; also the default); ``$top``, ``$skip``;
  ``$expand=QualityInfo`` on Sessions; server-driven pages of ``page_size`` entities with
  ``@odata.nextLink`` carrying every option (``expand_in_lists=False``: lists ignore
  ``$expand``, as servers that expand single entities only);
- ``GET /Sessions(<Id>)`` with ``$expand=QualityInfo``; ``GET /Files(<Id>)/$value``.

``world.cut`` holds file Ids whose next download is cut off half-way (the connection
closes before the announced length); ``world.refused`` holds session Ids whose single
entity ``Sessions(<Id>)`` answers 503, ``world.listing_down`` makes the ``Sessions``
listing answer 503; ``world.downloads`` counts the downloads served.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

BASE = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def instant(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


@dataclass
class Entity:
    """One published thing: its JSON (without PublicationDate) and when it appears."""

    json: dict[str, Any]
    tick: int
    seq: int
    data: bytes = b""

    def published(self) -> datetime:
        return BASE + timedelta(minutes=self.tick, milliseconds=self.seq)

    def view(self) -> dict[str, Any]:
        return {**self.json, "PublicationDate": instant(self.published())}


@dataclass
class CadipWorld:
    tick: int = 0
    page_size: int = 2
    sessions: list[Entity] = field(default_factory=list)
    files: list[Entity] = field(default_factory=list)
    quality: list[Entity] = field(default_factory=list)
    cut: set[str] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)
    listing_down: bool = False
    downloads: int = 0
    user: str = "cadip"
    password: str = "secret"
    tokens: set[str] = field(default_factory=set)
    #: False: $expand=QualityInfo is honoured on single sessions only (as some servers do)
    expand_in_lists: bool = True

    def _seq(self) -> int:
        return len(self.sessions) + len(self.files) + len(self.quality)

    def add_session(
        self, session_id: str, *, satellite: str = "S5P", channels: int = 2, tick: int = 0
    ) -> str:
        start = BASE - timedelta(minutes=15)
        entity = {
            "Id": str(uuid.uuid4()),
            "SessionId": session_id,
            "NumChannels": channels,
            "Satellite": satellite,
            "StationUnitId": "01",
            "DownlinkOrbit": 37846,
            "AcquisitionId": "1",
            "AntennaId": "MSP21",
            "Retransfer": False,
            "DownlinkStart": instant(start),
            "DownlinkStop": instant(start + timedelta(minutes=10)),
            "DeliveryPushOK": True,
        }
        self.sessions.append(Entity(entity, tick, self._seq()))
        return str(entity["Id"])

    def add_block(
        self,
        session_id: str,
        channel: int,
        block: int,
        *,
        final: bool = False,
        tick: int = 0,
        size: int = 1000,
    ) -> Entity:
        data = hashlib.shake_256(f"{session_id}/{channel}/{block}".encode()).digest(size)
        name = f"DCS_01_{session_id}_ch{channel}_DSDB_{block:05d}.raw"
        entity = {
            "Id": str(uuid.uuid4()),
            "Name": name,
            "Channel": channel,
            "BlockNumber": block,
            "FinalBlock": final,
            "SessionId": session_id,
            "EvictionDate": instant(BASE + timedelta(days=7)),
            "Size": len(data),
            "Retransfer": False,
        }
        made = Entity(entity, tick, self._seq(), data)
        self.files.append(made)
        return made

    def add_quality(
        self,
        session_id: str,
        channel: int,
        *,
        tick: int = 0,
        chunks: int | None = None,
        volume: int | None = None,
    ) -> Entity:
        """QualityInfo with the totals of the channel's blocks (or the ones given)."""
        mine = [f for f in self.files if f.json["SessionId"] == session_id and f.json["Channel"] == channel]
        entity = {
            "SessionId": session_id,
            "Channel": channel,
            "DeliveryStart": instant(BASE),
            "DeliveryStop": instant(BASE + timedelta(minutes=tick + 1)),
            "TotalChunks": len(mine) if chunks is None else chunks,
            "TotalVolume": sum(len(f.data) for f in mine) if volume is None else volume,
        }
        made = Entity(entity, tick, self._seq())
        self.quality.append(made)
        return made

    def visible(self, entities: list[Entity]) -> list[Entity]:
        return [e for e in entities if e.tick <= self.tick]

    def session_view(self, entity: Entity, expand: bool) -> dict[str, Any]:
        out = entity.view()
        if expand:
            sid = entity.json["SessionId"]
            out["QualityInfo"] = [q.json for q in self.visible(self.quality) if q.json["SessionId"] == sid]
        return out


_CLAUSE = re.compile(r"(\w+) (eq|ne|gt|ge|lt|le) ('(?:[^']|'')*'|[\w:.\-+]+)")
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z")
_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if _INSTANT.fullmatch(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    if text in ("true", "false"):
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    raise HTTPException(400, f"unsupported literal {text!r}")


def matches(where: str | None, entity: dict[str, Any]) -> bool:
    """Whether the entity satisfies the (subset) $filter; anything outside the subset is a 400."""
    if not where:
        return True
    for clause in where.split(" and "):
        m = _CLAUSE.fullmatch(clause.strip())
        if m is None:
            raise HTTPException(400, f"unsupported $filter clause {clause!r}")
        prop, op, text = m.groups()
        if prop not in entity:
            raise HTTPException(400, f"unknown property {prop!r}")
        value, wanted = entity[prop], _literal(text)
        if isinstance(wanted, datetime):
            value = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if not _OPS[op](value, wanted):
            return False
    return True


def _collection(request: Request, world: CadipWorld, views: list[dict[str, Any]]) -> dict[str, Any]:
    q = request.query_params
    unknown = set(q) - {"$filter", "$orderby", "$top", "$skip", "$expand"}
    if unknown:
        raise HTTPException(400, f"unsupported options {sorted(unknown)}")
    if q.get("$orderby", "PublicationDate asc") != "PublicationDate asc":
        raise HTTPException(400, "only $orderby=PublicationDate asc")
    chosen = sorted((v for v in views if matches(q.get("$filter"), v)), key=lambda v: v["PublicationDate"])
    skip = int(q.get("$skip", 0))
    top = int(q["$top"]) if "$top" in q else None
    rest = chosen[skip:] if top is None else chosen[skip : skip + top]
    page = rest[: world.page_size]
    body: dict[str, Any] = {"value": page}
    if len(rest) > len(page):
        options = {k: v for k, v in q.items() if k not in ("$skip", "$top")}
        options["$skip"] = str(skip + len(page))
        if top is not None:
            options["$top"] = str(top - len(page))
        body["@odata.nextLink"] = (
            f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(options)}"
        )
    return body


def make_app(world: CadipWorld) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def bearer(request: Request, call_next: Any) -> Any:
        if request.url.path != "/oauth2/token":
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer ") or header[7:] not in world.tokens:
                return JSONResponse({"error": "unauthorised"}, status_code=401)
        return await call_next(request)

    @app.post("/oauth2/token")
    async def token(request: Request) -> Any:
        form = await request.form()
        if (form.get("grant_type"), form.get("username"), form.get("password")) != (
            "password",
            world.user,
            world.password,
        ):
            return JSONResponse({"error": "invalid_grant"}, status_code=401)
        issued = uuid.uuid4().hex
        world.tokens.add(issued)
        return {"access_token": issued, "token_type": "Bearer", "expires_in": 3600}

    @app.get("/Sessions")
    def sessions(request: Request) -> Any:
        expand = request.query_params.get("$expand")
        if world.listing_down:
            raise HTTPException(503, "unavailable")
        if expand not in (None, "QualityInfo"):
            raise HTTPException(400, "only $expand=QualityInfo")
        expanded = expand is not None and world.expand_in_lists
        views = [world.session_view(e, expanded) for e in world.visible(world.sessions)]
        return _collection(request, world, views)

    @app.get("/Sessions({entity_id})")
    def one_session(entity_id: str, request: Request) -> Any:
        expand = request.query_params.get("$expand")
        if entity_id in world.refused:
            raise HTTPException(503, "unavailable")
        for e in world.visible(world.sessions):
            if e.json["Id"] == entity_id:
                return world.session_view(e, expand == "QualityInfo")
        raise HTTPException(404, f"no session {entity_id}")

    @app.get("/Files")
    def files(request: Request) -> Any:
        return _collection(request, world, [e.view() for e in world.visible(world.files)])

    @app.get("/Files({file_id})/$value")
    def value(file_id: str) -> Response:
        found = [e for e in world.visible(world.files) if e.json["Id"] == file_id]
        if not found:
            raise HTTPException(404, f"no file {file_id}")
        data = found[0].data
        world.downloads += 1
        if file_id not in world.cut:
            return Response(data, media_type="application/octet-stream")
        world.cut.discard(file_id)

        async def half() -> AsyncIterator[bytes]:
            yield data[: len(data) // 2]  # then the connection closes short of Content-Length

        headers = {"Content-Length": str(len(data))}
        return StreamingResponse(half(), media_type="application/octet-stream", headers=headers)

    return app


@contextmanager
def serve(world: CadipWorld) -> Iterator[str]:
    """The world's CADIP over HTTP on a free local port; yields its root URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(make_app(world), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
