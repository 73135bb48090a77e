"""The pages in headless Chromium: open each, check what it shows, keep a screenshot.

The world (see conftest.py): SKY ``night-1`` RUNNING with three job steps completed by
real runs, STACK_R failed and SRC_CAT planned; SKY ``night-2`` and S5P ``no2-morning``
planned; users ``ops`` (operator on both), ``s5p-viewer`` (S5P only), ``nobody``.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_product import Product
from proseo.planning.graph import STATE_COLOURS

# The browser tests are about the pages, which read through the API's builders; those run on
# both catalogue backends in tests/api. Here SQLite only, so Chromium works once per test.
pytestmark = pytest.mark.parametrize("catalog_url", ["sqlite"], indirect=True)


def rgb(hex_colour: str) -> str:
    """A CSS colour as the browser reports a computed style."""
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def open_page(page: Any, path: str, status: int = 200) -> Any:
    response = page.goto(page.base + path)
    assert response is not None and response.status == status, (path, response and response.status)
    return response


def products_of(catalog: Any, product_type: str) -> list[int]:
    with catalog.session() as s:
        return list(
            s.scalars(
                select(Product.id)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .where(ProductClass.product_type == product_type)
                .order_by(Product.sensing_start, Product.id)
            )
        )


# --- orders -------------------------------------------------------------------------------------


def test_orders_page_lists_orders_with_progress_bars(page_as: Any, screenshot: Any) -> None:
    page = page_as("ops")
    open_page(page, "/proseo/ui/orders")
    expect(page).to_have_title("Orders · proseo")
    expect(page.locator("#who")).to_contain_text("ops")
    rows = page.locator("#orders tr.order")
    expect(rows).to_have_count(3)
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.identifier)") == [
        "night-2",
        "no2-morning",
        "night-1",
    ]

    night1 = page.locator('tr.order[data-identifier="night-1"]')
    expect(night1.locator(".order-state")).to_have_text("RUNNING")
    bar = night1.locator(".progress")
    assert bar.get_attribute("data-total") == "5" and bar.get_attribute("data-completed") == "3"
    expect(bar.locator(".nums")).to_contain_text("3/5 completed (60%)")
    expect(bar.locator(".nums")).to_contain_text("1 failed")
    segments = bar.locator(".seg")
    assert segments.evaluate_all("ss => ss.map(s => [s.dataset.state, s.dataset.count])") == [
        ["COMPLETED", "3"],
        ["FAILED", "1"],
        ["PLANNED", "1"],
    ]
    for state in ("COMPLETED", "FAILED", "PLANNED"):
        seg = bar.locator(f'.seg[data-state="{state}"]')
        expect(seg).to_have_css("background-color", rgb(STATE_COLOURS[state]))
    widths = segments.evaluate_all("ss => ss.map(s => s.getBoundingClientRect().width)")
    assert widths[0] == pytest.approx(3 * widths[2], rel=0.1)  # 3 completed : 1 planned

    no2 = page.locator('tr.order[data-identifier="no2-morning"]')
    expect(no2.locator(".order-state")).to_have_text("PLANNED")
    assert int(no2.locator(".progress").get_attribute("data-total")) > 0
    expect(no2.locator(".nums")).to_contain_text("0/")
    screenshot(page, "orders")

    # Filters: a mission, a state; paging.
    page.select_option('select[name="mission"]', "SKY")
    page.click("form.filters button")
    expect(rows).to_have_count(2)
    assert "mission=SKY" in page.url
    open_page(page, "/proseo/ui/orders?state=planned")
    expect(rows).to_have_count(2)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.state)")) == {"PLANNED"}
    open_page(page, "/proseo/ui/orders?limit=1")
    expect(rows).to_have_count(1)
    expect(page.locator(".pager").first).to_contain_text("orders 1–1 of 3")
    page.click('.pager a[rel="next"]')
    expect(page.locator(".pager").first).to_contain_text("orders 2–2 of 3")
    expect(rows).to_have_attribute("data-identifier", "no2-morning")


def test_a_viewer_of_one_mission_sees_only_its_orders(page_as: Any) -> None:
    page = page_as("s5p-viewer")
    open_page(page, "/proseo/ui/orders")
    rows = page.locator("#orders tr.order")
    expect(rows).to_have_count(1)
    expect(rows).to_have_attribute("data-identifier", "no2-morning")
    expect(page.locator('select[name="mission"] option')).to_have_count(2)  # "all" and S5P


def test_order_page_shows_graph_steps_and_input_reasons(
    page_as: Any, ui_world: dict[str, Any], screenshot: Any
) -> None:
    steps = ui_world["steps"]
    page = page_as("ops")
    open_page(page, "/proseo/ui/orders/SKY/night-1")
    expect(page.locator("h1#order .order-state")).to_have_text("RUNNING")
    expect(page.locator("#request")).to_contain_text('"identifier": "night-1"')
    expect(page.locator("#history")).to_contain_text("RELEASED")

    # The graph: one node per job step, coloured by its state, plus the external inputs.
    graph = page.locator("#graph svg")
    expect(graph).to_be_visible()
    expected = {
        "CALEXP_G": "COMPLETED",
        "CALEXP_R": "COMPLETED",
        "STACK_G": "COMPLETED",
        "STACK_R": "FAILED",
        "SRC_CAT": "PLANNED",
    }
    for ptype, state in expected.items():
        node = graph.locator(f'g.node[data-id="step-{steps[ptype]}"]')
        expect(node).to_have_attribute("data-state", state)
        assert node.locator("rect").get_attribute("fill") == STATE_COLOURS[state]
        expect(node).to_contain_text(ptype)
    inputs = graph.locator('g.node[data-id^="input-"]')
    assert inputs.count() >= 2
    assert set(inputs.evaluate_all("ns => ns.map(n => n.dataset.state)")) == {"EXISTING"}
    assert graph.locator(".edges path").count() >= 6

    # The job-step table: state, failure, logs of the runs.
    failed = page.locator(f"tr.step#step-{steps['STACK_R']}")
    expect(failed.locator(".step-state")).to_have_text("FAILED")
    expect(failed.locator(".failure")).to_have_text("processing: exit code 130 <coadd aborted & retried>")
    done = page.locator(f"tr.step#step-{steps['CALEXP_G']}")
    expect(done.locator(".step-state")).to_have_text("COMPLETED")
    expect(done.locator(".step-state")).to_have_css("background-color", rgb(STATE_COLOURS["COMPLETED"]))
    log_url = done.locator("a.log").get_attribute("href")
    assert log_url == f"/proseo/api/v1/missions/SKY/orders/night-1/job-steps/{steps['CALEXP_G']}/log"
    log = page.request.get(page.base + log_url)  # the context's cookie authenticates it
    assert log.status == 200 and log.text().strip()
    expect(page.locator(f"tr.step#step-{steps['SRC_CAT']} a.log")).to_have_count(0)

    # Inputs of CALEXP_G: the rule, satisfied, the raw exposures chosen and why.
    raw = page.locator(f'tr.step-inputs[data-step="{steps["CALEXP_G"]}"] tr.input[data-class="RAW_EXP"]')
    expect(raw).to_contain_text("FOR RAW_EXP/filter:g SELECT ValIntersect")
    assert raw.get_attribute("data-satisfied") == "yes"
    expect(raw.locator(".yes")).to_have_text("✓ yes")
    chosen = raw.locator("li.chosen")
    assert chosen.count() >= 10
    expect(raw.locator("details summary")).to_have_text(f"{chosen.count() - 5} more")  # the rest folded
    expect(chosen.first).to_contain_text("SKY_OPER_RAW_EXP_g_")
    expect(chosen.first).to_contain_text("by ValIntersect")
    expect(raw.locator(".reason")).to_contain_text("chose ")
    expect(raw.locator(".reason")).to_contain_text("by ValIntersect (coverage")
    # SRC_CAT's inputs are outputs of steps of the same order, linked to their rows: the g
    # stack is made (its product is listed as chosen, from its step), the r stack failed.
    inputs = f'tr.step-inputs[data-step="{steps["SRC_CAT"]}"]'
    stack = page.locator(f'{inputs} tr.input[data-class="STACK_G"]')
    made = stack.locator("li.chosen").filter(has=page.locator(f'a[href="#step-{steps["STACK_G"]}"]'))
    expect(made).to_contain_text("SKY_NIGHTLY_STACK_G_")
    expect(stack.locator("li.planned")).to_have_count(0)
    expect(stack.locator(".reason")).to_contain_text("planned 1 job step(s) of STACK_G")
    stack_r = page.locator(f'{inputs} tr.input[data-class="STACK_R"]')
    expect(stack_r.locator("li.planned a")).to_have_attribute("href", f"#step-{steps['STACK_R']}")

    # A click on a graph node finds its row.
    graph.locator(f'g.node[data-id="step-{steps["STACK_R"]}"]').click()
    assert page.url.endswith(f"#step-{steps['STACK_R']}")
    screenshot(page, "order-detail")
    screenshot(page.locator("#graph"), "order-graph")

    # The step table filters by state.
    open_page(page, "/proseo/ui/orders/SKY/night-1?state=COMPLETED")
    expect(page.locator("tr.step")).to_have_count(3)
    expect(page.locator(".pager").first).to_contain_text("job steps 1–3 of 3")


# --- products and lineage -------------------------------------------------------------------------


def test_product_browser_filters_pages_and_downloads(
    page_as: Any, ui_world: dict[str, Any], screenshot: Any
) -> None:
    page = page_as("ops")
    open_page(page, "/proseo/ui/products?mission=SKY&product_type=RAW_EXP&limit=10")
    rows = page.locator("#products tr.product")
    expect(rows).to_have_count(10)
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.type)")) == {"RAW_EXP"}
    total = len(products_of(ui_world["catalog"], "RAW_EXP"))
    expect(page.locator(".pager").first).to_contain_text(f"products 1–10 of {total}")
    expect(page.locator('select[name="product_type"]')).to_have_value("RAW_EXP")
    screenshot(page, "products")

    link = rows.first.locator("a.download").first
    name = link.inner_text()
    assert name.startswith("SKY_OPER_RAW_EXP_") and name.endswith(".fits")
    answer = page.request.get(page.base + link.get_attribute("href"))
    assert answer.status == 200 and len(answer.body()) == 300
    assert answer.headers["content-disposition"] == f'attachment; filename="{name}"'

    page.click('.pager a[rel="next"]')
    expect(page.locator(".pager").first).to_contain_text(f"products 11–{min(20, total)} of {total}")

    # A time window: the form keeps the values; fewer products overlap it.
    page.fill('input[name="start"]', "2025-03-01T08:00:00Z")
    page.fill('input[name="stop"]', "2025-03-01T09:00:00Z")
    page.click("form.filters button")
    expect(page.locator('input[name="start"]')).to_have_value("2025-03-01T08:00:00Z")
    assert 0 < rows.count() < total
    for start, stop in rows.evaluate_all(
        "rs => rs.map(r => r.querySelectorAll('td')[4].innerText.split('\\n'))"
    ):
        assert start < "2025-03-01 09:00:00Z" and stop > "2025-03-01 08:00:00Z"

    # Products made by the runs are browsable too.
    open_page(page, "/proseo/ui/products?mission=SKY&product_type=STACK_G")
    expect(rows).to_have_count(1)
    bad = open_page(page, "/proseo/ui/products?mission=SKY&start=yesterday", status=400)
    assert "text/html" in bad.headers["content-type"]
    expect(page.locator(".error-box")).to_contain_text("invalid time 'yesterday'")


def test_lineage_page_draws_what_a_product_was_made_from(
    page_as: Any, ui_world: dict[str, Any], screenshot: Any
) -> None:
    (stack,) = products_of(ui_world["catalog"], "STACK_G")
    page = page_as("ops")
    open_page(page, "/proseo/ui/products?mission=SKY&product_type=STACK_G")
    page.click("#products a.lineage")
    assert page.url.endswith(f"/proseo/ui/products/SKY/{stack}/lineage")
    expect(page.locator("h1#product")).to_contain_text(f"STACK_G {stack}")

    picture = page.locator("#lineage-graph svg")
    expect(picture).to_be_visible()
    root = picture.locator(f'g.node[data-id="product-{stack}"]')
    expect(root).to_have_attribute("data-state", "COMPLETED")
    assert root.locator("rect").get_attribute("fill") == STATE_COLOURS["COMPLETED"]
    labels = picture.locator("g.node").evaluate_all("ns => ns.map(n => n.querySelector('text').textContent)")
    assert {"STACK_G", "CALEXP_G", "RAW_EXP"} <= set(labels)
    ingested = picture.locator('g.node[data-state="EXISTING"]')
    assert ingested.count() >= 10
    assert ingested.first.locator("rect").get_attribute("stroke-dasharray")

    table = page.locator("#lineage tr.lineage-node")
    assert table.count() == picture.locator("g.node").count()
    first = table.first
    assert first.get_attribute("data-id") == str(stack) and first.get_attribute("data-distance") == "0"
    expect(first).to_contain_text("CALEXP_G")
    calexp = page.locator('#lineage tr.lineage-node[data-type="CALEXP_G"]')
    expect(calexp).to_have_attribute("data-distance", "1")
    expect(calexp).to_contain_text("CALIB_")
    expect(calexp).to_contain_text("RAW_EXP")
    screenshot(page, "lineage")
    screenshot(page.locator("#lineage-graph"), "lineage-graph")

    # Forwards from a raw exposure: the calibrated image and the stack made from it.
    calexp_id = calexp.get_attribute("data-id")
    raw_id = page.locator('#lineage tr.lineage-node[data-type="RAW_EXP"]').first.get_attribute("data-id")
    open_page(page, f"/proseo/ui/products/SKY/{raw_id}/lineage?forward=true")
    ids = set(page.locator("#lineage tr.lineage-node").evaluate_all("rs => rs.map(r => r.dataset.id)"))
    assert {raw_id, calexp_id, str(stack)} <= ids
    # Depth 1 backwards: the stack and its direct inputs only, and the page says there is more.
    open_page(page, f"/proseo/ui/products/SKY/{stack}/lineage?depth=1")
    types = page.locator("#lineage tr.lineage-node").evaluate_all("rs => rs.map(r => r.dataset.type)")
    assert "RAW_EXP" not in types and "CALEXP_G" in types
    expect(page.locator("p.note").first).to_contain_text("more beyond depth 1")


# --- authentication and roles -----------------------------------------------------------------------

PAGES = [
    "/proseo/ui/orders",
    "/proseo/ui/orders/SKY/night-1",
    "/proseo/ui/products?mission=SKY",
    "/proseo/ui/products/SKY/1/lineage",
]


def test_no_cookie_is_a_401_page(page_as: Any, browser: Any, server: str, screenshot: Any) -> None:
    page = page_as(None)
    for path in PAGES:
        answer = open_page(page, path, status=401)
        assert answer.headers["www-authenticate"] == "Bearer"
        expect(page.locator(".error-box h1")).to_have_text("401 Not signed in")
        expect(page.locator("#who")).to_have_count(0)
    screenshot(page, "error-401")
    context = browser.new_context()
    try:
        context.add_cookies([{"name": "_token", "value": "not-a-jwt", "url": server}])
        bad = context.new_page()
        assert bad.goto(server + PAGES[0]).status == 401
        expect(bad.locator(".error-box .detail")).to_contain_text("invalid token")
    finally:
        context.close()


def test_another_missions_pages_are_403(page_as: Any, screenshot: Any) -> None:
    page = page_as("s5p-viewer")
    for path in ["/proseo/ui/orders?mission=SKY", *PAGES[1:]]:
        open_page(page, path, status=403)
        expect(page.locator(".error-box h1")).to_have_text("403 Not allowed")
        expect(page.locator(".error-box .detail")).to_contain_text("s5p-viewer holds no role on mission SKY")
    screenshot(page, "error-403")
    open_page(page, "/proseo/ui/orders/S5P/no2-morning")  # their own mission's order is fine
    expect(page.locator("#graph svg g.node").first).to_be_visible()
    open_page(page, "/proseo/ui/orders/S5P/nope", status=404)
    expect(page.locator(".error-box h1")).to_have_text("404 Not found")


def test_a_user_without_roles_gets_empty_pages(page_as: Any) -> None:
    page = page_as("nobody")
    open_page(page, "/proseo/ui/orders")
    expect(page.locator("#orders")).to_contain_text("No orders match.")
    open_page(page, "/proseo/ui/products")
    expect(page.locator("main")).to_contain_text("You hold no role on any mission")
    open_page(page, "/proseo/ui/")
    assert page.url.endswith("/proseo/ui/orders")
