"""``proseo kpi timeliness``: how long products took from sensing and raw data to publication.

The same report as ``GET /proseo/api/v1/missions/{m}/kpi/timeliness`` (its JSON is the
API's document). With ``--products`` every product is listed with its delays, read a
page of :data:`proseo.catalog.kpi.MAX_PAGE` at a time (``--limit`` for fewer).
"""

from __future__ import annotations

from datetime import datetime

import click
from sqlalchemy.orm import Session

from proseo.api.schemas_kpi import timeliness_out
from proseo.catalog import kpi
from proseo.catalog.kpi import Bucket, KpiFilter, ProductDelay, human_duration
from proseo.cli.context import open_catalog
from proseo.cli.output import console, print_json, table
from proseo.errors import ProseoError
from proseo.missions.types import format_utc, parse_utc


@click.group("kpi")
def kpi_group() -> None:
    """Key performance indicators of production."""


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise ProseoError(f"{option}: {exc}") from exc


AGGREGATE_COLUMNS = ("count", "sensing min", "p50", "p95", "max", "raw p50", "p95", "max", "on time")
PRODUCT_COLUMNS = (
    *("id", "name", "class", "mode", "sensing stop", "raw available", "published", "sensing→pub"),
    *("raw→pub", "order", "timeliness", "deadline", "on time"),
)


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


@kpi_group.command("timeliness")
@click.option("--mission", "-m", required=True, help="Mission code.")
@click.option("--since", help="Products published at or after (ISO 8601 UTC).")
@click.option("--until", help="Products published before (ISO 8601 UTC).")
@click.option("--class", "classes", multiple=True, help="Product class (repeatable; default: all).")
@click.option("--by", type=click.Choice([b.value for b in Bucket]), default="day", show_default=True)
@click.option("--products", "with_products", is_flag=True, help="Also list every product with its delays.")
@click.option("--ingested", is_flag=True, help="Count ingested products too (their delay is zero).")
@click.option("--limit", type=click.IntRange(1), help="List at most this many products (default: all).")
@click.option("--offset", default=0, type=click.IntRange(0), help="Skip this many products.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_context
def timeliness(
    ctx: click.Context,
    mission: str,
    since: str | None,
    until: str | None,
    classes: tuple[str, ...],
    by: str,
    with_products: bool,
    ingested: bool,
    limit: int | None,
    offset: int,
    fmt: str,
) -> None:
    """Sensing-to-publication and raw-to-publication delays per class, mode and hour/day/month:
    count, min, p50, p95, max and the share published by the order's deadline."""
    f = KpiFilter(mission, classes, _time(since, "--since"), _time(until, "--until"), ingested)
    catalog = open_catalog(ctx)
    with catalog.session() as s:
        report = kpi.report(s, f, by=Bucket(by))
        if with_products:
            report.products = _all_products(s, f, limit, offset)
    if fmt == "json":
        print_json(timeliness_out(report, limit=limit, offset=offset).model_dump(mode="json"))
        return
    _print(report, with_products)


def _all_products(session: Session, f: KpiFilter, limit: int | None, offset: int) -> list[ProductDelay]:
    """Every product from ``offset`` (up to ``limit``), one bounded page at a time."""
    out: list[ProductDelay] = []
    while limit is None or len(out) < limit:
        want = kpi.MAX_PAGE if limit is None else min(kpi.MAX_PAGE, limit - len(out))
        page, total = kpi.product_delays(session, f, limit=want, offset=offset + len(out))
        out += page
        if not page or offset + len(out) >= total:
            break
    return out


def _print(report: kpi.TimelinessReport, with_products: bool) -> None:
    if report.categories:
        due = ", ".join(f"{k} {human_duration(v)}" for k, v in report.categories.items())
        console.print(f"{report.mission} timeliness (after {report.deadline_from}): {due}")
    table(
        f"{report.mission} timeliness per {report.by.value}: {report.total} products",
        ["class", "mode", report.by.value, *AGGREGATE_COLUMNS],
        [
            [
                a.product_type,
                a.mode or "",
                _bucket(a.bucket, report.by),
                a.count,
                *(human_duration(v) for v in (a.sensing_to_publication.min, a.sensing_to_publication.p50)),
                *(human_duration(v) for v in (a.sensing_to_publication.p95, a.sensing_to_publication.max)),
                *(human_duration(v) for v in (a.raw_to_publication.p50, a.raw_to_publication.p95)),
                human_duration(a.raw_to_publication.max),
                f"{a.on_time}/{a.with_deadline} {_ratio(a.on_time_ratio)}" if a.with_deadline else "",
            ]
            for a in report.aggregates
        ],
    )
    if with_products:
        table(
            f"{report.mission} products ({len(report.products)})",
            PRODUCT_COLUMNS,
            [
                [
                    d.id,
                    d.name,
                    d.product_type,
                    d.mode,
                    format_utc(d.sensing_stop),
                    format_utc(d.raw_available_at) if d.raw_available_at else "",
                    format_utc(d.published),
                    human_duration(d.sensing_to_publication_s),
                    human_duration(d.raw_to_publication_s),
                    d.order,
                    d.timeliness,
                    format_utc(d.deadline) if d.deadline else "",
                    {None: "", True: "yes", False: "LATE"}[d.on_time],
                ]
                for d in report.products
            ],
        )


BUCKET_FORMATS = {Bucket.HOUR: "%Y-%m-%dT%H:00Z", Bucket.DAY: "%Y-%m-%d", Bucket.MONTH: "%Y-%m"}


def _bucket(start: datetime, by: Bucket) -> str:
    return start.strftime(BUCKET_FORMATS[by])
