"""Campaigns in a real catalogue (SQLite and PostgreSQL): units released a window at a time,
state derived from the catalogue on every pass, restarts that make nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_campaign import CampaignState
from proseo.catalog.model_order import OrderState
from proseo.catalog.model_product import Product
from proseo.errors import CampaignError, CampaignTransition, ConflictError
from proseo.missions import load_mission
from proseo.planning import campaign as camp
from proseo.planning.campaign_gaps import gap_report
from proseo.planning.campaign_progress import progress
from proseo.planning.campaign_spec import CampaignSpec, parse_campaign
from tests_campaign import AUX, L0, ingest, order_rows, run_order

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


def _spec(**over: object) -> CampaignSpec:
    data: dict[str, object] = {
        "name": "rpro1",
        "requested_classes": ["L1B_______"],
        "start": DAY.isoformat(),
        "stop": (DAY + timedelta(days=2)).isoformat(),
        "window": {"max_active_orders": 1},
        "output_parameters": {"*": {"collection": 4}},
    }
    data.update(over)
    return parse_campaign(data, mission="S5P")


def _create(catalog: Catalog, spec: CampaignSpec) -> int:
    with catalog.session() as s:
        return camp.create_campaign(s, "S5P", spec).id


def test_a_bad_request_names_each_field(s5p: Catalog) -> None:
    with pytest.raises(CampaignError) as bad:
        parse_campaign({"name": "x", "requested_classes": [], "start": "2025-03-02", "stop": "2025-03-01"})
    assert "requested_classes: List should have at least 1 item" in str(bad.value)
    with pytest.raises(CampaignError, match=r"stop 2025-03-01T00:00:00\+00:00 is not after start"):
        parse_campaign({"name": "x", "requested_classes": ["A"], "start": "2025-03-02", "stop": "2025-03-01"})
    with pytest.raises(CampaignError) as bad:
        parse_campaign({**_spec().model_dump(mode="json"), "window": {"max_active_orders": 0}})
    assert "window.max_active_orders" in str(bad.value)
    with pytest.raises(CampaignError) as bad:
        _create(
            s5p,
            _spec(
                requested_classes=["L1B_______", "NOPE"],
                priority=60,
                facilities=["mars"],
                configured_processors=["L01B_09.00.00_x"],
            ),
        )
    text = str(bad.value)
    assert "S5P/rpro1" in text
    assert "requested_classes: unknown product class 'NOPE'" in text
    assert "facilities: unknown facility 'mars'" in text
    assert "priority: 60 is not below systematic production (its lowest trigger priority is 60)" in text
    assert "configured_processors: unknown configured processor" in text
    _create(s5p, _spec())
    with pytest.raises(ConflictError):
        _create(s5p, _spec())


def test_units_are_released_a_window_at_a_time_and_the_campaign_completes(
    s5p: Catalog, tmp_path: Path
) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=3), tmp_path, AUX | L0)
    cid = _create(s5p, _spec(configured_processors=["L01B_02.10.00_2025.01-rpro"]))
    assert camp.campaign_pass(s5p, "S5P", "rpro1").created == []  # CREATED: passes do nothing
    first = camp.start_campaign(s5p, "S5P", "rpro1")
    assert first.created == ["rpro1_20250301"] and first.released == ["rpro1_20250301"], first
    order = order_rows(s5p, cid)[0]
    assert order.state == OrderState.RELEASED.value and order.processing_mode == "RPRO"
    assert order.priority == 20 and order.campaign_unit == "20250301" and order.campaign_attempt == 0
    assert order.configured_processors == ["L01B_02.10.00_2025.01-rpro"]
    # Orbits belong to the day they start in: the first day's orbit range ends before midnight.
    assert order.orbit_from is not None and order.orbit_to is not None
    again = camp.campaign_pass(s5p, "S5P", "rpro1")
    assert again.created == [] and again.active == 1 and again.pending == 1  # the window is full

    made = run_order(s5p, "rpro1_20250301")
    assert made == order.orbit_to - order.orbit_from + 1
    with s5p.session() as s:
        half = progress(s, "S5P", "rpro1")
    assert half.parts == 2 and half.fraction == 0.5 and half.completed == 1 and half.active == 0
    assert [u.state for u in half.units] == [OrderState.COMPLETED.value, "NOT_STARTED"]
    assert half.steps_done == made and half.steps_per_hour and half.eta_s and half.eta_s > 0
    second = camp.campaign_pass(Catalog(s5p.url), "S5P", "rpro1")  # a new process: only the catalogue
    assert second.created == ["rpro1_20250302"] and second.released == ["rpro1_20250302"]
    nxt = order_rows(s5p, cid)[1]
    assert nxt.orbit_from == order.orbit_to + 1  # no orbit ordered twice
    run_order(s5p, "rpro1_20250302")
    done = camp.campaign_pass(s5p, "S5P", "rpro1")
    assert done.state == CampaignState.COMPLETED.value and done.created == []
    assert [o.state for o in order_rows(s5p, cid)] == [OrderState.COMPLETED.value] * 2
    with s5p.session() as s:
        per_slice = s.execute(
            select(Product.sensing_start, func.count())
            .where(Product.job_step_id.is_not(None), Product.enclosing_product_id.is_(None))
            .group_by(Product.sensing_start)
        ).all()
    assert per_slice and all(n == 1 for _, n in per_slice)  # nothing produced twice


def test_a_pass_that_died_half_way_is_carried_on_without_a_second_order(s5p: Catalog, tmp_path: Path) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=3), tmp_path, AUX | L0)
    cid = _create(s5p, _spec(window={"max_active_orders": 2}))
    with s5p.session() as s:
        c = camp.get_campaign(s, "S5P", "rpro1", lock=True)
        camp._move(c, "S5P", "start")
        # The orders of the window are created and committed; then the process dies.
        camp._plan_window(s, c, "S5P", camp.PassResult("rpro1", c.state), datetime.now(UTC))
    assert [o.state for o in order_rows(s5p, cid)] == [OrderState.INITIAL.value] * 2
    restarted = camp.campaign_pass(Catalog(s5p.url), "S5P", "rpro1")
    assert restarted.created == [] and restarted.released == ["rpro1_20250301", "rpro1_20250302"]
    assert [o.identifier for o in order_rows(s5p, cid)] == ["rpro1_20250301", "rpro1_20250302"]


def test_pause_stops_releasing_resume_continues_cancel_cancels(s5p: Catalog, tmp_path: Path) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=4), tmp_path, AUX | L0)
    cid = _create(s5p, _spec(stop=(DAY + timedelta(days=3)).isoformat()))
    with pytest.raises(CampaignTransition, match="cannot pause a campaign in state CREATED"):
        camp.pause_campaign(s5p, "S5P", "rpro1")
    camp.start_campaign(s5p, "S5P", "rpro1")
    camp.pause_campaign(s5p, "S5P", "rpro1")
    run_order(s5p, "rpro1_20250301")
    assert camp.campaign_pass(s5p, "S5P", "rpro1").created == []  # paused: nothing new
    assert camp.resume_campaign(s5p, "S5P", "rpro1").created == ["rpro1_20250302"]
    assert camp.cancel_campaign(s5p, "S5P", "rpro1") == ["rpro1_20250302"]
    states = {o.identifier: o.state for o in order_rows(s5p, cid)}
    assert states == {"rpro1_20250301": "COMPLETED", "rpro1_20250302": "FAILED"}
    assert camp.campaign_pass(s5p, "S5P", "rpro1").created == []  # cancelled: nothing again
    with pytest.raises(CampaignTransition):
        camp.resume_campaign(s5p, "S5P", "rpro1")


def test_a_unit_of_orbit_and_daily_classes_has_two_orders_that_share_nothing(
    s5p: Catalog, tmp_path: Path
) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=3), tmp_path, AUX | L0)
    cid = _create(s5p, _spec(requested_classes=["L2__NO2___", "L3__NO2___"], window={"max_active_orders": 4}))
    started = camp.start_campaign(s5p, "S5P", "rpro1")
    parts = ["20250301_orbits", "20250301_period", "20250302_orbits", "20250302_period"]
    assert started.released == [f"rpro1_{p}" for p in parts] and started.failed == [], started
    rows = {o.identifier: o for o in order_rows(s5p, cid)}
    assert rows["rpro1_20250301_orbits"].requested_classes == ["L2__NO2___"]
    assert rows["rpro1_20250301_period"].requested_classes == ["L3__NO2___"]
    for p in parts:  # the orbit orders first: the day's L3 reads their L2
        run_order(s5p, f"rpro1_{p}")
    assert camp.campaign_pass(s5p, "S5P", "rpro1").state == CampaignState.COMPLETED.value
    assert {o.state for o in order_rows(s5p, cid)} == {OrderState.COMPLETED.value}
    with s5p.session() as s:
        report = gap_report(s, "S5P", "rpro1")
        made = s.execute(
            select(Product.product_class_id, Product.sensing_start, func.count())
            .where(Product.job_step_id.is_not(None))
            .group_by(Product.product_class_id, Product.sensing_start)
        ).all()
    assert report.gaps == [] and report.expected == report.produced > 28
    assert all(n == 1 for *_, n in made)  # no product made twice, the midnight orbits included
