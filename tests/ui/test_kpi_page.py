"""The timeliness page in headless Chromium: pictures against the deadlines, the aggregates table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from proseo.catalog import access
from proseo.catalog.db import Catalog
from tests_kpi import kpi_world

pytestmark = pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)


@pytest.fixture
def ui_world(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> dict[str, Any]:
    """The KPI catalogue (four produced products, one late) instead of the order pages' world."""
    made = kpi_world(catalog, tmp_path)
    with catalog.session() as s:
        access.grant(s, "ops", "SKY", "operator", by="test")
    return {"catalog": catalog, "kpis": made}


def open_page(page: Any, path: str, status: int = 200) -> Any:
    response = page.goto(page.base + path)
    assert response is not None and response.status == status, (path, response and response.status)
    return response


def test_timeliness_page_draws_delays_against_the_deadlines(page_as: Any, screenshot: Any) -> None:
    page = page_as("ops")
    open_page(page, "/proseo/ui/kpi")  # the navigation's link: the first mission the user sees
    assert page.url.endswith("/proseo/ui/kpi/SKY")
    expect(page).to_have_title("SKY timeliness · proseo")
    expect(page.locator("header nav a.active")).to_have_text("Timeliness")
    expect(page.locator("#kpi-summary")).to_contain_text("4 produced products")
    expect(page.locator("#kpi-summary")).to_contain_text("NRT 2h00m00s")

    latency = page.locator("#latency svg")
    expect(latency.locator("circle.point")).to_have_count(4)
    expect(latency.locator("circle.point.late")).to_have_count(1)
    expect(latency.locator("circle.point.on-time")).to_have_count(3)
    lines = latency.locator("line.deadline")
    # The axis reaches the strictest deadline; STANDARD (1 d) lies beyond it and is named at the edge.
    assert lines.evaluate_all("ls => ls.map(l => l.dataset.category)") == ["NRT"]
    expect(latency.locator("text.deadline-beyond")).to_have_text("↑ STANDARD 1d")
    # The late point (2 h 30 min) lies above the NRT line (2 h), the others below it.
    nrt_y = float(lines.first.get_attribute("y1"))
    ys = latency.locator("circle.point").evaluate_all(
        "cs => cs.map(c => [c.classList[1], +c.getAttribute('cy')])"
    )
    assert all((y < nrt_y) == (state == "late") for state, y in ys)

    bins = page.locator("#histogram svg rect.bin")
    assert sum(int(n) for n in bins.evaluate_all("bs => bs.map(b => b.dataset.count)")) == 4
    expect(page.locator("#histogram svg line.deadline")).to_have_count(1)
    expect(page.locator("#histogram svg text.deadline-label")).to_have_text("NRT 2h")

    rows = page.locator("#aggregates tr.aggregate")
    expect(rows).to_have_count(4)
    assert rows.evaluate_all("rs => rs.map(r => [r.dataset.type, r.dataset.ratio])") == [
        ["CALEXP_G", "1.0"],
        ["CALEXP_G", "1.0"],
        ["CALEXP_R", "1.0"],
        ["CALEXP_R", "0.0"],
    ]
    expect(rows.nth(3)).to_contain_text("2h30m00s")
    expect(rows.nth(3)).to_contain_text("0.0% (0/1)")
    screenshot(page, "kpi")

    # Filters: one class, per month.
    page.select_option('select[name="product_type"]', "CALEXP_R")
    page.select_option('select[name="by"]', "month")
    page.click("form.filters button")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("2025-03")
    expect(rows).to_contain_text("50.0% (1/2)")
    expect(latency.locator("circle.point")).to_have_count(2)


def test_empty_range_and_refusals(page_as: Any) -> None:
    page = page_as("ops")
    open_page(page, "/proseo/ui/kpi/SKY?since=2030-01-01T00:00:00Z")
    expect(page.locator("#no-products")).to_be_visible()
    expect(page.locator("#aggregates")).to_contain_text("No products in this range.")
    open_page(page, "/proseo/ui/kpi/SKY?since=yesterday", status=400)
    expect(page.locator("main")).to_contain_text("since: invalid time 'yesterday'")
    open_page(page_as("nobody"), "/proseo/ui/kpi/SKY", status=403)
    open_page(page, "/proseo/ui/kpi/SKY?product_type=L2X", status=404)
