"""ODIP end to end on a real ``airflow standalone``: one SKY night ordered through
``POST /ProductionOrder/OData.CSC.Order`` runs under the scheduler, its Status moves
queued -> in_progress -> completed, the notification endpoint (a real HTTP server)
receives exactly one POST delivered by the ``proseo_odip`` DAG, and the product
downloads through ``ProductionOrder(<Id>)/Product/$value`` with the catalogue's
checksum; a second order, RUNNING (its first step hangs), is cancelled through
``OData.CSC.Cancel``: Status cancelled, its Airflow run failed, no task left running."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import ProcessingOrder
from proseo.demo import INPUTS, REPO, Demo, proseo_cli
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from tests_receiver import Receiver

pytestmark = pytest.mark.e2e


def _order(start: str, stop: str, endpoint: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "WorkflowName": "SKY.SRC_CAT",
        "InputProductReference": {"Reference": "", "ContentDate": {"Start": start, "End": stop}},
        "Priority": 60,
    }
    if endpoint:
        body["NotificationEndpoint"] = endpoint
    return body


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    saved = dict(os.environ)
    home: Path = tmp_path_factory.mktemp("odip") / "demo"
    run = Demo(home, parallelism=2)
    try:
        run.prepare()
        os.environ["PROSEO_ODIP_POLL_S"] = "5"
        run.start_airflow()
        run.onboard()
        start, stop = INPUTS["SKY"][0], INPUTS["SKY"][1] + timedelta(days=1)  # two nights
        mission = load_mission(REPO / "mission_configs" / "sky.yaml")
        write_inputs(mission, start, stop, home / "inbox" / "SKY")
        proseo_cli("product", "ingest", "--mission", "SKY", str(home / "inbox" / "SKY"))
        yield run
    finally:
        run.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def odip(demo: Demo) -> httpx.Client:
    assert demo.airflow is not None
    base = f"{demo.airflow.url}/proseo/odip/odata/v1"
    token = httpx.post(
        f"{base}/oauth2/token",
        data={"grant_type": "password", "username": "admin", "password": demo.password("admin")},
        timeout=60,
    )
    assert token.status_code == 200, token.text
    return httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=120
    )


def test_order_runs_notifies_once_and_its_product_downloads(demo: Demo, odip: httpx.Client) -> None:
    started = time.monotonic()
    receiver = Receiver()
    try:
        made = odip.post(
            "/ProductionOrder/OData.CSC.Order",
            json=_order("2025-03-01T00:00:00.000Z", "2025-03-02T00:00:00.000Z", receiver.url),
        )
        assert made.status_code == 201, made.text
        key = made.json()["Id"]
        seen = [made.json()["Status"]]
        deadline = time.monotonic() + 900
        while seen[-1] not in ("completed", "failed", "cancelled"):
            assert time.monotonic() < deadline, f"not finished after 900 s: {seen}"
            time.sleep(2)
            status = odip.get(f"/ProductionOrder({key})").json()["Status"]
            if status != seen[-1]:
                seen.append(status)
        assert seen == ["queued", "in_progress", "completed"], seen
        final = odip.get(f"/ProductionOrder({key})").json()
        assert final["StatusMessage"] == "requested output product is available"
        assert final["CompletedDate"] and final["OrderOutputSize"] > 0
        deadline = time.monotonic() + 180
        while not receiver.accepted:
            assert time.monotonic() < deadline, "no notification within 180 s of the order's end"
            time.sleep(1)
        time.sleep(20)  # four more looks of the watcher: nothing more may arrive
        assert len(receiver.accepted) == 1
        assert (receiver.accepted[0]["Id"], receiver.accepted[0]["Status"]) == (key, "completed")
    finally:
        receiver.close()
    product = odip.get(f"/ProductionOrder({key})/Product").json()
    assert product["Name"].startswith("SKY_") and "SRC_CAT" in product["Name"]
    data = odip.get(f"/ProductionOrder({key})/Product/$value")
    assert data.status_code == 200 and len(data.content) == product["ContentLength"]
    sha256 = hashlib.sha256(data.content).hexdigest()
    assert data.headers["X-Checksum-SHA256"] == sha256
    assert data.headers["X-Checksum-MD5"] == hashlib.md5(data.content).hexdigest()
    listed = demo.ok("GET", "/missions/SKY/products", params={"product_type": "SRC_CAT"})["items"]
    assert any(f["sha256"] == sha256 for p in listed for f in p["files"])
    print(f"\nODIP order queued -> completed -> notified in {time.monotonic() - started:.0f} s")


def test_cancel_a_running_order(demo: Demo, odip: httpx.Client) -> None:
    """The second night's order, its first processor hanging (the sample processors' test
    hook ``proseo_test_mode=hang``, which the ODIP does not offer clients, so the test sets
    it on the order in the catalogue before any step starts), is cancelled while RUNNING."""
    assert demo.airflow is not None
    made = odip.post(
        "/ProductionOrder/OData.CSC.Order",
        json=_order("2025-03-02T00:00:00.000Z", "2025-03-03T00:00:00.000Z"),
    )
    assert made.status_code == 201, made.text
    key = made.json()["Id"]
    catalog = Catalog(demo.catalog_url)
    with catalog.session() as s:
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.uuid == key)
            .values(dynamic_parameters={"proseo_test_mode": "hang"})
        )
    deadline = time.monotonic() + 600
    while True:
        with catalog.session() as s:
            state, dag_id = s.execute(
                select(ProcessingOrder.state, ProcessingOrder.dag_id).where(ProcessingOrder.uuid == key)
            ).one()
        if state == "RUNNING":
            break
        assert state in ("APPROVED", "PLANNED", "RELEASING", "RELEASED"), state
        assert time.monotonic() < deadline, f"not running after 600 s: {state}"
        time.sleep(2)
    assert odip.get(f"/ProductionOrder({key})").json()["Status"] == "in_progress"
    assert [r["state"] for r in demo.airflow.client.runs(dag_id)] == ["running"]
    cancelled = odip.post(f"/ProductionOrder({key})/OData.CSC.Cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["Status"], cancelled.json()["StatusMessage"]) == (
        "cancelled",
        "request cancelled by user",
    )
    runs = demo.airflow.client.runs(dag_id)
    assert [r["state"] for r in runs] == ["failed"]
    assert demo.airflow.client.request("GET", f"/api/v2/dags/{dag_id}")["is_paused"] is True
    # The hanging task is stopped: no task instance of the run stays running.
    path = f"/api/v2/dags/{dag_id}/dagRuns/{runs[0]['dag_run_id']}/taskInstances"
    deadline = time.monotonic() + 180
    while [t for t in demo.airflow.client.request("GET", path)["task_instances"] if t["state"] == "running"]:
        assert time.monotonic() < deadline, "a task instance still runs 180 s after the cancel"
        time.sleep(2)
    # ... and so is its processor: no process works for the order any more.
    identifier = dag_id.rsplit("__", 1)[1]
    deadline = time.monotonic() + 180
    while _processes_of(identifier):
        left = _processes_of(identifier)
        assert time.monotonic() < deadline, f"still running 180 s after the cancel: {left}"
        time.sleep(2)
    assert odip.get(f"/ProductionOrder({key})").json()["Status"] == "cancelled"


def _processes_of(identifier: str) -> list[str]:
    """Command lines of the processes whose command line or working directory names ``identifier``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if identifier in cmd or identifier in cwd:
            found.append(cmd[:200])
    return found
