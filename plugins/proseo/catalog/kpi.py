"""Timeliness KPIs: how long products took from sensing (and from raw data) to publication.

Publication is when a product was catalogued (``product.created_at``). Per product:
sensing-to-publication (from the end of validity) and raw-to-publication (from
``raw_available_at``), the timeliness category and deadline of the order that made it,
and whether it was published by that deadline. Aggregates are per product class x mode x
bucket of publication time (hour, day or month, UTC): count, min, p50, p95, max of both
delays and the on-time ratio over the products that had a deadline.

One portable computation: the rows are read with one streamed statement and the
statistics computed here (percentiles by linear interpolation, as PostgreSQL's
``percentile_cont``), so SQLite and PostgreSQL give the same numbers to the microsecond.
The work is bounded: the per-product list is a page (at most :data:`MAX_PAGE` rows), the
aggregates refuse more than :data:`MAX_AGGREGATE_ROWS` products (narrow the time range).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, String, func, literal, select
from sqlalchemy.orm import Session

from proseo.catalog.mission_sync import get_mission, revision_config
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile, ProductStatus
from proseo.errors import NotFoundError, ProseoError

#: Largest page of the per-product list.
MAX_PAGE = 1000
#: Most products one aggregate report reads (about 100 bytes each in memory).
MAX_AGGREGATE_ROWS = 1_000_000


class Bucket(StrEnum):
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class KpiError(ProseoError):
    """A KPI request that cannot be answered as asked (bad range, too many products)."""


@dataclass(frozen=True)
class KpiFilter:
    """Which products count: a mission, optionally some classes, a publication range [since, until)."""

    mission: str
    classes: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    include_ingested: bool = False  # ingested products are published when their raw data is


@dataclass(frozen=True)
class ProductDelay:
    id: int
    name: str | None  # the first file's name
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
    on_time: bool | None  # None: no deadline


@dataclass(frozen=True)
class Stats:
    """count, min, p50, p95, max of delays in seconds (None for an empty set)."""

    count: int
    min: float | None
    p50: float | None
    p95: float | None
    max: float | None


@dataclass(frozen=True)
class Aggregate:
    product_type: str
    mode: str | None
    bucket: datetime  # start of the hour, day or month (UTC)
    count: int
    sensing_to_publication: Stats
    raw_to_publication: Stats
    with_deadline: int
    on_time: int

    @property
    def on_time_ratio(self) -> float | None:
        return self.on_time / self.with_deadline if self.with_deadline else None


@dataclass
class TimelinessReport:
    """What the CLI, the REST route and the page show: aggregates, one page of products, categories."""

    mission: str
    by: Bucket
    aggregates: list[Aggregate]
    products: list[ProductDelay] = field(default_factory=list)
    total: int = 0  # products counted (the aggregates cover all of them)
    deadline_from: str | None = None  # the mission's timeliness: sensing_stop or last_input
    categories: dict[str, float] = field(default_factory=dict)  # name -> seconds after deadline_from


def percentile(ordered: Sequence[float], q: float) -> float:
    """``percentile_cont(q)`` of sorted values: linear interpolation between closest ranks."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats(0, None, None, None, None)
    ordered = sorted(values)
    return Stats(len(ordered), ordered[0], percentile(ordered, 0.5), percentile(ordered, 0.95), ordered[-1])


def bucket_start(instant: datetime, by: Bucket) -> datetime:
    instant = instant.astimezone(UTC)
    if by is Bucket.HOUR:
        return instant.replace(minute=0, second=0, microsecond=0)
    if by is Bucket.DAY:
        return instant.replace(hour=0, minute=0, second=0, microsecond=0)
    return instant.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def human_duration(seconds: float | None) -> str:
    """``1h02m03s`` (sign kept, sub-second rounded), for people; JSON keeps seconds."""
    if seconds is None:
        return ""
    sign, total = ("-" if seconds < 0 else ""), round(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours:02d}h{minutes:02d}m"
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{secs:02d}s"
    return f"{sign}{minutes}m{secs:02d}s" if minutes else f"{sign}{secs}s"


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else (later - earlier).total_seconds()


def _rows(session: Session, f: KpiFilter, *, named: bool = False) -> Select[Any]:
    """The products that count with their class and order (and, if ``named``, their first file's
    name: a subquery per row, so only for a page)."""
    if f.since is not None and f.until is not None and f.since >= f.until:
        raise KpiError(f"mission {f.mission}: since ({f.since}) must be before until ({f.until})")
    mission = get_mission(session, f.mission)
    if f.classes:
        known = set(
            session.scalars(
                select(ProductClass.product_type).where(
                    ProductClass.mission_id == mission.id, ProductClass.product_type.in_(f.classes)
                )
            )
        )
        unknown = [c for c in f.classes if c not in known]
        if unknown:
            raise NotFoundError(f"mission {f.mission}: no product class {', '.join(map(repr, unknown))}")
    name = (
        select(func.min(ProductFile.file_name))
        .where(ProductFile.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
        if named
        else literal(None, String)
    )
    query = (
        select(
            Product.id,
            name,
            ProductClass.product_type,
            Product.mode,
            Product.sensing_stop,
            Product.raw_available_at,
            Product.created_at,
            ProcessingOrder.identifier,
            ProcessingOrder.timeliness,
            ProcessingOrder.deadline,
        )
        .join(ProductClass, ProductClass.id == Product.product_class_id)
        .outerjoin(JobStep, JobStep.id == Product.job_step_id)
        .outerjoin(Job, Job.id == JobStep.job_id)
        .outerjoin(ProcessingOrder, ProcessingOrder.id == Job.order_id)
        .where(Product.mission_id == mission.id, Product.status != ProductStatus.PLANNED.value)
    )
    if not f.include_ingested:
        query = query.where(Product.job_step_id.is_not(None))
    if f.classes:
        query = query.where(ProductClass.product_type.in_(f.classes))
    if f.since is not None:
        query = query.where(Product.created_at >= f.since)
    if f.until is not None:
        query = query.where(Product.created_at < f.until)
    return query


def _delay(row: Any) -> ProductDelay:
    pid, name, ptype, mode, stop, raw, published, order, category, deadline = row
    sensing = _seconds(published, stop)
    assert sensing is not None
    return ProductDelay(
        id=pid,
        name=name,
        product_type=ptype,
        mode=mode,
        sensing_stop=stop,
        raw_available_at=raw,
        published=published,
        sensing_to_publication_s=sensing,
        raw_to_publication_s=_seconds(published, raw),
        order=order,
        timeliness=category,
        deadline=deadline,
        on_time=None if deadline is None else published <= deadline,
    )


def product_delays(
    session: Session, f: KpiFilter, *, limit: int = 100, offset: int = 0
) -> tuple[list[ProductDelay], int]:
    """One page of products in publication order, and how many there are in all."""
    if not 1 <= limit <= MAX_PAGE:
        raise KpiError(f"mission {f.mission}: limit must be between 1 and {MAX_PAGE}, not {limit}")
    counted = _rows(session, f).with_only_columns(Product.id)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    query = _rows(session, f, named=True)
    page = session.execute(query.order_by(Product.created_at, Product.id).limit(limit).offset(offset))
    return [_delay(r) for r in page], int(total)


def aggregates(session: Session, f: KpiFilter, by: Bucket = Bucket.DAY) -> tuple[list[Aggregate], int]:
    """Statistics per class x mode x bucket of publication time, and the number of products."""
    groups: dict[tuple[str, str, datetime], tuple[list[float], list[float], list[bool]]] = {}
    modes: dict[str, str | None] = {}
    seen = 0
    for row in session.execute(_rows(session, f).execution_options(yield_per=5000)):
        seen += 1
        if seen > MAX_AGGREGATE_ROWS:
            raise KpiError(
                f"mission {f.mission}: more than {MAX_AGGREGATE_ROWS} products in the range; "
                "narrow it with since/until or classes"
            )
        d = _delay(row)
        key = (d.product_type, d.mode or "", bucket_start(d.published, by))
        modes[d.mode or ""] = d.mode
        sensing, raw, on_time = groups.setdefault(key, ([], [], []))
        sensing.append(d.sensing_to_publication_s)
        if d.raw_to_publication_s is not None:
            raw.append(d.raw_to_publication_s)
        if d.on_time is not None:
            on_time.append(d.on_time)
    out = [
        Aggregate(
            product_type=ptype,
            mode=modes[mode],
            bucket=start,
            count=len(sensing),
            sensing_to_publication=stats(sensing),
            raw_to_publication=stats(raw),
            with_deadline=len(on_time),
            on_time=sum(on_time),
        )
        for (ptype, mode, start), (sensing, raw, on_time) in sorted(groups.items())
    ]
    return out, seen


def report(
    session: Session,
    f: KpiFilter,
    *,
    by: Bucket = Bucket.DAY,
    products: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> TimelinessReport:
    """The aggregates, with a page of products if asked, and the mission's timeliness categories."""
    found, total = aggregates(session, f, by)
    out = TimelinessReport(mission=f.mission, by=by, aggregates=found, total=total)
    if products:
        out.products, out.total = product_delays(session, f, limit=limit, offset=offset)
    _, config = revision_config(session, f.mission)
    if config.timeliness is not None:
        out.deadline_from = config.timeliness.deadline_from.value
        out.categories = {k: v.total_seconds() for k, v in config.timeliness.categories.items()}
    return out
