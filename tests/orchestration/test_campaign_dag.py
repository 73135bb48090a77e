"""The campaign DAG: its schedule and priority, and its task run against real catalogues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DeltaTriggerTimetable
from airflow.serialization.serialized_objects import DagSerialization

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.missions import load_mission
from proseo.orchestration import campaigns
from proseo.planning import campaign
from proseo.planning.campaign_spec import parse_campaign
from tests_campaign import AUX, L0, ingest, order_rows

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


def test_one_dag_every_pass_interval_below_the_trigger_dags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROSEO_CAMPAIGN_PASS_S", "120")
    namespace: dict[str, Any] = {}
    assert campaigns.build_campaigns(namespace) == ["proseo_campaigns"]
    dag = namespace["proseo_campaigns"]
    assert isinstance(dag.timetable, DeltaTriggerTimetable) and dag.timetable.delta == timedelta(seconds=120)
    assert dag.max_active_runs == 1 and not dag.catchup
    (task,) = dag.tasks
    assert task.priority_weight == campaigns.PRIORITY_WEIGHT < 1000
    back = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert [t.task_id for t in back.tasks] == ["pass"]


def test_the_task_passes_over_running_campaigns_only(s5p: Catalog, tmp_path: Path) -> None:
    ingest(s5p, DAY - timedelta(days=1), DAY + timedelta(days=2), tmp_path, AUX | L0)
    for name in ("running", "created"):
        spec = parse_campaign(
            {
                "name": name,
                "requested_classes": ["L1B_______"],
                "start": DAY.isoformat(),
                "stop": (DAY + timedelta(days=1)).isoformat(),
                "output_parameters": {"*": {"collection": 4}},
            }
        )
        with s5p.session() as s:
            campaign.create_campaign(s, "S5P", spec)
    with s5p.session() as s:
        campaign._move(campaign.get_campaign(s, "S5P", "running", lock=True), "S5P", "start")
    out = campaigns.run_passes(s5p.url)
    assert list(out) == ["S5P/running"]
    assert out["S5P/running"]["created"] == ["running_20250301"] == out["S5P/running"]["released"]
    assert [o.identifier for o in order_rows(s5p)] == ["running_20250301"]
    assert campaigns.run_passes(s5p.url)["S5P/running"]["created"] == []  # the window holds it
