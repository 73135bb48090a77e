"""Pickup directories on Airflow: watched without a worker slot, ingested as files complete.

Per mission (``<PROSEO_PICKUP_ROOT>/<MISSION>/``, see :mod:`proseo.catalog.pickup`):

* :class:`PickupTrigger`, a ``BaseEventTrigger`` that the triggerer runs for an Asset's
  ``AssetWatcher``: it looks into the directory every ``poll_s`` seconds and, when files
  are complete, moves them into ``.claimed/`` and THEN yields one event naming them.
  Airflow re-creates an event trigger from :meth:`PickupTrigger.serialize` after every
  event, so a trigger that only reported files would report them again forever; moving
  them is what consumes them (no file is reported twice, none is lost: a claimed file
  stays in ``.claimed/`` until an ingestion takes it);
* :func:`build_pickup_dag`: the DAG ``proseo_pickup__<MISSION>``, scheduled on that
  Asset (one run per event, one at a time), whose task :func:`ingest_pickup` ingests all
  of ``.claimed/`` (including what a failed earlier run left) and emits one Asset event
  per product class, ``proseo://<mission>/<class>`` (the URIs job steps emit on
  registration) with ``{"product_ids": [...]}`` in the extra, so DAGs scheduled on
  those Assets run. Events are at least once: a retried run, or the same file delivered
  again, announces its (already catalogued, never duplicated) product again;
* :func:`build_pickup_dags`: one such DAG per mission of the catalogue
  (``dags/proseo_pickup.py``); none when ``PROSEO_PICKUP_ROOT`` is unset.

The events name their files relative to the mission's directory; the ingestion does
not depend on them, so events merged or dropped by the scheduler lose nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, AssetWatcher, get_parsing_context, task
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import Mission
from proseo.catalog.pickup import Seen, claim, ingest_claimed, scan
from proseo.execution.steptask import asset_for
from proseo.settings import get_settings

log = logging.getLogger(__name__)

DAG_PREFIX = "proseo_pickup__"
START = datetime(2025, 1, 1, tzinfo=UTC)
#: File names an event carries at most (events are stored rows; a backlog can be large).
MAX_NAMED = 100


class PickupTrigger(BaseEventTrigger):
    """Fires once per batch of complete files of one pickup directory, having claimed them."""

    def __init__(self, mission: str, directory: str, settle_s: float = 30.0, poll_s: float = 10.0) -> None:
        super().__init__()
        self.mission, self.directory = mission, directory
        self.settle_s, self.poll_s = float(settle_s), float(poll_s)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{__name__}.PickupTrigger",
            {
                "mission": self.mission,
                "directory": self.directory,
                "settle_s": self.settle_s,
                "poll_s": self.poll_s,
            },
        )

    def look(self, previous: dict[str, Seen]) -> tuple[list[str], dict[str, Seen]]:
        """One look: claim what is complete (names claimed, what was seen). Blocking I/O."""
        directory = Path(self.directory)
        directory.mkdir(parents=True, exist_ok=True)
        complete, seen = scan(directory, previous, time.time(), self.settle_s)
        return (claim(directory, complete) if complete else []), seen

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen: dict[str, Seen] = {}
        while True:
            try:
                claimed, seen = await asyncio.to_thread(self.look, seen)
            except OSError as exc:  # unmounted, permissions: say so and keep watching
                self.log.error("pickup %s: cannot look into %s: %s", self.mission, self.directory, exc)
                claimed = []
            if claimed:
                self.log.info("pickup %s: claimed %d file(s): %s", self.mission, len(claimed), claimed[:20])
                # The event names (at most MAX_NAMED of) the files; the ingestion takes all.
                yield TriggerEvent(
                    {"mission": self.mission, "claimed": len(claimed), "files": claimed[:MAX_NAMED]}
                )
                return  # Airflow re-creates the trigger for the next event
            await asyncio.sleep(self.poll_s)


def pickup_asset(mission: str, directory: Path, *, settle_s: float, poll_s: float) -> Asset:
    """The Asset a mission's pickup DAG is scheduled on, watched by its :class:`PickupTrigger`."""
    trigger = PickupTrigger(mission, str(directory), settle_s=settle_s, poll_s=poll_s)
    return Asset(
        name=f"proseo_pickup_{mission}",
        uri=f"proseo-pickup://{mission}",
        watchers=[AssetWatcher(name=f"proseo_pickup_{mission}", trigger=trigger)],
    )


def products_alias(mission: str) -> AssetAlias:
    """The ingestion task's outlet: events are added per class actually delivered."""
    return AssetAlias(f"proseo_pickup_{mission}_products")


def ingest_pickup(
    mission: str, directory: Path, *, catalog_url: str | None = None, outlet_events: Any = None
) -> dict[str, Any]:
    """The pickup DAG's task: ingest ``.claimed/``, move files on, emit an event per class.

    Raises (so Airflow retries) when files stayed claimed after a failure a retry may
    cure; the files ingested meanwhile are announced again by the retry.
    """
    result = ingest_claimed(Catalog(catalog_url), mission, directory)
    if outlet_events is not None:
        alias = products_alias(mission)
        for product_type, ids in result.by_class.items():
            outlet_events[alias].add(asset_for(mission, product_type), extra={"product_ids": ids})
    for name, problem in result.rejected.items():
        log.error("pickup %s: rejected %s: %s", mission, name, problem)
    summary = {
        "mission": mission,
        "products": {c: len(ids) for c, ids in result.by_class.items()},
        "new": result.new,
        "done": len(result.done),
        "rejected": sorted(result.rejected),
        "kept": sorted(result.kept),
    }
    log.info("pickup %s: %s", mission, summary)
    if result.kept:
        name, problem = next(iter(result.kept.items()))
        raise AirflowException(
            f"pickup {mission}: {len(result.kept)} file(s) stay claimed for a retry, e.g. {name}: {problem}"
        )
    return summary


def build_pickup_dag(
    mission: str,
    directory: Path,
    *,
    settle_s: float,
    poll_s: float,
    catalog_url: str | None = None,
) -> DAG:
    """``proseo_pickup__<MISSION>``: one run per trigger event, one run at a time."""
    settings = get_settings()
    with DAG(
        f"{DAG_PREFIX}{mission}",
        schedule=[pickup_asset(mission, directory, settle_s=settle_s, poll_s=poll_s)],
        start_date=START,
        catchup=False,
        max_active_runs=1,  # one ingestion of .claimed/ at a time
        is_paused_upon_creation=False,
        tags=["proseo", mission, "pickup"],
        description=f"proseo pickup of {mission}: ingests complete files of {directory}",
        default_args={
            "retries": settings.task_retries,
            "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        },
    ) as dag:

        @task(task_id="ingest", outlets=[products_alias(mission)])
        def ingest(**context: Any) -> dict[str, Any]:
            return ingest_pickup(
                mission, directory, catalog_url=catalog_url, outlet_events=context["outlet_events"]
            )

        ingest()
    return dag


def build_pickup_dags(namespace: dict[str, Any], catalog: Catalog | None = None) -> list[str]:
    """One pickup DAG per mission of the catalogue into ``namespace`` (a DAG file's globals())."""
    settings = get_settings()
    if settings.pickup_root is None:
        return []
    wanted = get_parsing_context().dag_id
    if wanted is not None and not wanted.startswith(DAG_PREFIX):
        return []
    with (catalog or Catalog()).session() as s:
        missions = list(s.scalars(select(Mission.code).order_by(Mission.code)))
    built = []
    for code in missions:
        if wanted is not None and wanted != f"{DAG_PREFIX}{code}":
            continue
        dag = build_pickup_dag(
            code,
            settings.pickup_root / code,
            settle_s=settings.pickup_settle_s,
            poll_s=settings.pickup_poll_s,
        )
        namespace[dag.dag_id] = dag
        built.append(dag.dag_id)
    return built
