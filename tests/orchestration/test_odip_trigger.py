"""The ODIP watcher and DAG: the trigger says nothing while nothing is owed, fires once an
ODIP order with an endpoint has ended, survives Airflow's serialisation; the DAG is
scheduled on the Asset it watches. (tests/e2e/test_odip_standalone.py runs them for real.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.interfaces import odip_orders
from proseo.missions import load_mission
from proseo.orchestration.odip import DAG_ID, OdipTrigger, build_odip_dag
from proseo.planning import lifecycle

from tests_paths import MISSION_DIR

ORDER = {
    "WorkflowName": "SKY.SRC_CAT",
    "InputProductReference": {"ContentDate": {"Start": "2025-03-01T00:00Z", "End": "2025-03-02T00:00Z"}},
    "NotificationEndpoint": "http://127.0.0.1:9/notify",
}


async def _first_event(trigger: OdipTrigger) -> Any:
    async for event in trigger.run():
        return event.payload
    return None


def test_the_trigger_fires_when_an_order_has_ended(catalog: Catalog, data_dirs: dict[str, Path]) -> None:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        order = odip_orders.create(s, odip_orders.parse_request(s, ORDER, None), "ops")
        identifier = order.identifier
    lifecycle.approve_order(catalog, "SKY", identifier)
    trigger = OdipTrigger(poll_s=0.01, catalog_url=catalog.url)
    assert trigger.look() == 0  # queued, within its grace time: nothing to do
    lifecycle.cancel_order(catalog, "SKY", identifier)
    assert trigger.look() == 1
    path, kwargs = trigger.serialize()
    assert path == "proseo.orchestration.odip.OdipTrigger"
    again = OdipTrigger(**kwargs)
    assert asyncio.run(_first_event(again)) == {"due": 1}


def test_the_dag_is_scheduled_on_the_watched_asset() -> None:
    namespace: dict[str, Any] = {}
    dag = build_odip_dag(namespace)
    assert namespace == {DAG_ID: dag} and dag.max_active_runs == 1
    assets = list(dag.timetable.asset_condition.objects)
    assert [a.uri for a in assets] == ["proseo-odip://outbox/"]
    assert isinstance(assets[0].watchers[0].trigger, OdipTrigger)
    assert [t.task_id for t in dag.tasks] == ["deliver"]
