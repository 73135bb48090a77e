"""Reprocessing campaigns on Airflow: one DAG that runs a pass over every running campaign.

The decisions are the core's (:mod:`proseo.planning.campaign`): each pass derives a
campaign's state from the catalogue and releases the next units up to its window, so
this module only says *when*: every ``PROSEO_CAMPAIGN_PASS_S`` seconds, one run at a
time (``max_active_runs=1``), no catch-up (a pass after a long pause does all that is
due). Airflow's backfill is no substitute: it re-runs a time-scheduled DAG's intervals,
while a campaign's units are orders of the backward planner with their own DAGs, a
window, gaps and retries.

Below systematic production: the pass task has a lower ``priority_weight`` than the
trigger DAGs' tasks (1000), and the campaign's orders carry a lower priority than any
trigger's (checked when the campaign is created), which the step tasks' weights follow.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, DeltaTriggerTimetable

from proseo.catalog.db import Catalog
from proseo.errors import ProseoError
from proseo.orchestration.factory import START
from proseo.planning import campaign
from proseo.settings import get_settings

log = logging.getLogger(__name__)

DAG_ID = "proseo_campaigns"
#: Below the trigger DAGs' pass tasks (1000).
PRIORITY_WEIGHT = 100


def run_passes(catalog_url: str | None = None, **_: Any) -> dict[str, Any]:
    """One pass per running campaign; a campaign that fails is logged, the others go on."""
    catalog = Catalog(catalog_url)
    out: dict[str, Any] = {}
    for mission, name in campaign.running_campaigns(catalog):
        key = f"{mission}/{name}"
        try:
            result = campaign.campaign_pass(catalog, mission, name)
        except ProseoError as exc:
            log.error("campaign %s: pass failed: %s", key, exc)
            out[key] = {"error": str(exc)}
            continue
        log.info(
            "campaign %s: %s, %d order(s) created, %d released, %d active, %d unit(s) pending",
            key,
            result.state,
            len(result.created),
            len(result.released),
            result.active,
            result.pending,
        )
        for line in result.failed:
            log.error("campaign %s: order not released: %s", key, line)
        out[key] = {
            "state": result.state,
            "created": result.created,
            "released": result.released,
            "failed": result.failed,
        }
    return out


def campaigns_dag(catalog_url: str | None = None) -> DAG:
    every = timedelta(seconds=get_settings().campaign_pass_s)
    dag = DAG(
        dag_id=DAG_ID,
        schedule=DeltaTriggerTimetable(every),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["proseo", "campaign"],
        doc_md=f"Reprocessing campaigns: a pass over every running campaign every {every}.",
    )
    with dag:
        PythonOperator(
            task_id="pass",
            python_callable=run_passes,
            op_kwargs={"catalog_url": catalog_url},
            priority_weight=PRIORITY_WEIGHT,
        )
    return dag


def build_campaigns(namespace: dict[str, Any], *, catalog_url: str | None = None) -> list[str]:
    """Put the campaign DAG into a DAG file's globals (it reads the catalogue only when it runs)."""
    dag = campaigns_dag(catalog_url)
    namespace[dag.dag_id] = dag
    return [dag.dag_id]
