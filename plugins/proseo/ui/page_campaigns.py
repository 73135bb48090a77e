"""``/ui/campaigns``: reprocessing campaigns, their progress and a class x unit heat map of gaps.

The numbers are the REST routes' (:mod:`proseo.api.routes_campaigns`: the same
progress and gap report of the core); the heat map is drawn on the server
(:mod:`proseo.ui.charts_campaign`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from proseo.api.auth import CallerDep, CatalogDep
from proseo.api.limits import reject_nul
from proseo.api.routes_campaigns import list_campaigns
from proseo.catalog.access import Role
from proseo.planning import campaign as camp
from proseo.planning.campaign_gaps import gap_report
from proseo.planning.campaign_progress import Progress, progress
from proseo.ui.charts_campaign import gap_heatmap
from proseo.ui.render import PageRoute, render

router = APIRouter(
    prefix="/ui", route_class=PageRoute, include_in_schema=False, dependencies=[Depends(reject_nul)]
)
#: Gaps listed on the page (the heat map and the counts cover all of them).
LISTED = 200
COLOURS = {"COMPLETED": "#17803d", "FAILED": "#b42318", "ACTIVE": "#0b63c5", "NOT STARTED": "#cbd2d9"}


def bar(p: Progress) -> dict[str, Any]:
    """The campaign's bar in the shape of the orders' bars: completed, failed, active, not started."""
    counts = {
        "COMPLETED": p.completed,
        "FAILED": p.failed,
        "ACTIVE": p.active,
        "NOT STARTED": max(p.parts - p.completed - p.failed - p.active, 0),
    }
    total = p.parts
    segments = [
        {"state": s, "count": n, "percent": 100.0 * n / total, "colour": COLOURS[s]}
        for s, n in counts.items()
        if n and total
    ]
    return {
        "total": total,
        "completed": p.completed,
        "percent": round(100.0 * p.fraction),
        "segments": segments,
        "text": ", ".join(f"{n} {s.lower()}" for s, n in counts.items() if n and total),
    }


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns_page(request: Request, caller: CallerDep, catalog: CatalogDep, mission: str = "") -> Response:
    page = list_campaigns(caller=caller, catalog=catalog, mission=mission or None, limit=1000, offset=0)
    rows = []
    with catalog.session() as session:
        for c in page.items:
            rows.append((c, bar(progress(session, c.mission, c.name))))
    return render(request, "campaigns.html", caller=caller, active="campaigns", title="Campaigns", rows=rows)


@router.get("/campaigns/{mission}/{name}", response_class=HTMLResponse)
def campaign_page(
    request: Request, mission: str, name: str, caller: CallerDep, catalog: CatalogDep
) -> Response:
    caller.require(mission, Role.VIEWER)
    with catalog.session() as session:
        c = camp.get_campaign(session, mission, name)
        spec = camp.spec_of(c)
        p = progress(session, mission, name)
        report = gap_report(session, mission, name)
        state_message = c.state_message
    units = list(dict.fromkeys(cell.unit for cell in report.cells))
    return render(
        request,
        "campaign.html",
        caller=caller,
        active="campaigns",
        title=f"{mission}/{name}",
        mission=mission,
        name=name,
        spec=spec,
        state_message=state_message,
        progress=p,
        bar=bar(p),
        report=report,
        heatmap=gap_heatmap(report.cells, units, list(spec.requested_classes)),
        gaps=report.gaps[:LISTED],
        listed=LISTED,
    )
