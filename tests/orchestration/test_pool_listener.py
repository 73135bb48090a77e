"""The run-start listener's facility pool never fails the scheduler's transaction.

Three first orders of one facility released together: the scheduler starts their runs
in one session and commits once. This reproduces that on Airflow's own metadata
database (SQLite, migrated in a throwaway home) with the real listener hook, in a
process of its own (Airflow reads AIRFLOW_HOME on first import); about 20 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.schema import upgrade
from proseo.devtools.dagtest import prepare_home
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

PROBE = Path(__file__).with_name("scheduler_session_probe.py")
DAY = datetime(2025, 3, 1, tzinfo=UTC)


def test_three_first_runs_of_a_facility_commit_with_one_pool(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(url)
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    dag_ids = []
    for n in range(3):
        night = DAY + timedelta(days=n)
        spec = OrderSpec(
            identifier=f"night-{n}",
            requested_classes=["CALEXP_G"],
            start=night,
            stop=night + timedelta(days=1),
        )
        with catalog.session() as s:
            orders.create_order(s, "SKY", spec)
        lifecycle.approve_order(catalog, "SKY", spec.identifier)
        lifecycle.plan_order(catalog, "SKY", spec.identifier)
        dag_ids.append(lifecycle.release_order(catalog, "SKY", spec.identifier).dag_id)
    (tmp_path / "dags").mkdir()
    env = {**os.environ, **prepare_home(tmp_path / "airflow", tmp_path / "dags"), "PROSEO_CATALOG_URL": url}
    result = subprocess.run(
        [sys.executable, str(PROBE), *dag_ids], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    rounds = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r["round"] for r in rounds] == ["first start", "after a restart"]
    for r in rounds:
        assert r["outcome"] == "committed", r
        # One pool for the facility, sized by its max_concurrent_job_steps (SKY local: 2).
        assert r["pools"] == {"proseo__sky__local": 2}, r
