"""The ODIP's outbox on Airflow: notifications and queued orders, watched without a worker slot.

:class:`OdipTrigger` (a ``BaseEventTrigger`` the triggerer runs for the Asset's
``AssetWatcher``) asks the catalogue every ``poll_s`` seconds whether an ODIP order
owes a notification that is due, or was left queued past its grace time
(:func:`proseo.interfaces.odip_notify.due_count`); it yields one event when so. The
DAG ``proseo_odip``, scheduled on that Asset (one run at a time), delivers the owed
notifications and releases the left-over orders. Nothing changes in the catalogue
when the trigger fires, so an event dropped or merged by the scheduler loses
nothing: the next look finds the same work. A notification whose endpoint is down
is due again only after its back-off, so a down endpoint does not keep the DAG busy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from proseo.catalog.db import Catalog
from proseo.interfaces.odip_notify import carry_queued, deliver_due, due_count
from proseo.settings import get_settings

log = logging.getLogger(__name__)

DAG_ID = "proseo_odip"
START = datetime(2025, 1, 1, tzinfo=UTC)


class OdipTrigger(BaseEventTrigger):
    """Fires when ODIP work is due (owed notifications, orders left queued)."""

    def __init__(self, poll_s: float = 15.0, catalog_url: str | None = None) -> None:
        super().__init__()
        self.poll_s = float(poll_s)
        self.catalog_url = catalog_url

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{__name__}.OdipTrigger", {"poll_s": self.poll_s, "catalog_url": self.catalog_url})

    def look(self) -> int:
        with Catalog(self.catalog_url).session() as session:
            return due_count(session)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            # Wait first: Airflow re-creates the trigger after each event, and the run the
            # event started needs a moment to take the work.
            await asyncio.sleep(self.poll_s)
            try:
                due = await asyncio.to_thread(self.look)
            except Exception as exc:  # the catalogue down: say so, keep watching
                self.log.error("odip: cannot look into the catalogue: %s", exc)
                continue
            if due:
                yield TriggerEvent({"due": due})
                return


def odip_work(catalog_url: str | None = None) -> dict[str, Any]:
    """The DAG's task: release orders left queued, then deliver every owed notification."""
    catalog = Catalog(catalog_url)
    carried = carry_queued(catalog)
    delivered = deliver_due(catalog)
    summary = {
        **carried,
        "notified": delivered.sent,
        "notification_failures": delivered.failed,
    }
    log.info("odip: %s", summary)
    return summary


def build_odip_dag(namespace: dict[str, Any], catalog_url: str | None = None) -> DAG:
    """``proseo_odip`` into a DAG file's globals."""
    trigger = OdipTrigger(poll_s=get_settings().odip_poll_s, catalog_url=catalog_url)
    asset = Asset(
        name="proseo_odip",
        uri="proseo-odip://outbox",
        watchers=[AssetWatcher(name="proseo_odip", trigger=trigger)],
    )
    with DAG(
        DAG_ID,
        schedule=[asset],
        start_date=START,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["proseo", "odip"],
        description="ODIP: production-order notifications and orders left queued",
    ) as dag:

        @task(task_id="deliver")
        def deliver() -> dict[str, Any]:
            return odip_work(catalog_url)

        deliver()
    namespace[DAG_ID] = dag
    return dag
