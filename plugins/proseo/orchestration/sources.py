"""Delivery points pulled on Airflow: one DAG per configured source, deferrable, feeding production.

Per source of a mission file's ``sources`` (:mod:`proseo.missions.sources`):

* ``proseo_source__<MISSION>__<name>`` (``dags/proseo_sources.py``) runs every
  ``interval`` (``DeltaTriggerTimetable``), ``max_active_runs=1``: two pulls of one
  source never overlap, and the source's cursor in the catalogue makes a restarted or
  retried pull resume where the last one stopped;
* its one task, :class:`SourcePullOperator`, defers at once to
  :class:`~proseo.orchestration.source_probe.SourceProbeTrigger` (no worker slot while
  waiting): the triggerer asks the source every ``poll_s`` for the
  products published from the cursor on (Ids, usually one page) and the catalogue which
  of them it holds, until one is new or the interval is over.
  A CADIP source is not probed (sessions are not Products): it is pulled at once;
* back on a worker, the pull itself (:func:`proseo.interfaces.clients.run_source`, the
  kind's client from one lazily imported mapping) downloads, verifies and ingests; the
  task then adds one Asset event per class that arrived, ``proseo://<mission>/<class>``
  with ``{"product_ids": [...]}``, exactly as the pickup DAG and registration do, so
  the data triggers' DAG (``proseo_data__<MISSION>``) reacts to pulled products as to
  any other arrival. Airflow records a failed task's outlets not at all: a pull that
  fails after taking something (a CADIP pull's ``exc.report``) announces what it took
  and ends ``partial`` with its failures logged (they stay pending for the next run);
  one that took nothing fails, and the retry goes on from the cursor.

Credentials are resolved when they are needed, never stored with the DAG or the
trigger: an Airflow connection or the environment variables the mission file names
(:mod:`proseo.orchestration.source_probe`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, AssetAlias, BaseOperator, DeltaTriggerTimetable, get_parsing_context
from airflow.sdk.exceptions import AirflowException
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import get_mission
from proseo.catalog.model_interface import InterfaceCursor
from proseo.execution.steptask import asset_for
from proseo.interfaces.clients import arrivals_of, configured_source, run_source
from proseo.interfaces.odata_http import PullError
from proseo.interfaces.prip_entity import odata_time
from proseo.missions.sources import SourceKind, SourceSpec, odata_filter
from proseo.orchestration.factory import START
from proseo.orchestration.source_probe import MAX_POLL_S, SourceProbeTrigger, resolve_secret
from proseo.settings import get_settings

log = logging.getLogger(__name__)

DAG_PREFIX = "proseo_source__"


def source_dag_id(mission: str, name: str) -> str:
    return f"{DAG_PREFIX}{mission}__{name}"


def products_alias(mission: str, name: str) -> AssetAlias:
    """The pull task's outlet: events are added per class that actually arrived."""
    return AssetAlias(f"proseo_source_{mission}_{name}_products")


def _cursor(catalog: Catalog, mission: str, name: str) -> datetime | None:
    """Where the source's pulls have got to: the last product's publication time."""
    with catalog.session() as s:
        mission_id = get_mission(s, mission).id
        return s.scalar(
            select(InterfaceCursor.published).where(
                InterfaceCursor.mission_id == mission_id, InterfaceCursor.source == name
            )
        )


class SourcePullOperator(BaseOperator):
    """Wait in the triggerer for something new at the source, then pull it here and announce it."""

    template_fields = ()

    def __init__(self, *, mission: str, source: str, catalog_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mission, self.source, self.catalog_url = mission, source, catalog_url

    def execute(self, context: Any) -> dict[str, Any]:
        catalog = Catalog(self.catalog_url)
        spec = configured_source(catalog, self.mission, self.source)
        if not spec.enabled:
            log.info("source %s of %s is disabled in the latest revision", self.source, self.mission)
            return {"source": self.source, "status": "disabled"}
        if spec.kind is SourceKind.CADIP:  # sessions, not Products: nothing cheap to ask
            return self.pull(context, spec)
        cursor = _cursor(catalog, self.mission, self.source)
        until = datetime.now(UTC) + spec.interval
        self.defer(
            trigger=SourceProbeTrigger(
                mission=self.mission,
                source=self.source,
                root=spec.root,
                filter=odata_filter(spec),
                since=odata_time(cursor) if cursor is not None else None,
                catalog_url=self.catalog_url,
                until=until.isoformat(),
                poll_s=min(MAX_POLL_S, spec.interval.total_seconds()),
                credentials=spec.credentials.model_dump(mode="json"),
                timeout_s=spec.timeout.total_seconds(),
            ),
            method_name="execute_complete",
            timeout=spec.interval + timedelta(minutes=5),
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status")
        if status == "idle":
            log.info("source %s of %s: nothing new within the interval", self.source, self.mission)
            return {"source": self.source, "status": "idle"}
        if status == "unanswered":
            log.warning("source %s: probe not answered (%s); pulling", self.source, event.get("message"))
        spec = configured_source(Catalog(self.catalog_url), self.mission, self.source)
        return self.pull(context, spec, probe=str(status))

    def pull(self, context: Any, spec: SourceSpec, probe: str | None = None) -> dict[str, Any]:
        """The pull in the worker (it writes storage and catalogue), then one event per class.

        A pull that fails after taking something (a CADIP session failing after others
        were taken: ``exc.report``) still announces what it took: Airflow records a task's
        outlet events only when it succeeds, so such a run ends ``partial`` (the failures
        logged as errors and returned); the failed sessions stay pending and the next run
        tries them again. A failure with nothing taken fails the task (Airflow retries)."""
        catalog = Catalog(self.catalog_url)
        secret = resolve_secret(self.mission, self.source, spec.credentials)
        failures: list[str] = []
        try:
            arrivals = run_source(catalog, self.mission, self.source, secret, spec=spec)
        except PullError as exc:  # Airflow retries; the cursor makes the retry go on from there
            report = getattr(exc, "report", None)  # what it took before failing, if it says
            arrivals = arrivals_of(catalog, self.mission, self.source, report)
            if report is None or not arrivals.by_class:
                raise AirflowException(f"mission {self.mission}: {exc}") from exc
            listed = list(getattr(report, "failures", None) or [])
            failures = [str(f) for f in (listed if exc in listed else [*listed, exc])]
            for failure in failures:
                log.error("source %s of %s: %s", self.source, self.mission, failure)
        events = context.get("outlet_events")
        if events is not None:
            alias = products_alias(self.mission, self.source)
            for product_type, ids in arrivals.by_class.items():
                events[alias].add(asset_for(self.mission, product_type), extra={"product_ids": ids})
        report = arrivals.report
        summary = {
            "source": self.source,
            "status": "partial" if failures else "pulled",
            "probe": probe,  # what the trigger saw: new, unanswered; None: not probed
            "taken": len(getattr(report, "taken", [])),
            "known": len(getattr(report, "known", [])),
            "products": {c: len(ids) for c, ids in arrivals.by_class.items()},
        }
        if failures:
            summary["failures"] = failures
        log.info("source %s of %s: %s", self.source, self.mission, summary)
        return summary


def build_source_dag(mission: str, name: str, spec: SourceSpec, catalog_url: str | None = None) -> DAG:
    """``proseo_source__<MISSION>__<name>``: every ``interval``, one run at a time."""
    settings = get_settings()
    with DAG(
        dag_id=source_dag_id(mission, name),
        schedule=DeltaTriggerTimetable(spec.interval),
        start_date=START,
        catchup=False,
        max_active_runs=1,  # two pulls of a source never overlap
        is_paused_upon_creation=False,
        tags=["proseo", mission, "source", spec.kind.value],
        description=f"proseo: pulls {spec.kind.value} source {name} ({spec.root}) into {mission}",
        default_args={
            "retries": settings.task_retries,
            "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        },
    ) as dag:
        SourcePullOperator(
            task_id="pull",
            mission=mission,
            source=name,
            catalog_url=catalog_url,
            outlets=[products_alias(mission, name)],
            priority_weight=1000,
        )
    return dag


def build_source_dags(namespace: dict[str, Any], *, catalog_url: str | None = None) -> list[str]:
    """One DAG per enabled source of every mission into a DAG file's globals; their ids."""
    from proseo.orchestration.production import mission_configs

    wanted = get_parsing_context().dag_id
    if wanted is not None and not wanted.startswith(DAG_PREFIX):
        return []
    try:
        missions = mission_configs(Catalog(catalog_url))
    except Exception:
        log.exception("sources: cannot read the missions from the catalogue")
        return []
    built = []
    for code, cfg in missions:
        for name, spec in cfg.sources.items():
            dag_id = source_dag_id(code, name)
            if not spec.enabled or (wanted is not None and wanted != dag_id):
                continue
            try:
                namespace[dag_id] = build_source_dag(code, name, spec, catalog_url)
            except Exception:
                log.exception("source %s of %s: its DAG could not be built", name, code)
                continue
            built.append(dag_id)
    return built
