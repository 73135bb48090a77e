"""The Celery deployment stops with a task running: the task ends and its success is recorded.

Signalled all at once, the api-server went with the workers: a worker's warm shutdown let
its running task finish, but the task could no longer report its end, and Airflow's
database kept it "running" (this test, with every component in one phase). Stopped in
order (the scheduler, then the workers, then the api-server and the rest), nothing needs
more than SIGINT and the database records the task's success. Starts a real deployment
(about a minute).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from proseo.catalog.db import make_engine
from proseo.devtools import services
from proseo.devtools.celery_deployment import CeleryDeployment

pytestmark = pytest.mark.e2e

SLOW_DAG = """
import time
from datetime import datetime
from airflow.sdk import dag, task


@dag(dag_id="slow_stop", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def slow_stop():
    @task
    def slow():
        time.sleep(12)
        return "done"

    slow()


slow_stop()
"""


def test_a_stop_while_a_task_runs_lets_it_end_and_report(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "slow_stop.py").write_text(SLOW_DAG)
    af = CeleryDeployment(
        tmp_path / "af",
        dags_folder=dags,
        workers=[["default"]],
        concurrency=1,
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
    )
    af.start()
    try:
        af.client.wait_for_dag("slow_stop", timeout=180)
        run = af.client.trigger("slow_stop")
        deadline = time.monotonic() + 120
        while [t["state"] for t in af.client.task_instances("slow_stop", run["dag_run_id"])] != ["running"]:
            assert time.monotonic() < deadline, af.client.task_instances("slow_stop", run["dag_run_id"])
            time.sleep(0.5)
    finally:
        stopped = af.stop(keep_database=True)
    engine = make_engine(af.metadata_url)
    try:
        with engine.connect() as conn:
            states = conn.execute(text("SELECT state FROM task_instance WHERE dag_id = 'slow_stop'")).all()
    finally:
        engine.dispose()
        services.drop_database(af.postgres, af.database)
    assert stopped.clean, stopped
    assert [tuple(row) for row in states] == [("success",)]
