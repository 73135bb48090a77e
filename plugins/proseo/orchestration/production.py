"""Systematic production on Airflow: per mission, a data DAG and one DAG per clock trigger.

The decisions (which slices, which orders, once) are the core's
(:mod:`proseo.planning.generate`); this module only says *when* Airflow asks:

* ``proseo_data__<MISSION>`` is scheduled on the Assets ``proseo://<MISSION>/<class>`` of
  every class a data trigger is ``on`` (registration and the pickup directory emit them,
  with the product ids in the event's extra) **or** every ``PROSEO_TRIGGER_SCAN_S``
  (``AssetOrTimeSchedule``): the timed runs catch arrivals nobody announced (an
  ingestion from the CLI, an event lost in a restart) and settle ``settle`` triggers.
  ``max_active_runs=1``: one generator pass of a mission at a time.
* ``proseo_trigger__<MISSION>__<name>`` per calendar trigger on its own cron
  (``CronTriggerTimetable``, UTC), per interval trigger on ``DeltaTriggerTimetable``;
  orbit triggers on the scan interval (orbit ends follow no cron, and an
  ``EventsTimetable`` of 10,000 orbit ends would be serialised on every parse).

Partitioned timetables (``CronPartitionTimetable``, ``PartitionedAssetTimetable`` with a
``RollupMapper``) are not used: a slice's completeness here is validity *coverage*
(``MINCOVER``) over products of any arrival order, not a count of partition events,
and once-per-slice is kept by the catalogue's generation key, which also covers
orders made by hand and by other triggers, not only by one DAG's partitions.

Runs need no catch-up: each pass handles every firing time since the trigger's
cursor in the catalogue, so a scheduler that was down for days fires each missed
period once, in its first run.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import (
    DAG,
    AssetAny,
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    DeltaTriggerTimetable,
)
from sqlalchemy import select

from proseo.catalog.configs import revision_config_of
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import latest_revision
from proseo.catalog.model_mission import Mission
from proseo.execution.steptask import asset_for
from proseo.missions.models import MissionConfig
from proseo.missions.production import TriggerKind
from proseo.orchestration.factory import START
from proseo.planning import generate
from proseo.settings import get_settings

log = logging.getLogger(__name__)

CLOCK = (TriggerKind.ORBIT, TriggerKind.CALENDAR, TriggerKind.INTERVAL)


def _summary(result: generate.Pass) -> dict[str, Any]:
    return {
        "created": result.created,
        "released": result.released,
        "failed": result.failed,
        "existing": sum(f.existing for f in result.fired),
        "waiting": [w for f in result.fired for w in f.waiting][:100],
    }


def _report(mission: str, result: generate.Pass) -> dict[str, Any]:
    out = _summary(result)
    log.info(
        "%s: %d order(s) created, %d released, %d existing, %d slice(s) waiting",
        mission,
        len(out["created"]),
        len(out["released"]),
        out["existing"],
        len(out["waiting"]),
    )
    for line in result.failed:
        log.error("%s: generated order not released: %s", mission, line)
    return out


def product_ids_of(events: Any) -> list[int]:
    """The product ids in the extras of the run's triggering Asset events."""
    ids: set[int] = set()
    for batch in (events or {}).values():
        for event in batch:
            for value in (getattr(event, "extra", None) or {}).get("product_ids", []) or []:
                if isinstance(value, int) and not isinstance(value, bool):
                    ids.add(value)
    return sorted(ids)


def fire_data(mission: str, catalog_url: str | None = None, **context: Any) -> dict[str, Any]:
    """The data DAG's task: the announced products first, then the scan since the cursors."""
    catalog = Catalog(catalog_url)
    ids = product_ids_of(context.get("triggering_asset_events"))
    announced = generate.fire_on_products(catalog, mission, ids) if ids else generate.Pass()
    scanned = generate.fire_missed(catalog, mission)
    merged = generate.Pass(
        fired=announced.fired + scanned.fired,
        released=announced.released + scanned.released,
        failed=announced.failed + scanned.failed,
    )
    return _report(mission, merged)


def fire_clock(mission: str, trigger: str, catalog_url: str | None = None, **_: Any) -> dict[str, Any]:
    """A clock trigger's task: every firing time since its cursor, up to now."""
    return _report(mission, generate.fire_due(Catalog(catalog_url), mission, names=[trigger]))


def _dag(dag_id: str, schedule: Any, mission: str, doc: str) -> DAG:
    return DAG(
        dag_id=dag_id,
        schedule=schedule,
        start_date=START,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["proseo", "systematic", mission],
        doc_md=doc,
    )


def data_dag(mission: str, cfg: MissionConfig, catalog_url: str | None = None) -> DAG | None:
    on = sorted({c for t in cfg.triggers.values() if t.enabled and t.kind is TriggerKind.DATA for c in t.on})
    if not on:
        return None
    every = timedelta(seconds=get_settings().trigger_scan_s)
    schedule = AssetOrTimeSchedule(
        timetable=DeltaTriggerTimetable(every), assets=AssetAny(*(asset_for(mission, c) for c in on))
    )
    dag = _dag(
        f"proseo_data__{mission}",
        schedule,
        mission,
        f"Data triggers of {mission}: on arrivals of {', '.join(on)}, and every {every}.",
    )
    with dag:
        PythonOperator(
            task_id="fire",
            python_callable=fire_data,
            op_kwargs={"mission": mission, "catalog_url": catalog_url},
            priority_weight=1000,
        )
    return dag


def clock_dags(mission: str, cfg: MissionConfig, catalog_url: str | None = None) -> list[DAG]:
    out = []
    scan = timedelta(seconds=get_settings().trigger_scan_s)
    for name, t in cfg.triggers.items():
        if not t.enabled or t.kind not in CLOCK:
            continue
        if t.kind is TriggerKind.CALENDAR:
            assert t.cron is not None
            schedule: Any = CronTriggerTimetable(t.cron, timezone="UTC")
        elif t.kind is TriggerKind.INTERVAL:
            assert t.every is not None
            schedule = DeltaTriggerTimetable(t.every)
        else:
            schedule = DeltaTriggerTimetable(scan)
        dag = _dag(
            f"proseo_trigger__{mission}__{name}",
            schedule,
            mission,
            f"{t.kind.value} trigger {name} of {mission}: orders {', '.join(t.classes)}.",
        )
        with dag:
            PythonOperator(
                task_id="fire",
                python_callable=fire_clock,
                op_kwargs={"mission": mission, "trigger": name, "catalog_url": catalog_url},
                priority_weight=1000,
            )
        out.append(dag)
    return out


def mission_configs(catalog: Catalog) -> list[tuple[str, MissionConfig]]:
    """Every mission's latest configuration (validated once per revision and process)."""
    out = []
    with catalog.session() as session:
        for mission in session.scalars(select(Mission).order_by(Mission.code)):
            revision = latest_revision(session, mission.id)
            if revision is not None:
                out.append((mission.code, revision_config_of(revision)))
    return out


def build_production(namespace: dict[str, Any], *, catalog_url: str | None = None) -> list[str]:
    """Put every mission's trigger DAGs into a DAG file's globals; their ids.

    A mission whose DAGs cannot be built is logged with the reason and left out; the
    others are built.
    """
    built: list[str] = []
    if not get_settings().systematic:
        log.info("systematic production is off (PROSEO_SYSTEMATIC): no trigger DAGs")
        return built
    try:
        missions = mission_configs(Catalog(catalog_url))
    except Exception:
        log.exception("systematic production: cannot read the missions from the catalogue")
        return []
    for code, cfg in missions:
        try:
            dags = [d for d in [data_dag(code, cfg, catalog_url)] if d is not None]
            dags += clock_dags(code, cfg, catalog_url)
        except Exception:
            log.exception("systematic production of %s: its trigger DAGs could not be built", code)
            continue
        for dag in dags:
            namespace[dag.dag_id] = dag
            built.append(dag.dag_id)
    return built
