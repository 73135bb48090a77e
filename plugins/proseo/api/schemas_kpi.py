"""Response models of the timeliness KPIs, shared by the REST route and ``proseo kpi --format json``.

Plain pydantic over :class:`proseo.catalog.kpi.TimelinessReport` (no FastAPI, no
Airflow), so the CLI prints the document the API answers. Delays are seconds; instants
are ISO 8601 UTC.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from proseo.catalog.kpi import Aggregate, ProductDelay, Stats, TimelinessReport


class StatsOut(BaseModel):
    count: int
    min: float | None
    p50: float | None
    p95: float | None
    max: float | None


class AggregateOut(BaseModel):
    product_type: str
    mode: str | None
    bucket: datetime = Field(description="Start of the hour, day or month of publication (UTC).")
    count: int
    sensing_to_publication_s: StatsOut
    raw_to_publication_s: StatsOut
    with_deadline: int = Field(description="Products whose order had a deadline.")
    on_time: int
    on_time_ratio: float | None = Field(description="on_time / with_deadline; null without deadlines.")


class ProductDelayOut(BaseModel):
    id: int
    name: str | None
    product_type: str
    mode: str | None
    sensing_stop: datetime
    raw_available_at: datetime | None
    published: datetime
    sensing_to_publication_s: float
    raw_to_publication_s: float | None
    order: str | None
    timeliness: str | None
    deadline: datetime | None
    on_time: bool | None


class TimelinessOut(BaseModel):
    mission: str
    by: str
    total: int = Field(description="Products counted; the aggregates cover all of them.")
    limit: int | None = Field(description="Page size of `products` (null: products not asked for).")
    offset: int
    deadline_from: str | None = Field(description="sensing_stop or last_input (the mission's timeliness).")
    categories: dict[str, float] = Field(description="Timeliness category -> seconds until due.")
    aggregates: list[AggregateOut]
    products: list[ProductDelayOut]


def _stats(s: Stats) -> StatsOut:
    return StatsOut(count=s.count, min=s.min, p50=s.p50, p95=s.p95, max=s.max)


def aggregate_out(a: Aggregate) -> AggregateOut:
    return AggregateOut(
        product_type=a.product_type,
        mode=a.mode,
        bucket=a.bucket,
        count=a.count,
        sensing_to_publication_s=_stats(a.sensing_to_publication),
        raw_to_publication_s=_stats(a.raw_to_publication),
        with_deadline=a.with_deadline,
        on_time=a.on_time,
        on_time_ratio=a.on_time_ratio,
    )


def product_delay_out(d: ProductDelay) -> ProductDelayOut:
    return ProductDelayOut.model_validate(d, from_attributes=True)


def timeliness_out(report: TimelinessReport, *, limit: int | None = None, offset: int = 0) -> TimelinessOut:
    return TimelinessOut(
        mission=report.mission,
        by=report.by.value,
        total=report.total,
        limit=limit,
        offset=offset,
        deadline_from=report.deadline_from,
        categories=report.categories,
        aggregates=[aggregate_out(a) for a in report.aggregates],
        products=[product_delay_out(d) for d in report.products],
    )
