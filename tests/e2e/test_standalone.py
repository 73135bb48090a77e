"""End to end on a real ``airflow standalone``: REST with Airflow's token, the factory's
DAGs starting by themselves under the scheduler, the catalogue, permissions.

This is the demo's story (``proseo.demo.Demo``) checked instead of printed: both
sample missions onboarded over /proseo/api/v1, generated inputs ingested, one order
per mission created and released over REST, both complete, their products are listed
by the API with checksums and lineage back to the inputs; a request without a token
answers 401, a viewer of S5P gets 403 for a SKY product; suspend and resume over
REST pause and unpause the order's DAG in Airflow. Airflow is stopped with SIGINT
and nothing of it may be left running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proseo.demo import ORDERS, Demo, proseo_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    saved = dict(os.environ)
    home: Path = tmp_path_factory.mktemp("e2e") / "demo"
    run = Demo(home, grants={"admin": ("admin", "*"), "scientist": ("viewer", "S5P")})
    try:
        run.prepare()
        run.start_airflow()
        yield run
    finally:
        run.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def finished(demo: Demo) -> dict[str, dict]:
    demo.onboard()
    demo.ingest()
    dag_ids = demo.submit()
    assert dag_ids == {"S5P": "proseo__S5P__no2-morning", "SKY": "proseo__SKY__night-0301"}
    return demo.follow(timeout=900)


def test_orders_created_over_rest_complete_under_the_scheduler(demo: Demo, finished: dict[str, dict]) -> None:
    for code, order in finished.items():
        assert order["state"] == "COMPLETED", (code, order["state_message"], order["progress"])
        assert order["progress"] == {"COMPLETED": order["job_steps"]}
        assert [e["operation"] for e in order["history"]][-3:] == ["released", "start", "complete"]
        assert demo.airflow is not None
        # The order is COMPLETED by its last step's task; the run ends when the scheduler hears.
        demo.airflow.wait_for_run(order["dag_id"], timeout=120, poll=1.0)
        runs = demo.airflow.client.runs(order["dag_id"])
        assert [r["state"] for r in runs] == ["success"]  # started by itself, exactly once


def test_products_appear_through_the_api_with_lineage(demo: Demo, finished: dict[str, dict]) -> None:
    made = demo.show_products()
    assert len(made["S5P"]) == finished["S5P"]["plan"]["by_class"]["L2__NO2___"]
    assert len(made["SKY"]) == 1
    for products in made.values():
        for p in products:
            assert p["files"] and all(len(f["sha256"]) == 64 for f in p["files"])
    tree = demo.ok("GET", f"/missions/S5P/products/{made['S5P'][0]['id']}/lineage")
    kinds = {n["product_type"] for n in tree["nodes"]}
    assert {"L2__NO2___", "L2__CLOUD_", "L0__ODB_1_", "AUX_MET_TP"} <= kinds
    assert any(k.startswith("L1B_") for k in kinds)
    f = made["SKY"][0]["files"][0]
    part = demo.api(
        "GET",
        f"/missions/SKY/products/{made['SKY'][0]['id']}/files/{f['file_name']}",
        headers={"Range": "bytes=0-9"},
    )
    assert part.status_code == 206 and len(part.content) == 10


def test_no_token_401_other_mission_403(demo: Demo, finished: dict[str, dict]) -> None:
    assert demo.airflow is not None
    base = f"{demo.airflow.url}/proseo/api/v1"
    assert httpx.get(f"{base}/missions", timeout=30).status_code == 401
    assert (
        httpx.get(f"{base}/missions", headers={"Authorization": "Bearer x.y.z"}, timeout=30).status_code
        == 401
    )
    sky = demo.ok("GET", "/missions/SKY/products", params={"limit": 1})["items"][0]
    s5p = demo.ok("GET", "/missions/S5P/products", params={"limit": 1})["items"][0]
    assert demo.api("GET", f"/missions/SKY/products/{sky['id']}", user="scientist").status_code == 403
    assert demo.api("GET", f"/missions/S5P/products/{s5p['id']}", user="scientist").status_code == 200
    body = {**ORDERS["S5P"], "identifier": "not-allowed"}
    assert demo.api("POST", "/missions/S5P/orders", user="scientist", json=body).status_code == 403
    assert demo.api("GET", "/me", user="scientist").json() == {
        "user": "scientist",
        "roles": {"S5P": "viewer"},
    }


def test_suspend_and_resume_steer_the_dag_in_airflow(demo: Demo, finished: dict[str, dict]) -> None:
    """An order waiting for inputs that never come: suspend (REST) pauses its DAG, resume
    (CLI) unpauses it, cancel (REST) fails its run."""
    assert demo.airflow is not None
    body = {
        **ORDERS["S5P"],
        "identifier": "waits",
        "start": "2025-03-03T00:00:00Z",
        "stop": "2025-03-03T02:00:00Z",
    }
    created = demo.ok("POST", "/missions/S5P/orders?release=true", json=body)
    dag_id = created["dag_id"]
    demo.airflow.client.wait_for_dag(dag_id, timeout=180)
    # The run must exist before the steering, or cancel has no run to mark failed.
    demo.airflow.client.wait_for_first_run(dag_id, timeout=180)
    suspended = demo.ok("POST", "/missions/S5P/orders/waits/suspend", json={"message": "e2e"})
    assert suspended["airflow"].startswith(f"{dag_id}: paused")
    assert demo.airflow.client.request("GET", f"/api/v2/dags/{dag_id}")["is_paused"] is True
    # The CLI steers the same way (PROSEO_AIRFLOW_URL and credentials configure it).
    printed = proseo_cli("order", "resume", "--mission", "S5P", "waits", airflow=demo.airflow.url)
    assert f"airflow: {dag_id}: unpaused" in printed
    assert demo.airflow.client.request("GET", f"/api/v2/dags/{dag_id}")["is_paused"] is False
    cancelled = demo.ok("POST", "/missions/S5P/orders/waits/cancel")
    assert cancelled["order"]["state"] == "FAILED"
    assert "marked failed" in cancelled["airflow"] and "paused" in cancelled["airflow"]
    assert demo.airflow.client.request("GET", f"/api/v2/dags/{dag_id}")["is_paused"] is True
    assert [r["state"] for r in demo.airflow.client.runs(dag_id)] == ["failed"]
    # retry: the order is released again and the same run's failed tasks are cleared
    retried = demo.ok("POST", "/missions/S5P/orders/waits/retry")
    assert retried["order"]["state"] == "RELEASED"
    assert "cleared to run again" in retried["airflow"] and ", 0 failed" not in retried["airflow"]
    runs = demo.airflow.client.runs(dag_id)
    assert [r["state"] for r in runs] in (["queued"], ["running"])
    # Whether the cancel found the sensor deferred (failed) or not started yet (skipped),
    # nothing of the run is left failed or skipped after the retry.
    tis = demo.airflow.client.request(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{runs[0]['dag_run_id']}/taskInstances"
    )
    assert tis["task_instances"]
    assert not [t for t in tis["task_instances"] if t["state"] in ("failed", "skipped", "upstream_failed")]
    demo.ok("POST", "/missions/S5P/orders/waits/cancel")
