"""``/ui/kpi/{mission}``: timeliness of a mission's products, as pictures and a table.

The numbers are the REST route's (:mod:`proseo.api.routes_kpi`, the same
:func:`proseo.catalog.kpi.report`): the aggregates cover every product in the range;
the two pictures show the latest :data:`proseo.catalog.kpi.MAX_PAGE` products of it (a
bounded page), with a line per timeliness category of the mission. The delay drawn is
the one the mission's deadlines count from: sensing-to-publication, or raw-to-publication
when the mission's timeliness says ``deadline_from: last_input``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from proseo.api import routes_missions
from proseo.api.auth import CallerDep, CatalogDep
from proseo.api.limits import reject_nul
from proseo.catalog import kpi
from proseo.catalog.access import Role
from proseo.catalog.kpi import Bucket, KpiFilter
from proseo.errors import ProseoError
from proseo.ui.charts import histogram, latency_chart
from proseo.ui.render import Links, PageRoute, parse_instant, render

router = APIRouter(
    prefix="/ui", route_class=PageRoute, include_in_schema=False, dependencies=[Depends(reject_nul)]
)


@router.get("/kpi", response_class=HTMLResponse)
def kpi_home(request: Request, caller: CallerDep, catalog: CatalogDep) -> Response:
    """The first mission the caller may see (the navigation's link)."""
    missions = routes_missions.list_missions(caller=caller, catalog=catalog)
    if not missions:
        return render(
            request, "kpi.html", caller=caller, active="kpi", title="Timeliness", missions=[], report=None
        )
    target = Links(request.scope.get("root_path", "")).kpi(missions[0].code)
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


@router.get("/kpi/{mission}", response_class=HTMLResponse)
def kpi_page(
    request: Request,
    mission: str,
    caller: CallerDep,
    catalog: CatalogDep,
    since: str = "",
    until: str = "",
    product_type: str = "",
    by: str = "day",
) -> Response:
    caller.require(mission, Role.VIEWER)
    if by not in {b.value for b in Bucket}:
        raise ProseoError(f"by: expected hour, day or month, got {by!r}")
    f = KpiFilter(
        mission,
        (product_type,) if product_type else (),
        parse_instant(since, "since"),
        parse_instant(until, "until"),
    )
    with catalog.session() as session:
        report = kpi.report(session, f, by=Bucket(by))
        latest, _ = kpi.product_delays(
            session, f, limit=kpi.MAX_PAGE, offset=max(0, report.total - kpi.MAX_PAGE)
        )
    from_raw = report.deadline_from == "last_input"
    what = "raw-to-publication" if from_raw else "sensing-to-publication"
    delays = [(d.raw_to_publication_s if from_raw else d.sensing_to_publication_s) for d in latest]
    points = [(d.published, v, d.on_time) for d, v in zip(latest, delays, strict=True) if v is not None]
    classes = routes_missions.list_product_classes(mission=mission, caller=caller, catalog=catalog)
    return render(
        request,
        "kpi.html",
        caller=caller,
        active="kpi",
        title=f"{mission} timeliness",
        missions=routes_missions.list_missions(caller=caller, catalog=catalog),
        classes=classes,
        mission=mission,
        filters={"since": since.strip(), "until": until.strip(), "product_type": product_type, "by": by},
        buckets=[b.value for b in Bucket],
        report=report,
        shown=len(points),
        what=what,
        latency=latency_chart(points, report.categories, what) if points else None,
        histogram=histogram([p[1] for p in points], report.categories, what) if points else None,
        duration=kpi.human_duration,
        bucket_format={"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "month": "%Y-%m"}[by],
    )
