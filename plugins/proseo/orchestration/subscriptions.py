"""PRIP subscriptions on Airflow: one DAG that matches new products and pushes notifications.

The work is the core's (:mod:`proseo.interfaces.subscription_match` queues a notification
per new matching product, :mod:`proseo.interfaces.subscription_push` POSTs the due ones);
this module only says *when*: every minute, one run at a time, no catch-up (a run after a
pause matches everything published since each subscription's high-water mark and
delivers everything due). Publishing products never waits for it.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, DeltaTriggerTimetable

from proseo.catalog.db import Catalog
from proseo.interfaces.subscription_match import enqueue_matches
from proseo.interfaces.subscription_push import Backoff, deliver_due
from proseo.orchestration.factory import START
from proseo.settings import get_settings

log = logging.getLogger(__name__)

DAG_ID = "proseo_subscriptions"
EVERY = timedelta(minutes=1)
#: Below the trigger DAGs' pass tasks (1000): notifications wait for production, not the reverse.
PRIORITY_WEIGHT = 100
#: Batches of due notifications per run (each at most 100 POSTs).
BATCHES = 10


def run_subscriptions(catalog_url: str | None = None, **_: Any) -> dict[str, Any]:
    """Match, then deliver until nothing is due (at most :data:`BATCHES` batches)."""
    catalog = Catalog(catalog_url)
    settings = get_settings()
    backoff = Backoff(
        base=timedelta(seconds=settings.subscription_retry_s),
        cap=timedelta(seconds=settings.subscription_retry_cap_s),
        max_attempts=settings.subscription_max_attempts,
    )
    try:
        queued = enqueue_matches(catalog)
    except Exception:  # what is already queued is still delivered; matching runs again next minute
        log.exception("subscriptions: matching failed")
        queued = {}
    delivered = retried = failed = 0
    for _ in range(BATCHES):
        report = deliver_due(catalog, backoff=backoff, timeout_s=settings.subscription_timeout_s)
        delivered, retried, failed = (
            delivered + report.delivered,
            retried + report.retried,
            failed + report.failed,
        )
        for line in report.errors:
            log.warning("%s", line)
        if report.delivered + report.retried + report.failed == 0:
            break
    log.info(
        "subscriptions: %d queued, %d delivered, %d to retry, %d failed",
        sum(queued.values()),
        delivered,
        retried,
        failed,
    )
    return {"queued": queued, "delivered": delivered, "retried": retried, "failed": failed}


def subscriptions_dag(catalog_url: str | None = None) -> DAG:
    dag = DAG(
        dag_id=DAG_ID,
        schedule=DeltaTriggerTimetable(EVERY),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=False,
        tags=["proseo", "prip"],
        doc_md="PRIP subscriptions: queue notifications for new matching products, push the due ones.",
    )
    with dag:
        PythonOperator(
            task_id="notify",
            python_callable=run_subscriptions,
            op_kwargs={"catalog_url": catalog_url},
            priority_weight=PRIORITY_WEIGHT,
        )
    return dag


def build_subscriptions(namespace: dict[str, Any], *, catalog_url: str | None = None) -> list[str]:
    """Put the subscriptions DAG into a DAG file's globals (it reads the catalogue only when it runs)."""
    dag = subscriptions_dag(catalog_url)
    namespace[dag.dag_id] = dag
    return [dag.dag_id]
