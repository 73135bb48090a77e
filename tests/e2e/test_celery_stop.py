"""The Celery deployment stops with a task running: the task ends and its success is recorded.

Signalled all at once, the api-server went with the workers: a worker's warm shutdown let
its running task finish, but the task could no longer report its end, and Airflow's
database kept it "running" (this test, with every component in one phase). Stopped in
order (the scheduler, then the workers, then the api-server and the rest), nothing needs
more than SIGINT and the database records the task's success. Starts a real deployment
(about a minute).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from proseo.catalog.db import make_engine
from proseo.devtools import services
from proseo.devtools.celery_deployment import CeleryDeployment
from tests_slow_stop import run_until_task_runs, write_slow_dag

pytestmark = pytest.mark.e2e


def test_a_stop_while_a_task_runs_lets_it_end_and_report(tmp_path: Path) -> None:
    dags = write_slow_dag(tmp_path / "dags")
    af = CeleryDeployment(
        tmp_path / "af",
        dags_folder=dags,
        workers=[["default"]],
        concurrency=1,
        catalog_url=f"sqlite:///{tmp_path / 'catalog.db'}",
    )
    af.start()
    try:
        run_until_task_runs(af)
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
