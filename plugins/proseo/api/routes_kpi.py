"""/kpi: timeliness of a mission's products (delays to publication, on-time ratio)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from proseo.api.auth import CallerDep, CatalogDep
from proseo.api.limits import Offset
from proseo.api.schemas_kpi import TimelinessOut, timeliness_out
from proseo.catalog import kpi
from proseo.catalog.access import Role
from proseo.catalog.kpi import Bucket, KpiError, KpiFilter

router = APIRouter(tags=["kpi"])


def _utc(value: datetime | None, name: str) -> datetime | None:
    """Aware UTC (naive means UTC); an instant beyond the calendar once in UTC is a 400."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise KpiError(f"query parameter {name}={value.isoformat()}: out of range in UTC") from exc


@router.get("/missions/{mission}/kpi/timeliness", response_model=TimelinessOut)
def timeliness(
    mission: str,
    caller: CallerDep,
    catalog: CatalogDep,
    since: Annotated[datetime | None, Query(description="Published at or after (UTC).")] = None,
    until: Annotated[datetime | None, Query(description="Published before (UTC).")] = None,
    product_class: Annotated[
        list[str] | None, Query(alias="class", description="Product class, repeatable (default: all).")
    ] = None,
    by: Bucket = Bucket.DAY,
    products: Annotated[bool, Query(description="Also list the products with their delays (paged).")] = False,
    ingested: Annotated[bool, Query(description="Count ingested products too (zero delay).")] = False,
    limit: Annotated[int, Query(ge=1, le=kpi.MAX_PAGE)] = 100,
    offset: Offset = 0,
) -> TimelinessOut:
    """Sensing-to-publication and raw-to-publication delays per class x mode x hour/day/month
    (count, min, p50, p95, max, on-time ratio), and with products=true a page of products
    in publication order, each with its delays, order, timeliness category and deadline."""
    caller.require(mission, Role.VIEWER)
    f = KpiFilter(mission, tuple(product_class or ()), _utc(since, "since"), _utc(until, "until"), ingested)
    with catalog.session() as session:
        report = kpi.report(session, f, by=by, products=products, limit=limit, offset=offset)
    return timeliness_out(report, limit=limit if products else None, offset=offset)
