"""Deadline alerts on order DAG runs: the alert the factory attaches, and its callback.

An order with a deadline (systematic orders get one from their timeliness category)
gets a ``DeadlineAlert`` on its DAG: reference ``FIXED_DATETIME(deadline)``, interval
0. Airflow's scheduler creates the deadline when the run is created, drops it when the
run ends before it, and otherwise, once the time has passed, queues the callback.

The callback is an ``AsyncCallback`` (a module path plus JSON kwargs), so it runs in
the triggerer, which every deployment has, whatever the executor. It:

1. records the miss in the catalogue (:func:`proseo.planning.deadline.record_deadline_miss`:
   ``deadline_missed_at`` once, an ``order_event``; nothing if the order COMPLETED);
2. notifies: a log line always, and a POST of the miss as JSON to the order's
   ``notification_endpoint`` when it has one (short timeout; errors are logged, never
   raised: a notification must not turn into a failed callback that hides the record).

The catalogue work is synchronous and runs in a thread, off the triggerer's event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from proseo.catalog.db import Catalog
from proseo.planning.deadline import DeadlineMiss, record_deadline_miss

log = logging.getLogger(__name__)

NOTIFY_TIMEOUT_S = 5.0
CALLBACK_PATH = f"{__name__}.order_deadline_missed"


def deadline_alert(
    *, deadline: datetime, order_id: int, mission: str, order: str, catalog_url: str | None = None
) -> DeadlineAlert:
    """The alert of one order's DAG (kwargs are JSON: they are stored with the DAG)."""
    return DeadlineAlert(
        reference=DeadlineReference.FIXED_DATETIME(deadline),
        interval=timedelta(0),
        callback=AsyncCallback(
            CALLBACK_PATH,
            kwargs={"order_id": order_id, "mission": mission, "order": order, "catalog_url": catalog_url},
        ),
        name=f"proseo deadline {mission}/{order}",
    )


async def order_deadline_missed(
    *,
    order_id: int,
    mission: str,
    order: str,
    catalog_url: str | None = None,
    context: dict[str, Any] | None = None,
) -> str:
    """The alert's callback (triggerer): record the miss, then notify. Returns what happened as
    JSON text: the triggerer stores the return value in the callback row's text column (a dict
    there fails the UPDATE, and the triggerer with it, on SQLite)."""
    now = datetime.now(UTC)
    miss = await asyncio.to_thread(record_deadline_miss, Catalog(catalog_url), order_id, now)
    run = (context or {}).get("dag_run") or {}  # Airflow's DAGRunResponse as JSON
    run_id = run.get("dag_run_id") or run.get("run_id")
    if not miss.recorded:
        log.info("proseo order %s/%s: deadline alert, nothing recorded (%s)", mission, order, miss.why)
        return json.dumps(miss.as_json(), default=str)
    log.warning(
        "proseo order %s/%s missed its deadline %s (seen %s, order %s, DAG run %s)",
        mission,
        order,
        miss.deadline.isoformat() if miss.deadline else "?",
        now.isoformat(),
        miss.state,
        run_id,
    )
    result = miss.as_json()
    result["notified"] = await notify(miss, run_id=run_id)
    return json.dumps(result, default=str)


async def notify(miss: DeadlineMiss, *, run_id: str | None = None, timeout: float = NOTIFY_TIMEOUT_S) -> bool:
    """POST the miss to the order's notification endpoint; True when it answered 2xx.
    Never raises: a failure is logged with the order and the endpoint."""
    endpoint = miss.notification_endpoint
    if not endpoint:
        return False
    body = {"event": "deadline_missed", "dag_run": run_id, **miss.as_json()}
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(endpoint, json=body)
    except Exception as exc:  # network, DNS, bad URL: logged, the miss stays recorded
        log.error(
            "proseo order %s/%s: deadline notification to %s failed: %s: %s",
            miss.mission,
            miss.order,
            endpoint,
            type(exc).__name__,
            exc,
        )
        return False
    if response.is_success:
        return True
    log.error(
        "proseo order %s/%s: deadline notification to %s answered HTTP %d",
        miss.mission,
        miss.order,
        endpoint,
        response.status_code,
    )
    return False
