"""Timeliness KPIs on both backends, over products registered for real with known delays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from proseo.catalog import kpi
from proseo.catalog.db import Catalog
from proseo.catalog.kpi import Bucket, KpiError, KpiFilter
from proseo.catalog.model_order import ProcessingOrder
from proseo.errors import NotFoundError
from tests_kpi import DAY, DEADLINE, DELAYS, INGESTED_AT, KpiWorld, kpi_world


@pytest.fixture
def world(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> KpiWorld:
    return kpi_world(catalog, tmp_path)


def test_each_produced_product_has_its_delays_and_deadline(world: KpiWorld) -> None:
    with world.catalog.session() as s:
        rows, total = kpi.product_delays(s, KpiFilter("SKY"))
    assert total == 4 and len(rows) == 4
    assert [r.published for r in rows] == sorted(r.published for r in rows)
    by_id = {r.id: r for r in rows}
    for key, pid in world.products.items():
        row = by_id[pid]
        assert (row.product_type, row.mode) == (key[0], "NIGHTLY")
        assert row.sensing_stop == world.sensing_stop[key]
        assert (row.sensing_to_publication_s, row.raw_to_publication_s) == DELAYS[key]
        assert (row.order, row.timeliness, row.deadline) == ("kpi-1", "NRT", DEADLINE)
        assert row.on_time is (row.published <= DEADLINE)
        assert row.name is not None and row.name.startswith("SKY_NIGHTLY_" + key[0])
    assert [by_id[world.products[k]].on_time for k in sorted(DELAYS)] == [True, True, True, False]


def test_paging_and_filters(world: KpiWorld) -> None:
    with world.catalog.session() as s:
        first, total = kpi.product_delays(s, KpiFilter("SKY"), limit=3)
        rest, _ = kpi.product_delays(s, KpiFilter("SKY"), limit=3, offset=3)
        assert total == 4 and len(first) == 3 and len(rest) == 1
        assert {r.id for r in first + rest} == set(world.products.values())
        only_r, n = kpi.product_delays(s, KpiFilter("SKY", classes=("CALEXP_R",)))
        assert n == 2 and {r.product_type for r in only_r} == {"CALEXP_R"}
        late, n = kpi.product_delays(s, KpiFilter("SKY", since=DAY + timedelta(days=2)))
        assert n == 2 and {r.id for r in late} == {
            world.products[("CALEXP_G", 1)],
            world.products[("CALEXP_R", 1)],
        }
        early, n = kpi.product_delays(s, KpiFilter("SKY", until=DAY + timedelta(days=2)))
        assert n == 2 and {r.sensing_stop for r in early} == {DAY + timedelta(days=1)}
        # Ingested products are left out unless asked for; theirs are catalogued when available.
        everything, n = kpi.product_delays(s, KpiFilter("SKY", include_ingested=True), limit=1000)
        assert n == 4 + world.ingested
        ingested = [r for r in everything if r.order is None]
        assert len(ingested) == world.ingested
        assert all(r.raw_to_publication_s == 0.0 and r.on_time is None for r in ingested)
        assert all(r.published == INGESTED_AT for r in ingested)


def test_aggregates_per_day_and_per_month(world: KpiWorld) -> None:
    with world.catalog.session() as s:
        daily, total = kpi.aggregates(s, KpiFilter("SKY"), Bucket.DAY)
        monthly, _ = kpi.aggregates(s, KpiFilter("SKY"), Bucket.MONTH)
        hourly, _ = kpi.aggregates(s, KpiFilter("SKY"), Bucket.HOUR)
    assert total == 4
    assert [(a.product_type, a.mode, a.bucket, a.count) for a in daily] == [
        ("CALEXP_G", "NIGHTLY", DAY + timedelta(days=1), 1),
        ("CALEXP_G", "NIGHTLY", DAY + timedelta(days=2), 1),
        ("CALEXP_R", "NIGHTLY", DAY + timedelta(days=1), 1),
        ("CALEXP_R", "NIGHTLY", DAY + timedelta(days=2), 1),
    ]
    assert [a.on_time_ratio for a in daily] == [1.0, 1.0, 1.0, 0.0]
    assert [a.bucket.hour for a in hourly] == [1, 1, 0, 2]
    g, r = monthly
    assert (g.bucket, g.count, r.count) == (DAY, 2, 2)
    # Two values: p50 is their mean, p95 interpolates 95 % of the way (percentile_cont).
    assert g.sensing_to_publication == kpi.Stats(2, 3600.0, 4500.0, 3600.0 + 0.95 * 1800.0, 5400.0)
    assert g.raw_to_publication == kpi.Stats(2, 600.0, 900.0, 600.0 + 0.95 * 600.0, 1200.0)
    assert (r.sensing_to_publication.min, r.sensing_to_publication.max) == (1800.0, 9000.0)
    assert (g.with_deadline, g.on_time, g.on_time_ratio) == (2, 2, 1.0)
    assert (r.with_deadline, r.on_time, r.on_time_ratio) == (2, 1, 0.5)


def test_without_a_deadline_there_is_no_ratio(world: KpiWorld) -> None:
    with world.catalog.session() as s:
        s.execute(update(ProcessingOrder).values(timeliness=None, deadline=None))
    with world.catalog.session() as s:
        (g, _r), _ = kpi.aggregates(s, KpiFilter("SKY"), Bucket.MONTH)
        rows, _ = kpi.product_delays(s, KpiFilter("SKY"))
    assert (g.with_deadline, g.on_time, g.on_time_ratio) == (0, 0, None)
    assert all(row.on_time is None and row.deadline is None for row in rows)
    assert g.sensing_to_publication.count == 2  # the delays are still there


def test_report_carries_the_categories(world: KpiWorld) -> None:
    with world.catalog.session() as s:
        report = kpi.report(s, KpiFilter("SKY"), by=Bucket.MONTH, products=True, limit=2)
    assert report.categories == {"NRT": 7200.0, "STANDARD": 86400.0}
    assert report.deadline_from == "sensing_stop"
    assert report.total == 4 and len(report.products) == 2 and len(report.aggregates) == 2


def test_empty_range_and_bad_requests(world: KpiWorld) -> None:
    with world.catalog.session() as s:
        empty = kpi.report(s, KpiFilter("SKY", since=DAY + timedelta(days=30)), products=True)
        assert (empty.aggregates, empty.products, empty.total) == ([], [], 0)
        with pytest.raises(NotFoundError, match="mission 'NOPE'"):
            kpi.report(s, KpiFilter("NOPE"))
        with pytest.raises(NotFoundError, match="mission SKY: no product class 'L2X'"):
            kpi.aggregates(s, KpiFilter("SKY", classes=("CALEXP_G", "L2X")))
        with pytest.raises(KpiError, match=r"since .* must be before until"):
            kpi.aggregates(s, KpiFilter("SKY", since=DAY, until=DAY))
        with pytest.raises(KpiError, match="limit must be between 1 and 1000"):
            kpi.product_delays(s, KpiFilter("SKY"), limit=0)


def test_the_aggregates_refuse_more_rows_than_their_bound(
    world: KpiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kpi, "MAX_AGGREGATE_ROWS", 3)
    with world.catalog.session() as s, pytest.raises(KpiError, match="more than 3 products"):
        kpi.aggregates(s, KpiFilter("SKY"))


def test_percentiles_interpolate_like_percentile_cont() -> None:
    values = [10.0, 1.0, 4.0, 7.0, 2.0]
    five = kpi.stats(values)
    assert (five.count, five.min, five.p50, five.max) == (5, 1.0, 4.0, 10.0)
    assert five.p95 == pytest.approx(7.0 + 0.8 * 3.0)
    assert kpi.stats([5.0]) == kpi.Stats(1, 5.0, 5.0, 5.0, 5.0)
    assert kpi.stats([]) == kpi.Stats(0, None, None, None, None)


def test_percentiles_agree_with_postgresql(catalog: Catalog) -> None:
    """The same numbers as the database's own percentile_cont, where there is one."""
    if catalog.engine.dialect.name != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's; SQLite has none to compare with")
    values = [3.5, 0.25, 7200.0, 61.0, 86400.5, 1.0, 900.75]
    rows = ", ".join(f"({v})" for v in values)
    with catalog.engine.connect() as conn:
        p50, p95 = conn.execute(
            text(
                "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x), "
                f"percentile_cont(0.95) WITHIN GROUP (ORDER BY x) FROM (VALUES {rows}) AS v(x)"
            )
        ).one()
    ours = kpi.stats(values)
    assert ours.p50 == pytest.approx(p50, abs=1e-9) and ours.p95 == pytest.approx(p95, abs=1e-9)
