"""Configured sources on Airflow: their DAGs, the operator's deferral, the trigger's serialisation.

The DAGs are built from a real catalogue (SQLite and PostgreSQL) whose S5P mission
names sources, and serialised as the DAG processor serialises them; the operator is
asked to run against that catalogue (it defers before any network call). Pulls from a
real PRIP are in tests/api/test_source_dag.py.
"""

from __future__ import annotations

import importlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DeltaTriggerTimetable
from airflow.sdk.exceptions import TaskDeferred
from airflow.serialization.serialized_objects import DagSerialization
from sqlalchemy import select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_interface import InterfaceCursor
from proseo.catalog.model_mission import Mission
from proseo.errors import NotFoundError
from proseo.interfaces.clients import CLIENTS, Secret, SourceConfigError, configured_source, source_object
from proseo.interfaces.pull import Source
from proseo.missions import load_mission
from proseo.orchestration.source_probe import SourceProbeTrigger, resolve_secret
from proseo.orchestration.sources import SourcePullOperator, build_source_dags

from tests_paths import MISSION_DIR

SOURCES = """
sources:
  partner:
    kind: prip
    url: http://prip.example.org/odata/v1/
    interval: 5 min
    product_types: [L0__ODB_1_]
    filter: "ContentLength gt 0"
    credentials: {connection: partner_prip}
  aux:
    kind: auxip
    url: http://auxip.example.org/odata/v1
    interval: 2 h
    product_types: [AUX_MET_TP]
    credentials: {username_env: AUX_USER, password_env: AUX_PASSWORD}
  old:
    kind: auxip
    url: http://old.example.org/odata/v1
    interval: 1 h
    product_types: [AUX_MET_TP]
    credentials: {token_env: OLD_TOKEN}
    enabled: false
"""


@pytest.fixture
def with_sources(catalog: Catalog, data_dirs: dict[str, Path], tmp_path: Path) -> Catalog:
    path = tmp_path / "s5p.yaml"
    path.write_text((MISSION_DIR / "s5p.yaml").read_text() + SOURCES)
    with catalog.session() as s:
        sync_mission(s, load_mission(path))
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    return catalog


def _trigger() -> SourceProbeTrigger:
    return SourceProbeTrigger(
        mission="S5P",
        source="partner",
        root="http://prip.example.org/odata/v1",
        filter="ContentLength gt 0",
        since="2025-03-01T00:00:00.000Z",
        until="2025-03-01T00:05:00+00:00",
        poll_s=60.0,
        credentials={"connection": "partner_prip"},
        timeout_s=30.0,
        catalog_url="sqlite:////tmp/not-opened.db",
    )


def test_the_trigger_survives_its_serialisation_and_carries_no_secret() -> None:
    trigger = _trigger()
    path, kwargs = trigger.serialize()
    assert path == "proseo.orchestration.source_probe.SourceProbeTrigger"
    # The triggerer stores the kwargs as JSON and rebuilds the trigger from them.
    module, _, name = path.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs["credentials"] == {"connection": "partner_prip"}
    assert rebuilt.query() == {
        "$filter": "(ContentLength gt 0) and PublicationDate ge 2025-03-01T00:00:00.000Z",
        "$top": "100",
        "$orderby": "PublicationDate asc",
    }


def test_every_enabled_source_gets_a_dag_on_its_interval_one_run_at_a_time(with_sources: Catalog) -> None:
    namespace: dict[str, Any] = {}
    built = build_source_dags(namespace, catalog_url=with_sources.url)
    assert sorted(built) == ["proseo_source__S5P__aux", "proseo_source__S5P__partner"]
    partner = namespace["proseo_source__S5P__partner"]
    assert isinstance(partner.timetable, DeltaTriggerTimetable)
    assert partner.timetable.delta == timedelta(minutes=5)
    assert namespace["proseo_source__S5P__aux"].timetable.delta == timedelta(hours=2)
    assert partner.max_active_runs == 1 and not partner.catchup and partner.is_paused_upon_creation is False
    (task,) = partner.tasks
    assert isinstance(task, SourcePullOperator) and [o.name for o in task.outlets] == [
        "proseo_source_S5P_partner_products"
    ]
    for dag in namespace.values():
        back = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        assert back.dag_id == dag.dag_id and [t.task_id for t in back.tasks] == ["pull"]


def test_the_operator_defers_from_the_cursor_of_its_source(with_sources: Catalog) -> None:
    op = SourcePullOperator(task_id="pull", mission="S5P", source="partner", catalog_url=with_sources.url)
    before = datetime.now(UTC)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SourceProbeTrigger) and deferred.value.method_name == "execute_complete"
    assert trigger.root == "http://prip.example.org/odata/v1" and trigger.since is None
    assert "Value eq 'L0__ODB_1_'" in trigger.filter and trigger.filter.endswith("and (ContentLength gt 0)")
    until = datetime.fromisoformat(trigger.until)
    assert before + timedelta(minutes=5) <= until <= datetime.now(UTC) + timedelta(minutes=5)
    assert trigger.poll_s == 60.0
    # A source that has pulled before probes only what came after its cursor.
    with with_sources.session() as s:
        mission_id = s.scalar(select(Mission.id).where(Mission.code == "S5P"))
        s.add(
            InterfaceCursor(
                mission_id=mission_id,
                source="partner",
                published=datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC),
                taken=4,
            )
        )
    with pytest.raises(TaskDeferred) as again:
        op.execute({})
    assert again.value.trigger.since == "2025-03-01T12:00:00.123Z"
    assert again.value.trigger.catalog_url == with_sources.url
    # Nothing new within the interval: the run ends without pulling or announcing.
    events: dict[Any, Any] = {}
    assert op.execute_complete({"outlet_events": events}, {"status": "idle"}) == {
        "source": "partner",
        "status": "idle",
    }
    assert events == {}


def test_a_source_removed_or_disabled_is_not_pulled(with_sources: Catalog) -> None:
    with pytest.raises(NotFoundError, match=r"no source 'gone'.*sources: aux, old, partner"):
        configured_source(with_sources, "S5P", "gone")
    op = SourcePullOperator(task_id="pull", mission="S5P", source="old", catalog_url=with_sources.url)
    assert op.execute({}) == {"source": "old", "status": "disabled"}


def test_credentials_are_resolved_at_run_time(with_sources: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    aux = configured_source(with_sources, "S5P", "aux")
    with pytest.raises(SourceConfigError, match=r"sources\.aux\.credentials: environment variable AUX_USER"):
        resolve_secret("S5P", "aux", aux.credentials)
    monkeypatch.setenv("AUX_USER", "reader")
    monkeypatch.setenv("AUX_PASSWORD", "s3cret")
    secret = resolve_secret("S5P", "aux", aux.credentials)
    assert (secret.username, secret.password, secret.token) == ("reader", "s3cret", None)
    assert "s3cret" not in repr(secret)
    partner = configured_source(with_sources, "S5P", "partner")
    monkeypatch.setenv("AIRFLOW_CONN_PARTNER_PRIP", json.dumps({"conn_type": "http", "password": "tok"}))
    assert resolve_secret("S5P", "partner", partner.credentials) == Secret(token="tok")


def test_prip_and_auxip_sources_become_the_pull_clients_source(with_sources: Catalog) -> None:
    assert CLIENTS["prip"].function == CLIENTS["auxip"].function == "proseo.interfaces.pull:pull"
    assert CLIENTS["cadip"].function == "proseo.interfaces.cadip:pull_sessions"
    partner = configured_source(with_sources, "S5P", "partner")
    source = source_object("partner", partner, Secret(username="u", password="p"))
    assert isinstance(source, Source)
    assert (source.name, source.root, source.username, source.password, source.token) == (
        "partner",
        "http://prip.example.org/odata/v1",
        "u",
        "p",
        None,
    )
    assert "Value eq 'L0__ODB_1_'" in source.filter and source.timeout == 60.0
