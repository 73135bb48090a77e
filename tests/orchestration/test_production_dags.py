"""Systematic production's DAGs: which exist, on what schedule, and what their task does.

The DAGs are built from a real catalogue with both sample missions and serialised as
the DAG processor serialises them; the tasks' functions run against real catalogues
(SQLite and PostgreSQL) with Asset events shaped as Airflow hands them over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, DeltaTriggerTimetable
from airflow.serialization.serialized_objects import DagSerialization
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_order import ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.orchestration import production
from proseo.settings import load_settings

from tests_paths import MISSION_DIR

ORBIT = 37100


@pytest.fixture
def both(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        for name in ("s5p", "sky"):
            sync_mission(s, load_mission(MISSION_DIR / f"{name}.yaml"))
    return catalog


def test_every_mission_gets_a_data_dag_and_one_dag_per_clock_trigger(both: Catalog) -> None:
    namespace: dict[str, Any] = {}
    built = production.build_production(namespace, catalog_url=both.url)
    # orbit_offl is disabled in the sample; every other trigger has its DAG.
    assert sorted(built) == [
        "proseo_data__S5P",
        "proseo_data__SKY",
        "proseo_trigger__S5P__l3_day_catchup",
        "proseo_trigger__SKY__month",
    ]
    data = namespace["proseo_data__S5P"]
    assert isinstance(data.timetable, AssetOrTimeSchedule)
    assert isinstance(data.timetable.timetable, DeltaTriggerTimetable)
    uris = sorted(a.uri for a in data.timetable.asset_condition.objects)
    assert uris == [f"proseo://S5P/{c}" for c in ("L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "L2__NO2___")]
    assert data.max_active_runs == 1 and not data.catchup and data.is_paused_upon_creation is False
    calendar = namespace["proseo_trigger__S5P__l3_day_catchup"]
    assert isinstance(calendar.timetable, CronTriggerTimetable)
    assert calendar.timetable.expression == "0 6 * * *"
    month = namespace["proseo_trigger__SKY__month"]
    assert isinstance(month.timetable, CronTriggerTimetable) and month.timetable.expression == "0 12 2 * *"
    # The DAG processor serialises every DAG it parses: these must survive the round trip.
    for dag in namespace.values():
        back = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert back.dag_id == dag.dag_id and [t.task_id for t in back.tasks] == ["fire"]


def test_no_trigger_dags_when_systematic_production_is_off(
    both: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROSEO_SYSTEMATIC", "false")
    assert load_settings().systematic is False
    namespace: dict[str, Any] = {}
    assert production.build_production(namespace, catalog_url=both.url) == [] and namespace == {}


def test_an_interval_trigger_runs_on_its_own_delta(both: Catalog, tmp_path: Path) -> None:
    text = (MISSION_DIR / "sky.yaml").read_text()
    text += (
        "  every_six_hours:\n    kind: interval\n    every: 6 h\n    window: 1 d\n    classes: [SRC_CAT]\n"
    )
    (tmp_path / "sky.yaml").write_text(text)
    with both.session() as s:
        sync_mission(s, load_mission(tmp_path / "sky.yaml"))
    namespace: dict[str, Any] = {}
    production.build_production(namespace, catalog_url=both.url)
    dag = namespace["proseo_trigger__SKY__every_six_hours"]
    assert isinstance(dag.timetable, DeltaTriggerTimetable)
    assert dag.timetable.delta == timedelta(hours=6)


@dataclass
class _Event:
    """The fields of Airflow's AssetEvent that the task reads."""

    extra: dict[str, Any] = field(default_factory=dict)


def test_the_data_task_orders_what_the_events_announce(both: Catalog, tmp_path: Path) -> None:
    with both.session() as s:
        loaded = loaded_from_catalog(s, "S5P")
    orbit = next(o for o in loaded.orbits["S5P"] if o.number == ORBIT)
    files = write_inputs(loaded, orbit.start, orbit.stop, tmp_path / uuid.uuid4().hex, classes={"L0__ODB_1_"})
    assert Ingestor(both, loaded).run(files).ok
    with both.session() as s:
        ids = list(s.scalars(select(Product.id)))
    events = {"proseo://S5P/L0__ODB_1_": [_Event({"product_ids": ids, "job_step_id": None}), _Event({})]}
    assert production.product_ids_of(events) == sorted(ids)
    out = production.fire_data("S5P", both.url, triggering_asset_events=events)
    assert out["created"] == [f"orbit_nrti_o{ORBIT}"] and out["released"] == [f"orbit_nrti_o{ORBIT}"]
    assert out["failed"] == []
    # A timed run (no events) finds nothing new: the order exists once.
    again = production.fire_data("S5P", both.url)
    assert again["created"] == [] and again["existing"] >= 1
    with both.session() as s:
        assert s.scalars(select(ProcessingOrder.identifier)).all() == [f"orbit_nrti_o{ORBIT}"]


def test_a_clock_task_fires_only_its_trigger(both: Catalog) -> None:
    out = production.fire_clock("S5P", "l3_day_catchup", both.url)
    assert out["failed"] == [] and all(i.startswith("l3_day_catchup_") for i in out["created"])
