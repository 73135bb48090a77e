"""Rendering for the pages: the Jinja2 environment, links, error pages, pagers and progress bars.

Kept apart from the routes (:mod:`proseo.ui.pages`) so a page's handler reads as "fetch
what the API would answer, then render"; everything here is about presentation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from proseo.api.auth import Caller
from proseo.api.errors import status_of
from proseo.api.schemas import OrderSummary
from proseo.errors import ProseoError
from proseo.missions.types import format_utc, parse_utc
from proseo.planning.graph import STATES, colour

HERE = Path(__file__).resolve().parent
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_LIMIT = 25

#: Order states on the step palette, so an order reads like the steps it rolls up.
ORDER_STATE_COLOURS: dict[str, str] = {
    "INITIAL": colour("PLANNED"),
    "APPROVED": colour("PLANNED"),
    "PLANNING": colour("READY"),
    "PLANNED": colour("PLANNED"),
    "PLANNING_FAILED": colour("FAILED"),
    "RELEASING": colour("READY"),
    "RELEASED": colour("READY"),
    "RUNNING": colour("RUNNING"),
    "SUSPENDING": colour("WAITING_INPUT"),
    "COMPLETED": colour("COMPLETED"),
    "FAILED": colour("FAILED"),
    "CLOSED": colour("SKIPPED"),
}

#: Progress bars fill from the left with what is done, then what runs, then what waits.
BAR_ORDER = ("COMPLETED", "FAILED", "SKIPPED", "RUNNING", "READY", "WAITING_INPUT", "PLANNED", "EXISTING")
assert set(BAR_ORDER) == set(STATES)

TITLES = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    422: "Cannot do that",
    503: "Not ready",
}


# --- rendering ---------------------------------------------------------------------------------


def _when(value: datetime | str | None) -> str:
    """``2025-03-01 08:00:00Z``: the instant in UTC to the second, readable in a table."""
    if value is None or value == "":
        return "—"
    text = format_utc(value) if isinstance(value, datetime) else str(value)
    return re.sub(r"\.\d+(?=Z$)", "", text).replace("T", " ")


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _css_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, size=_size, css=_css_name, colour=colour)
    env.globals.update(order_colour=lambda s: ORDER_STATE_COLOURS.get(s, colour(s)))
    return env


ENV = _environment()
CSS = Markup((HERE / "static" / "proseo.css").read_text(encoding="utf-8"))  # our own stylesheet


class Links:
    """Every URL a page shows, from the mount point of the app (``/proseo`` under Airflow)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/")

    @staticmethod
    def _q(params: Mapping[str, Any]) -> str:
        kept = {k: v for k, v in params.items() if v not in (None, "", False)}
        return "?" + urlencode(kept) if kept else ""

    @staticmethod
    def seg(text: object) -> str:
        return quote(str(text), safe="")

    def orders(self, **params: Any) -> str:
        return f"{self.root}/ui/orders{self._q(params)}"

    def order(self, mission: str, identifier: str, **params: Any) -> str:
        return f"{self.root}/ui/orders/{self.seg(mission)}/{self.seg(identifier)}{self._q(params)}"

    def products(self, **params: Any) -> str:
        return f"{self.root}/ui/products{self._q(params)}"

    def kpi(self, mission: str | None = None, **params: Any) -> str:
        where = f"/{self.seg(mission)}" if mission else ""
        return f"{self.root}/ui/kpi{where}{self._q(params)}"

    def campaigns(self, **params: Any) -> str:
        return f"{self.root}/ui/campaigns{self._q(params)}"

    def campaign(self, mission: str, name: str) -> str:
        return f"{self.root}/ui/campaigns/{self.seg(mission)}/{self.seg(name)}"

    def lineage(self, mission: str, ref: object, **params: Any) -> str:
        return f"{self.root}/ui/products/{self.seg(mission)}/{self.seg(ref)}/lineage{self._q(params)}"

    def api(self, path: str) -> str:
        return f"{self.root}/api/v1{path}"

    def api_order(self, mission: str, identifier: str, rest: str = "") -> str:
        return self.api(f"/missions/{self.seg(mission)}/orders/{self.seg(identifier)}{rest}")

    def step_log(self, mission: str, identifier: str, step_id: int) -> str:
        return self.api_order(mission, identifier, f"/job-steps/{step_id}/log")

    def step_json(self, mission: str, identifier: str, step_id: int) -> str:
        return self.api_order(mission, identifier, f"/job-steps/{step_id}")

    def download(self, mission: str, product_id: int, file_name: str) -> str:
        return self.api(f"/missions/{self.seg(mission)}/products/{product_id}/files/{self.seg(file_name)}")


def render(
    request: Request,
    template: str,
    *,
    caller: Caller | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    links = Links(request.scope.get("root_path", ""))
    roles = sorted((m, r.label) for m, r in caller.grants.by_mission.items()) if caller else []
    html = ENV.get_template(template).render(
        css=CSS, links=links, caller=caller, roles=roles, status_code=status_code, **context
    )
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


def error_page(
    request: Request, code: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    title = TITLES.get(code, "Error")
    hint = {
        401: "Open this page from Airflow's menu after signing in to Airflow (its token cookie "
        "authenticates these pages), or sign in again if the session expired.",
        403: "Ask a mission admin for a role on this mission (viewer is enough to look).",
    }.get(code, "")
    return render(
        request,
        "error.html",
        status_code=code,
        headers=headers,
        title=f"{code} {title}",
        detail=detail,
        hint=hint,
        active="",
    )


def svg_markup(picture: str) -> Markup:
    """A standalone SVG made inline: without its XML declaration (its text is escaped by to_svg)."""
    return Markup(re.sub(r"^\s*<\?xml[^>]*\?>\s*", "", picture))  # text escaped by graph.xml()


class PageRoute(APIRoute):
    """A route whose failures are HTML pages (the API's are JSON): 401, 403, 404, 400 ..."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as exc:  # 401 (and 503) from proseo.api.auth
                return error_page(request, exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                return error_page(request, status.HTTP_400_BAD_REQUEST, problems or str(exc))
            except ProseoError as exc:  # AccessDenied -> 403, NotFoundError -> 404 ...
                return error_page(request, status_of(exc), str(exc))

        return page


def pager(links: Callable[..., str], total: int, limit: int, offset: int, **params: Any) -> dict[str, Any]:
    """Paging facts and links for a page of ``total`` rows."""
    last = max(0, (total - 1) // limit * limit)
    return {
        "first": offset + 1 if total else 0,
        "last": min(offset + limit, total),
        "total": total,
        "limit": limit,
        "prev": links(**params, limit=limit, offset=max(0, offset - limit)) if offset > 0 else None,
        "next": links(**params, limit=limit, offset=offset + limit) if offset + limit < total else None,
        "start": links(**params, limit=limit) if offset > 0 else None,
        "end": links(**params, limit=limit, offset=last) if offset + limit < total else None,
    }


def progress(order: OrderSummary) -> dict[str, Any]:
    """Bar segments (state, count, percent, colour) in pipeline order, and the numbers."""
    counts = order.progress
    total = sum(counts.values())
    states = [s for s in BAR_ORDER if counts.get(s)] + sorted(
        s for s in counts if s not in BAR_ORDER and counts[s]
    )
    segments = [
        {"state": s, "count": counts[s], "percent": 100.0 * counts[s] / total, "colour": colour(s)}
        for s in states
    ]
    done = counts.get("COMPLETED", 0)
    return {
        "total": total,
        "completed": done,
        "percent": round(100.0 * done / total) if total else 0,
        "segments": segments,
        "text": ", ".join(f"{seg['count']} {seg['state'].lower().replace('_', ' ')}" for seg in segments),
    }


def parse_instant(value: str, name: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise ProseoError(f"{name}: {exc}") from None
