"""/campaigns over REST: roles, create, dry run, steering, progress and gaps (both backends)."""

from __future__ import annotations

from typing import Any

from proseo.catalog.db import Catalog

BASE = "/missions/S5P/campaigns"
REQUEST = {
    "name": "api1",
    "requested_classes": ["L1B_______"],
    "start": "2025-03-01T00:00:00Z",
    "stop": "2025-03-03T00:00:00Z",
    "window": {"max_active_orders": 1},
    "output_parameters": {"*": {"collection": 4}},
}


def test_a_campaign_over_rest(world: Catalog, as_user: Any, client: Any) -> None:
    ops, viewer = as_user("ops"), as_user("s5p-viewer")
    assert client.get("/proseo/api/v1/campaigns").status_code == 401
    assert viewer.post(BASE, json=REQUEST).status_code == 403  # viewers do not create
    assert as_user("nobody").post(f"{BASE}/dryrun", json=REQUEST).status_code == 403

    unknown = viewer.post(f"{BASE}/dryrun", json={**REQUEST, "requested_classes": ["NOPE"]})
    assert unknown.status_code == 422 and "unknown product class 'NOPE'" in unknown.text
    sized = viewer.post(f"{BASE}/dryrun", json=REQUEST)
    assert sized.status_code == 200, sized.text
    doc = sized.json()
    assert doc["units"] == 2 and doc["orders"] == 2 and doc["steps"] > 20
    assert {m["input_type"] for m in doc["missing"]} >= {"L0__ODB_1_"}  # inputs end at 06:00 on day 1
    assert any(a.startswith("L1B_______: no completed job step") for a in doc["assumptions"])

    bad = ops.post(BASE, json={**REQUEST, "priority": 99, "facilities": ["mars"]})
    assert (
        bad.status_code == 422 and "priority: 99" in bad.text and "facilities: unknown facility" in bad.text
    )
    invalid = ops.post(BASE, json={**REQUEST, "window": {"max_active_orders": 0}})
    assert invalid.status_code == 422 and "max_active_orders" in invalid.text
    created = ops.post(BASE, json=REQUEST)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "CREATED" and created.json()["progress"]["parts"] == 2
    assert ops.post(BASE, json=REQUEST).status_code == 409

    started = ops.post(f"{BASE}/api1/start")
    assert started.status_code == 200, started.text
    assert (
        started.json()["released"] == ["api1_20250301"] and started.json()["campaign"]["state"] == "RUNNING"
    )
    assert ops.post(f"{BASE}/api1/start").status_code == 409
    assert ops.post(f"{BASE}/api1/explode").status_code == 422
    shown = viewer.get(f"{BASE}/api1").json()
    assert [u["state"] for u in shown["progress"]["units"]] == ["RELEASED", "NOT_STARTED"]
    assert shown["spec"]["name"] == "api1"
    gaps = viewer.get(f"{BASE}/api1/gaps", params={"limit": 5})
    assert gaps.status_code == 200, gaps.text
    report = gaps.json()
    assert report["missing"] == report["expected"] > 20 and len(report["gaps"]) == 5
    assert set(report["reasons"]) <= {"in progress", "input missing", "not yet started"}
    assert viewer.get(f"{BASE}/api1/dryrun").json()["orders"] == 2
    listed = viewer.get("/campaigns").json()
    assert [i["name"] for i in listed["items"]] == ["api1"] and listed["total"] == 1
    assert as_user("sky-admin").get("/campaigns").json()["items"] == []  # not their mission

    cancelled = ops.post(f"{BASE}/api1/cancel")
    assert (
        cancelled.json()["cancelled"] == ["api1_20250301"]
        and cancelled.json()["campaign"]["state"] == "CANCELLED"
    )
    assert viewer.get(f"{BASE}/nope").status_code == 404
