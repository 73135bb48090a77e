"""A DAG whose one task runs 12 s, for the e2e tests that stop Airflow while a task runs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

DAG_ID = "slow_stop"

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


def write_slow_dag(dags: Path) -> Path:
    """The DAG file in ``dags`` (created), before Airflow starts; the folder."""
    dags.mkdir(parents=True, exist_ok=True)
    (dags / f"{DAG_ID}.py").write_text(SLOW_DAG)
    return dags


def run_until_task_runs(af: Any, timeout: float = 120) -> None:
    """Trigger the DAG on a started Airflow and return once its task is running."""
    af.client.wait_for_dag(DAG_ID, timeout=180)
    run = af.client.trigger(DAG_ID)
    deadline = time.monotonic() + timeout
    while [t["state"] for t in af.client.task_instances(DAG_ID, run["dag_run_id"])] != ["running"]:
        assert time.monotonic() < deadline, af.client.task_instances(DAG_ID, run["dag_run_id"])
        time.sleep(0.5)
