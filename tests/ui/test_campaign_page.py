"""The campaign pages in headless Chromium: the list with progress bars, the heat map of gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from proseo.catalog import access
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.missions import load_mission
from proseo.planning import campaign as camp
from proseo.planning.campaign_spec import parse_campaign
from tests_campaign import AUX, L0, finish, ingest, run_order

from tests_paths import MISSION_DIR

pytestmark = pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)
DAY = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def ui_world(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> dict[str, Any]:
    """A two-day L1B campaign: day 1 made, day 2's band 1 withheld (its steps gave up)."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        access.grant(s, "ops", "S5P", "operator", by="test")
    ingest(catalog, DAY - timedelta(days=1), DAY + timedelta(days=3), tmp_path, AUX | L0 - {"L0__ODB_1_"})
    ingest(catalog, DAY - timedelta(days=1), DAY + timedelta(days=1), tmp_path, {"L0__ODB_1_"})
    spec = parse_campaign(
        {
            "name": "ui1",
            "requested_classes": ["L1B_______"],
            "start": DAY.isoformat(),
            "stop": (DAY + timedelta(days=2)).isoformat(),
            "window": {"max_active_orders": 2},
            "output_parameters": {"*": {"collection": 4}},
        }
    )
    with catalog.session() as s:
        camp.create_campaign(s, "S5P", spec)
    camp.start_campaign(catalog, "S5P", "ui1")
    run_order(catalog, "ui1_20250301")
    run_order(catalog, "ui1_20250302")
    finish(catalog, "ui1_20250302", "input timeout")
    camp.campaign_pass(catalog, "S5P", "ui1")
    return {"catalog": catalog}


def test_campaign_list_and_heat_map_of_gaps(page_as: Any, screenshot: Any) -> None:
    page = page_as("ops")
    response = page.goto(page.base + "/proseo/ui/campaigns")
    assert response is not None and response.status == 200
    expect(page.locator("header nav a.active")).to_have_text("Campaigns")
    row = page.locator("tr.campaign")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-state", "COMPLETED")
    expect(row.locator(".nums")).to_contain_text("1/2 completed")
    screenshot(page, "campaigns")

    row.locator("a").click()
    expect(page).to_have_title("S5P/ui1 · proseo")
    cells = page.locator("#heatmap svg rect.cell")
    expect(cells).to_have_count(2)
    day1, day2 = (
        page.locator('rect.cell[data-unit="20250301"]'),
        page.locator('rect.cell[data-unit="20250302"]'),
    )
    expect(day1).to_have_attribute("fill", "#17803d")
    expect(day2).to_have_attribute("fill", "#b42318")
    assert day2.get_attribute("data-produced") != day2.get_attribute("data-expected")
    expect(day2.locator("title")).to_contain_text("input missing")
    expect(page.locator("#gap-summary")).to_contain_text("input missing")
    gaps = page.locator("tr.gap")
    assert gaps.count() > 5
    expect(gaps.first).to_have_attribute("data-reason", "input missing")
    expect(gaps.first).to_contain_text("L0__ODB_1_")
    expect(page.locator('tr.unit[data-part="20250302"]')).to_have_attribute("data-state", "FAILED")
    screenshot(page, "campaign")
    missing = page.goto(page.base + "/proseo/ui/campaigns/S5P/nope")
    assert missing is not None and missing.status == 404
