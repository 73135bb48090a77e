"""GET /missions/{m}/kpi/timeliness: the KPI report over REST, for viewers of the mission."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from proseo.catalog import access
from proseo.catalog.db import Catalog
from tests_kpi import DELAYS, KpiWorld, kpi_world

PATH = "/missions/SKY/kpi/timeliness"


@pytest.fixture
def kpis(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> KpiWorld:
    made = kpi_world(catalog, tmp_path)
    with catalog.session() as s:
        access.grant(s, "sky-viewer", "SKY", "viewer", by="test")
    return made


@pytest.fixture
def world(kpis: KpiWorld) -> Catalog:
    """The API's app runs over the KPI catalogue (replaces the package's ``world``)."""
    return kpis.catalog


def test_viewers_get_the_report_with_every_product(kpis: KpiWorld, as_user: Any) -> None:
    answer = as_user("sky-viewer").get(PATH, params={"by": "month", "products": "true"})
    assert answer.status_code == 200, answer.text
    doc = answer.json()
    assert (doc["mission"], doc["by"], doc["total"], doc["limit"], doc["offset"]) == (
        "SKY",
        "month",
        4,
        100,
        0,
    )
    assert doc["deadline_from"] == "sensing_stop" and doc["categories"]["NRT"] == 7200.0
    got = {p["id"]: (p["sensing_to_publication_s"], p["raw_to_publication_s"]) for p in doc["products"]}
    assert got == {pid: DELAYS[key] for key, pid in kpis.products.items()}
    assert [p["on_time"] for p in doc["products"]].count(False) == 1
    (g, r) = doc["aggregates"]
    assert (g["product_type"], g["mode"], g["count"], g["on_time_ratio"]) == ("CALEXP_G", "NIGHTLY", 2, 1.0)
    assert r["sensing_to_publication_s"] == {
        "count": 2,
        "min": 1800.0,
        "p50": 5400.0,
        "p95": pytest.approx(1800.0 + 0.95 * 7200.0),
        "max": 9000.0,
    }
    assert r["raw_to_publication_s"]["p50"] == 600.0 and r["on_time_ratio"] == 0.5


def test_filters_and_paging(kpis: KpiWorld, as_user: Any) -> None:
    viewer = as_user("sky-viewer")
    page = viewer.get(PATH, params={"products": "true", "limit": 1, "offset": 1}).json()
    assert page["total"] == 4 and len(page["products"]) == 1
    assert viewer.get(PATH).json()["products"] == [] and viewer.get(PATH).json()["limit"] is None
    only_r = viewer.get(
        PATH, params={"class": "CALEXP_R", "since": "2025-03-02T01:00:00Z", "by": "hour"}
    ).json()
    assert [(a["product_type"], a["bucket"], a["count"]) for a in only_r["aggregates"]] == [
        ("CALEXP_R", "2025-03-03T02:00:00Z", 1)
    ]
    with_ingested = viewer.get(PATH, params={"ingested": "true"}).json()
    assert with_ingested["total"] == 4 + kpis.ingested
    empty = viewer.get(PATH, params={"since": "2030-01-01T00:00:00Z", "products": "true"}).json()
    assert (empty["total"], empty["aggregates"], empty["products"]) == (0, [], [])


def test_roles_and_bad_input(kpis: KpiWorld, as_user: Any, client: Any) -> None:
    assert client.get(f"/proseo/api/v1{PATH}").status_code == 401
    assert as_user("nobody").get(PATH).status_code == 403
    viewer = as_user("sky-viewer")
    unknown = viewer.get(PATH, params={"class": "L2X"})
    assert unknown.status_code == 404 and "no product class 'L2X'" in unknown.text
    backwards = viewer.get(PATH, params={"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"})
    assert backwards.status_code == 400 and "must be before until" in backwards.text
    assert viewer.get(PATH, params={"by": "week"}).status_code == 422
    assert viewer.get(PATH, params={"limit": 1001}).status_code == 422
    assert viewer.get(PATH, params={"since": "0001-01-01T00:00:00+01:00"}).status_code == 400
    assert as_user("root").get("/missions/NOPE/kpi/timeliness").status_code in (403, 404)
