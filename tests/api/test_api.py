"""The /proseo REST API: authentication, per-mission roles, orders, job steps, products."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests_registration import register_planned

# --- authentication: every route needs a valid Airflow JWT -----------------------------------

ROUTES = [
    ("get", "/proseo/api/v1/me"),
    ("get", "/proseo/api/v1/missions"),
    ("get", "/proseo/api/v1/missions/SKY/product-classes"),
    ("get", "/proseo/api/v1/orders"),
    ("get", "/proseo/api/v1/missions/SKY/orders/night-1"),
    ("post", "/proseo/api/v1/missions/SKY/orders/night-1/release"),
    ("get", "/proseo/api/v1/missions/SKY/products"),
    ("get", "/proseo/api/v1/missions/SKY/products/1/lineage"),
    ("get", "/proseo/api/v1/missions/SKY/kpi/timeliness"),
    ("post", "/proseo/api/v1/missions/validate"),
    ("get", "/proseo/openapi.json"),
    ("get", "/proseo/docs"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_no_route_answers_without_a_valid_token(client: Any, token_for: Any, method: str, path: str) -> None:
    assert getattr(client, method)(path).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    answer = getattr(client, method)(path, headers=bad)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    expired = {"Authorization": f"Bearer {token_for('root', expires_in=-60)}"}
    assert getattr(client, method)(path, headers=expired).status_code == 401


def test_the_ui_cookie_authenticates_too(client: Any, token_for: Any) -> None:
    client.cookies.set("_token", token_for("ops"))
    try:
        assert client.get("/proseo/api/v1/me").json() == {
            "user": "ops",
            "roles": {"S5P": "operator", "SKY": "operator"},
        }
        assert client.get("/proseo/openapi.json").json()["info"]["title"] == "proseo"
    finally:
        client.cookies.clear()


def test_openapi_lists_the_v1_routes(as_user: Any, client: Any, token_for: Any) -> None:
    doc = client.get(
        "/proseo/openapi.json", headers={"Authorization": f"Bearer {token_for('nobody')}"}
    ).json()
    paths = set(doc["paths"])
    assert {
        "/api/v1/missions",
        "/api/v1/orders",
        "/api/v1/missions/{mission}/orders/{identifier}/{operation}",
        "/api/v1/missions/{mission}/products/{ref}/files/{file_name}",
        "/api/v1/missions/{mission}/orders/{identifier}/job-steps/{step_id}",
    } <= paths


# --- roles -----------------------------------------------------------------------------------


def test_missions_are_listed_by_role(as_user: Any) -> None:
    assert [m["code"] for m in as_user("s5p-viewer").get("/missions").json()] == ["S5P"]
    assert [(m["code"], m["role"]) for m in as_user("root").get("/missions").json()] == [
        ("S5P", "admin"),
        ("SKY", "admin"),
    ]
    assert as_user("nobody").get("/missions").json() == []


def test_another_missions_orders_and_products_answer_403(as_user: Any) -> None:
    viewer = as_user("s5p-viewer")
    for path in (
        "/missions/SKY/orders/night-1",
        "/missions/SKY/products",
        "/missions/SKY/products/1",
        "/missions/SKY/orders/night-1/job-steps",
        "/orders?mission=SKY",
    ):
        answer = viewer.get(path)
        assert answer.status_code == 403, path
        assert answer.json()["detail"] == "s5p-viewer holds no role on mission SKY; this needs viewer"
    assert viewer.get("/orders").json()["items"] == []  # only S5P orders, and there are none


def test_a_viewer_cannot_create_or_steer_orders(as_user: Any) -> None:
    body = {
        "identifier": "x",
        "requested_classes": ["L2__NO2___"],
        "start": "2025-03-01T00:00:00Z",
        "stop": "2025-03-01T06:00:00Z",
    }
    answer = as_user("s5p-viewer").post("/missions/S5P/orders", json=body)
    assert answer.status_code == 403
    assert "needs operator" in answer.json()["detail"]
    assert as_user("sky-admin").post("/missions/SKY/orders/night-1/release").status_code == 200
    assert as_user("s5p-viewer").get("/missions/S5P/orders/x").status_code == 404  # nothing was written


def test_roles_are_granted_by_mission_admins_only(as_user: Any) -> None:
    assert as_user("ops").put("/missions/SKY/roles/eve", json={"role": "viewer"}).status_code == 403
    granted = as_user("sky-admin").put("/missions/SKY/roles/eve", json={"role": "viewer"})
    assert granted.json() == {"user": "eve", "mission": "SKY", "role": "viewer", "granted_by": "sky-admin"}
    assert [m["code"] for m in as_user("eve").get("/missions").json()] == ["SKY"]
    bad = as_user("sky-admin").put("/missions/SKY/roles/eve", json={"role": "owner"})
    assert bad.status_code == 400 and "unknown role 'owner'" in bad.json()["detail"]
    assert as_user("sky-admin").delete("/missions/SKY/roles/eve").status_code == 204
    assert as_user("eve").get("/missions").json() == []


# --- orders ----------------------------------------------------------------------------------


def test_order_life_cycle_over_rest(as_user: Any) -> None:
    ops = as_user("ops")
    body = {
        "identifier": "no2-morning",
        "requested_classes": ["L2__NO2___"],
        "start": "2025-03-01T00:00:00Z",
        "stop": "2025-03-01T03:00:00Z",
        "processing_mode": "OFFL",
        "output_parameters": {"*": {"collection": 1}},
    }
    created = ops.post("/missions/S5P/orders", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["state"] == "INITIAL"
    assert ops.post("/missions/S5P/orders", json=body).status_code == 409
    answer = ops.post("/missions/S5P/orders/no2-morning/plan")
    assert answer.status_code == 200, answer.text
    planned = answer.json()["order"]
    assert planned["state"] == "PLANNED"
    assert planned["job_steps"] == planned["plan"]["job_steps"] > 0
    assert "release" in planned["allowed_operations"]
    released = ops.post("/missions/S5P/orders/no2-morning/release").json()
    assert released["order"]["state"] == "RELEASED"
    assert released["order"]["dag_id"] == "proseo__S5P__no2-morning"
    suspended = ops.post("/missions/S5P/orders/no2-morning/suspend", json={"message": "maintenance"}).json()
    assert suspended["order"]["state"] == "PLANNED"
    assert suspended["airflow"] == "Airflow steering is off in this deployment"
    assert suspended["order"]["history"][-1]["message"] == "maintenance"
    illegal = ops.post("/missions/S5P/orders/no2-morning/close")
    assert illegal.status_code == 409
    assert "close" in illegal.json()["detail"] and "PLANNED" in illegal.json()["detail"]
    unknown = ops.post("/missions/S5P/orders/no2-morning/explode")
    assert unknown.status_code == 422 and "unknown operation 'explode'" in unknown.json()["detail"]


def test_a_bad_order_names_the_field_and_writes_nothing(as_user: Any) -> None:
    ops = as_user("ops")
    body = {
        "identifier": "bad",
        "requested_classes": ["NOPE"],
        "start": "2025-03-01T00:00:00Z",
        "stop": "2025-03-01T03:00:00Z",
    }
    answer = ops.post("/missions/S5P/orders", json=body)
    assert answer.status_code == 422
    assert "NOPE" in answer.json()["detail"] and answer.json()["mission"] == "S5P"
    shape = ops.post(
        "/missions/S5P/orders", json={**body, "requested_classes": ["L2__NO2___"], "stop": "yesterday"}
    )
    assert shape.status_code == 422
    assert shape.json()["detail"][0]["loc"] == ["body", "stop"]
    assert ops.get("/orders?mission=S5P").json()["total"] == 0


def test_order_list_pages_with_progress(as_user: Any) -> None:
    ops = as_user("ops")
    for n in range(3):
        body = {
            "identifier": f"o{n}",
            "requested_classes": ["L2__NO2___"],
            "start": "2025-03-01T00:00:00Z",
            "stop": "2025-03-01T02:00:00Z",
            "processing_mode": "OFFL",
            "output_parameters": {"*": {"collection": 1}},
        }
        assert ops.post("/missions/S5P/orders?plan=true", json=body).status_code == 201
    page = ops.get("/orders?mission=S5P&limit=2&offset=0").json()
    assert (page["total"], page["limit"], len(page["items"])) == (3, 2, 2)
    assert [o["identifier"] for o in page["items"]] == ["o2", "o1"]
    assert all(
        o["progress"].get("PLANNED", 0) + o["progress"].get("WAITING_INPUT", 0) == o["job_steps"] > 0
        for o in page["items"]
    )
    rest = ops.get("/orders?mission=S5P&limit=2&offset=2").json()
    assert [o["identifier"] for o in rest["items"]] == ["o0"]
    every = ops.get("/orders?state=planned").json()
    assert {o["mission"] for o in every["items"]} == {"S5P", "SKY"}


def test_job_steps_say_which_inputs_were_chosen_and_why(as_user: Any) -> None:
    viewer = as_user("sky-admin")
    steps = viewer.get("/missions/SKY/orders/night-1/job-steps").json()
    assert steps["total"] == len(steps["items"]) == 5
    calib = next(s for s in steps["items"] if s["processor"].startswith("CALIB"))
    detail = viewer.get(f"/missions/SKY/orders/night-1/job-steps/{calib['id']}").json()
    by_class = {i["source_class"]: i for i in detail["inputs"]}
    assert set(by_class) >= {"RAW_EXP", "CAL_BIAS", "CAL_FLAT"}
    bias = by_class["CAL_BIAS"]
    assert bias["satisfied"] is True
    assert bias["rule"] and bias["chosen"] and bias["chosen"][0]["policy"]
    assert bias["chosen"][0]["name"].startswith("SKY")
    missing = viewer.get("/missions/SKY/orders/night-1/job-steps/999999")
    assert missing.status_code == 404 and "no job step 999999" in missing.json()["detail"]
    log = viewer.get(f"/missions/SKY/orders/night-1/job-steps/{calib['id']}/log")
    assert log.status_code == 404 and "has no log yet" in log.json()["detail"]


def test_order_graph_as_svg_and_text(as_user: Any) -> None:
    user = as_user("sky-admin")
    svg = user.get("/missions/SKY/orders/night-1/graph")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in svg.text[:200] and "CALIB" in svg.text
    assert "SRC_CAT" in user.get("/missions/SKY/orders/night-1/graph?format=text").text


# --- products --------------------------------------------------------------------------------


def test_product_query_pages_and_filters(as_user: Any) -> None:
    user = as_user("ops")
    everything = user.get("/missions/S5P/products?limit=1000").json()
    aux = user.get("/missions/S5P/products?product_type=AUX_MET_TP&limit=1").json()
    assert aux["total"] >= 1 and len(aux["items"]) == 1
    assert aux["total"] < everything["total"] == len(everything["items"])
    window = user.get(
        "/missions/S5P/products?start=2025-03-01T00:00:00Z&stop=2025-03-01T01:00:00Z&limit=1000"
    ).json()
    assert 0 < window["total"] < everything["total"]
    assert all(
        p["stop"] > "2025-03-01T00:00:00" and p["start"] < "2025-03-01T01:00:00" for p in window["items"]
    )
    bad = user.get("/missions/S5P/products?param=novalue")
    assert bad.status_code == 400 and "expected key:value" in bad.json()["detail"]
    unknown = user.get("/missions/S5P/products?product_type=NOPE")
    assert unknown.status_code == 404 and "NOPE" in unknown.json()["detail"]


def test_download_with_range_and_checksum(as_user: Any) -> None:
    user = as_user("ops")
    product = user.get("/missions/SKY/products?product_type=RAW_EXP&limit=1").json()["items"][0]
    f = product["files"][0]
    base = f"/missions/SKY/products/{product['id']}/files/{f['file_name']}"
    whole = user.get(base)
    assert whole.status_code == 200 and len(whole.content) == f["size"]
    assert hashlib.sha256(whole.content).hexdigest() == f["sha256"] == whole.headers["x-checksum-sha256"]
    part = user.get(base, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{f['size']}"
    tail = user.get(base, headers={"Range": "bytes=-5"})
    assert tail.content == whole.content[-5:]
    beyond = user.get(base, headers={"Range": f"bytes={f['size']}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{f['size']}"
    assert user.get(f"/missions/SKY/products/{product['id']}/files/nope.bin").status_code == 404
    by_name = user.get(f"/missions/SKY/products/{f['file_name']}").json()
    assert by_name["id"] == product["id"]


def test_a_product_of_another_mission_is_not_found_through_this_one(as_user: Any) -> None:
    root = as_user("root")
    sky = root.get("/missions/SKY/products?limit=1").json()["items"][0]
    answer = root.get(f"/missions/S5P/products/{sky['id']}")
    assert answer.status_code == 404


def test_lineage_as_json_and_svg(as_user: Any) -> None:
    user = as_user("ops")
    product = user.get("/missions/SKY/products?product_type=RAW_EXP&limit=1").json()["items"][0]
    tree = user.get(f"/missions/SKY/products/{product['id']}/lineage").json()
    assert tree["root"] == product["id"] or tree.get("nodes")
    svg = user.get(f"/missions/SKY/products/{product['id']}/lineage?format=svg")
    assert svg.status_code == 200 and "<svg" in svg.text[:200]


# --- missions --------------------------------------------------------------------------------


def test_validate_and_load_a_mission_file(as_user: Any) -> None:
    from tests_paths import MISSION_DIR

    text = (MISSION_DIR / "sky.yaml").read_text()
    ok = as_user("nobody").post("/missions/validate", json={"file_name": "sky.yaml", "text": text}).json()
    assert ok["valid"] is True and ok["mission"]["code"] == "SKY"
    broken = text.replace("slicing", "slizing", 1)
    bad = as_user("nobody").post("/missions/validate", json={"file_name": "sky.yaml", "text": broken}).json()
    assert bad["valid"] is False and bad["issues"][0].startswith("sky.yaml:")
    assert as_user("ops").post("/missions", json={"file_name": "sky.yaml", "text": text}).status_code == 403
    same = as_user("sky-admin").post("/missions", json={"file_name": "sky.yaml", "text": text}).json()
    assert same["status"] == "unchanged"
    failed = as_user("sky-admin").post("/missions", json={"file_name": "sky.yaml", "text": broken})
    assert failed.status_code == 422 and failed.json()["issues"][0].startswith("sky.yaml:")


def test_step_details_of_a_page_cost_five_statements(world: Any) -> None:
    """Steps, input queries, chosen products, upstream bindings, planned outputs: one statement
    each for the whole page, never one per step."""
    from sqlalchemy import event

    from proseo.api.schemas import job_step_details, job_steps
    from proseo.planning import orders as ops

    with world.session() as session:
        order = ops.get_order(session, "SKY", "night-1")
        page = job_steps(session, order).items
        ids = [s.id for s in page]
    # The g exposures are calibrated (registered as a run would): the g stack's input is made.
    register_planned(world, next(s.id for s in page if s.product_type == "CALEXP_G"))
    with world.session() as session:
        order = ops.get_order(session, "SKY", "night-1")
        statements: list[str] = []
        listener = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(world.engine, "before_cursor_execute", listener)
        try:
            details = job_step_details(session, order, ids)
        finally:
            event.remove(world.engine, "before_cursor_execute", listener)
    assert [d.id for d in details] == ids and len(ids) == 5
    assert all(d.inputs for d in details)
    assert len(statements) == 5
    # Inputs made by upstream steps show their products as chosen (the stack's exposures).
    stack_g = next(d for d in details if d.product_type == "STACK_G")
    made = [c for i in stack_g.inputs for c in i.chosen if c.via_job_step is not None]
    assert made and all(c.name for c in made)
    assert {u.state for i in stack_g.inputs for u in i.upstream} == {"COMPLETED"}


def test_the_published_openapi_document_is_current() -> None:
    from proseo.api.openapi import render

    from tests_paths import REPO

    published = (REPO / "docs" / "openapi.json").read_text()
    assert published == render(), "regenerate: python -m proseo.api.openapi > docs/openapi.json"
