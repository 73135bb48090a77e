"""A forced suspend of an order with no running step goes straight to PLANNED (it used to fail)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


def test_force_suspend_without_running_steps_goes_to_planned(catalog: Catalog, data_dirs: object) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        spec = OrderSpec(
            identifier="n", requested_classes=["SRC_CAT"], start=DAY, stop=DAY + timedelta(days=1)
        )
        orders.create_order(s, "SKY", spec)
    lifecycle.approve_order(catalog, "SKY", "n")
    lifecycle.plan_order(catalog, "SKY", "n")
    lifecycle.release_order(catalog, "SKY", "n")
    order = lifecycle.suspend_order(catalog, "SKY", "n", force=True, message="now")
    assert order.state == "PLANNED"
    with catalog.session() as s:
        events = [(e.operation, e.to_state) for e in orders.get_order(s, "SKY", "n").events]
    assert events[-1] == ("suspend", "PLANNED")
    assert lifecycle.resume_order(catalog, "SKY", "n").state == "RELEASED"
