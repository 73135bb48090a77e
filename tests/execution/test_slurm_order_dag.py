"""A SKY night order whose facility is Slurm runs as its Airflow DAG, every step a batch job.

The order's DAG comes from the real shard files in ``dags/``; ``dag.test()`` runs it in
its own process (Airflow reads AIRFLOW_HOME on first import) and runs each step's
deferred trigger in-process, so this covers the factory's choice of
``JobStepSlurmOperator``, the deferral and the resumption with the trigger's event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests_execution_helpers import DAY, ingest

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import JobStep
from proseo.catalog.schema import upgrade
from proseo.devtools.slurm import SlurmCluster
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec
from tests_slurm import SLURM_FACILITIES

from tests_paths import MISSION_DIR, REPO


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slurm_cluster: SlurmCluster) -> dict[str, str]:
    values = {
        "PROSEO_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PROSEO_DATA": str(tmp_path / "data"),
        "PROSEO_SCRATCH": str(tmp_path / "scratch"),
        "PROSEO_SLURM_SHARED": str(tmp_path / "shared"),
        "PROSEO_TASK_RETRIES": "0",
        **slurm_cluster.env(),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_a_sky_night_runs_on_the_slurm_facility(env: dict[str, str], tmp_path: Path) -> None:
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    path = MISSION_DIR / "sky.yaml"
    with catalog.session() as s:
        sync_mission(
            s, load_mission(path, text=path.read_text().replace("facilities:\n", SLURM_FACILITIES, 1))
        )
    ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    spec = OrderSpec(
        identifier="night",
        requested_classes=["SRC_CAT"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        facility="cluster",
    )
    with catalog.session() as s:
        orders.create_order(s, "SKY", spec)
    lifecycle.approve_order(catalog, "SKY", "night")
    lifecycle.plan_order(catalog, "SKY", "night")
    dag_id = lifecycle.release_order(catalog, "SKY", "night").dag_id

    command = [sys.executable, "-m", "proseo.devtools.dagtest", "--airflow-home", str(tmp_path / "airflow")]
    result = subprocess.run(
        [*command, "--dags", str(REPO / "dags"), str(dag_id)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=900,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"dag_id"')]
    with catalog.session() as s:
        reasons = dict(s.execute(select(JobStep.id, JobStep.failure_reason)).all())
    assert result.returncode == 0 and len(lines) == 1, (lines, reasons, result.stderr[-4000:])
    (run,) = lines
    assert run["state"] == "success" and run["task_instances"] == {"success": 5}, run
    with catalog.session() as s:
        assert orders.get_order(s, "SKY", "night").state == "COMPLETED"
        assert set(s.scalars(select(JobStep.state))) == {"COMPLETED"}
    # Every step was a batch job: its directory on the shared directory holds the script,
    # the wrapper's log and the manifest that came back.
    tries = sorted((tmp_path / "shared" / "SKY" / "night").glob("*/try-1"))
    assert len(tries) == 5
    for directory in tries:
        assert {"job.sh", "spec.json", "manifest.json", "wrapper.log"} <= {
            p.name for p in directory.iterdir()
        }
