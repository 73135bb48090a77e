"""The pickup DAG and an order DAG with a deadline, run by Airflow (``dag.test()`` in its
own process, through the repository's DAG files): delivered files become catalogued
products and Asset events per class; the order's tasks get weights from its slack."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.catalog.pickup import CLAIMED, DONE
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec
from proseo.planning.urgency import weight_for

from tests_paths import MISSION_DIR, REPO

NIGHT = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))


def _dagtest(home: Path, env: dict[str, str], *dag_ids: str) -> dict[str, dict]:
    command = [sys.executable, "-m", "proseo.devtools.dagtest", "--airflow-home", str(home)]
    command += ["--dags", str(REPO / "dags"), *dag_ids]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"dag_id"')]
    assert done.returncode == 0, done.stderr[-4000:]
    return {r["dag_id"]: r for r in lines}


def test_delivered_files_are_ingested_by_the_pickup_dag_and_orders_weighted_by_slack(tmp_path: Path) -> None:
    env = {
        "PROSEO_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PROSEO_DATA": str(tmp_path / "data"),
        "PROSEO_SCRATCH": str(tmp_path / "scratch"),
        "PROSEO_PICKUP_ROOT": str(tmp_path / "pickup"),
    }
    os.environ.update({"PROSEO_DATA": env["PROSEO_DATA"]})
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        mission = loaded_from_catalog(s, "SKY")
    # What the trigger claimed (the trigger itself is tested on its own).
    files = write_inputs(mission, *NIGHT, tmp_path / "pickup" / "SKY" / CLAIMED, size=256)
    home = tmp_path / "airflow"

    pickup = _dagtest(home, env, "proseo_pickup__SKY")["proseo_pickup__SKY"]
    assert pickup["state"] == "success"
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Product)) == len(files)
    assert sorted(os.listdir(tmp_path / "pickup" / "SKY" / CLAIMED)) == []
    assert {f.name for f in files} <= set(os.listdir(tmp_path / "pickup" / "SKY" / DONE))
    events = pickup["asset_events"]
    assert "proseo://SKY/RAW_EXP" in events and "proseo://SKY/CAL_BIAS" in events
    announced = [i for uri in events for e in events[uri] for i in e["product_ids"]]
    assert len(announced) == len(files)

    deadline = datetime.now(UTC) + timedelta(hours=2)
    with catalog.session() as s:
        orders.create_order(
            s,
            "SKY",
            OrderSpec(
                identifier="nrt", requested_classes=["STACK_G"], start=NIGHT[0], stop=NIGHT[1], priority=5
            ),
        )
        s.execute(
            update(ProcessingOrder).where(ProcessingOrder.identifier == "nrt").values(deadline=deadline)
        )
    lifecycle.approve_order(catalog, "SKY", "nrt")
    lifecycle.plan_order(catalog, "SKY", "nrt")
    dag_id = lifecycle.release_order(catalog, "SKY", "nrt").dag_id or ""
    assert _dagtest(home, env, dag_id)[dag_id]["state"] == "success"
    with sqlite3.connect(home / "airflow.db") as db:
        weights = [
            w for (w,) in db.execute("SELECT priority_weight FROM task_instance WHERE dag_id = ?", (dag_id,))
        ]
    assert weights and all(weight_for(5, deadline, datetime.now(UTC)) >= w > 5 + 700 for w in weights)
