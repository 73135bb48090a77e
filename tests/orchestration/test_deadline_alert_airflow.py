"""A released order's deadline alert the way Airflow's scheduler handles it: the DAG
processor stores the alert, a new run gets a deadline at the order's deadline, a miss
queues our callback for the triggerer, whose CallbackTrigger runs it against the
catalogue (in its own process with its own Airflow home: Airflow reads it on import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.schema import upgrade
from proseo.devtools.dagtest import prepare_home
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, REPO

DUE = datetime(2025, 6, 1, 12, tzinfo=UTC)  # long past: the run is late from its start

RUNNER = r"""
import asyncio, json, sys
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
from airflow.models.dagbundle import DagBundleModel
from airflow.models.deadline import Deadline
from airflow.models.serialized_dag import SerializedDagModel
from airflow.triggers.callback import CallbackTrigger
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunTriggeredByType, DagRunType
from sqlalchemy import select
from datetime import UTC, datetime

dags, dag_id = sys.argv[1], sys.argv[2]
bag = DagBag(dag_folder=dags)
with create_session() as s:
    s.merge(DagBundleModel(name="dags-folder"))
sync_bag_to_db(bag, "dags-folder", None)  # what the DAG processor does
with create_session() as s:
    dag = SerializedDagModel.get(dag_id, session=s).dag
    dag.create_dagrun(
        run_id="scheduled__late", run_type=DagRunType.SCHEDULED, logical_date=None, data_interval=None,
        run_after=datetime.now(UTC), triggered_by=DagRunTriggeredByType.TIMETABLE,
        state=DagRunState.RUNNING, session=s, conf={},
    )
    s.flush()
    (deadline,) = s.scalars(select(Deadline)).all()
    out = {"deadline_time": deadline.deadline_time.isoformat()}
    deadline.handle_miss(session=s)  # what the scheduler does once the time has passed
    s.flush()
    data = deadline.callback.data
    out["callback"] = {"type": type(deadline.callback).__name__, "path": data["path"]}
trigger = CallbackTrigger(data["path"], dict(data["kwargs"]))  # what the triggerer runs

async def run():
    return [event.payload async for event in trigger.run()]

out["events"] = [{k: str(v) if k == "state" else v for k, v in e.items()} for e in asyncio.run(run())]
print("RESULT " + json.dumps(out, default=str), flush=True)
"""


def test_airflow_runs_the_deadline_callback_of_a_late_order(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    env = {"PROSEO_CATALOG_URL": url, "PROSEO_DATA": str(tmp_path / "data")}
    catalog = Catalog(url)
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        start = datetime(2025, 3, 1, tzinfo=UTC)
        spec = OrderSpec(
            identifier="late", requested_classes=["STACK_G"], start=start, stop=start + timedelta(1)
        )
        orders.create_order(s, "SKY", spec)
        s.execute(update(ProcessingOrder).values(deadline=DUE))
    lifecycle.approve_order(catalog, "SKY", "late")
    lifecycle.plan_order(catalog, "SKY", "late")
    dag_id = lifecycle.release_order(catalog, "SKY", "late").dag_id or ""

    home = prepare_home(tmp_path / "airflow", REPO / "dags")
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(REPO / "dags"), dag_id],
        capture_output=True,
        text=True,
        env={**os.environ, **home, **env},
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-4000:]
    result = json.loads(lines[0].removeprefix("RESULT "))
    assert datetime.fromisoformat(result["deadline_time"]) == DUE
    assert result["callback"] == {
        "type": "TriggererCallback",
        "path": "proseo.orchestration.deadlines.order_deadline_missed",
    }
    running, finished = result["events"]
    assert (running["state"], finished["state"]) == ("running", "success"), finished
    # Text, as the triggerer stores it in the callback row (a dict fails that UPDATE on SQLite).
    assert isinstance(finished["body"], str)
    body = json.loads(finished["body"])
    assert body["recorded"] is True and body["order"] == "SKY/late"
    with catalog.session() as s:
        missed = s.scalar(select(ProcessingOrder.deadline_missed_at))
    assert missed is not None and missed > DUE
