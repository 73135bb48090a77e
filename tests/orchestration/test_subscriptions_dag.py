"""The subscriptions DAG: its schedule, and its task matching and pushing against real catalogues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DeltaTriggerTimetable
from airflow.serialization.serialized_objects import DagSerialization
from sqlalchemy import func, select

from proseo.catalog import access
from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_product import Product
from proseo.catalog.model_subscription import SubscriptionNotification
from proseo.interfaces.subscription_match import enqueue_matches
from proseo.interfaces.subscriptions import create_subscription
from proseo.missions import load_mission
from proseo.orchestration import subscriptions
from tests_campaign import AUX, ingest
from tests_receiver import Receiver

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        access.grant(s, "hook-owner", "S5P", "viewer", by="test")
    return catalog


def test_one_dag_every_minute_below_the_trigger_dags() -> None:
    namespace: dict[str, Any] = {}
    assert subscriptions.build_subscriptions(namespace) == ["proseo_subscriptions"]
    dag = namespace["proseo_subscriptions"]
    assert isinstance(dag.timetable, DeltaTriggerTimetable) and dag.timetable.delta == timedelta(minutes=1)
    assert dag.max_active_runs == 1 and not dag.catchup
    (task,) = dag.tasks
    assert task.priority_weight == subscriptions.PRIORITY_WEIGHT < 1000
    back = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    assert [t.task_id for t in back.tasks] == ["notify"]


def test_the_task_queues_and_pushes_what_was_published_after_the_subscription(
    s5p: Catalog, tmp_path: Path
) -> None:
    ingest(s5p, DAY, DAY + timedelta(days=1), tmp_path, AUX)  # before: never announced
    endpoint = Receiver()
    try:
        with s5p.session() as s:
            grants = access.grants_of(s, "hook-owner")
            sub = create_subscription(
                s,
                grants,
                {
                    "FilterParam": "PublicationDate gt 2000-01-01T00:00:00Z",
                    "NotificationEndpoint": endpoint.url,
                },
                datetime.now(UTC),
            )
            sub_id = sub.uuid
        assert subscriptions.run_subscriptions(s5p.url)["queued"] == {sub_id: 0}
        ingest(s5p, DAY + timedelta(days=1), DAY + timedelta(days=3), tmp_path, AUX)
        with s5p.session() as s:  # publishing queues nothing by itself: the DAG's task does
            assert s.scalar(select(func.count()).select_from(SubscriptionNotification)) == 0
        result = subscriptions.run_subscriptions(s5p.url)
        with s5p.session() as s:
            published_after = set(
                s.scalars(select(Product.uuid).where(Product.created_at > sub.submitted_at))
            )
        assert result["queued"] == {sub_id: len(published_after)} and result["delivered"] == len(
            published_after
        )
        assert sorted(b["ProductId"] for b in endpoint.accepted) == sorted(published_after)
        assert subscriptions.run_subscriptions(s5p.url) == {
            "queued": {sub_id: 0},
            "delivered": 0,
            "retried": 0,
            "failed": 0,
        }
    finally:
        endpoint.close()


def test_a_filter_that_no_longer_translates_holds_only_its_own_subscription(
    s5p: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with s5p.session() as s:
        grants = access.grants_of(s, "hook-owner")
        good = create_subscription(s, grants, {"FilterParam": "Online eq true"}, datetime.now(UTC))
        broken = create_subscription(s, grants, {"FilterParam": "Online eq true"}, datetime.now(UTC))
        broken.filter_param = "Online eq 'yes'"  # as a catalogue whose parameter types changed would hold it
        ids = good.uuid, broken.uuid
    ingest(s5p, DAY, DAY + timedelta(days=1), tmp_path, AUX)
    queued = enqueue_matches(s5p)
    with s5p.session() as s:
        published = len(s.scalars(select(Product.id)).all())
    assert queued == {ids[0]: published} and published > 0
    assert "not matched: FilterParam: character 10" in caplog.text


def test_a_filter_the_database_refuses_to_run_holds_only_its_own_subscription(
    s5p: Catalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An Integer attribute holding text: PostgreSQL refuses the cast (DataError) at match time."""
    numeric = (
        "Attributes/OData.CSC.IntegerAttribute/any(att:att/Name eq 'collection' and "
        "att/OData.CSC.IntegerAttribute/Value ge 0)"
    )
    with s5p.session() as s:
        grants = access.grants_of(s, "hook-owner")
        broken = create_subscription(s, grants, {"FilterParam": numeric}, datetime.now(UTC))
        good = create_subscription(s, grants, {"FilterParam": "Online eq true"}, datetime.now(UTC))
        ids = broken.uuid, good.uuid
    ingest(s5p, DAY, DAY + timedelta(days=1), tmp_path, AUX)
    with s5p.session() as s:
        products = s.scalars(select(Product).order_by(Product.id)).all()
        for p in products:  # as a product registered with a bad value would hold it
            p.parameters = {**p.parameters, "collection": "not a number"}
        published = len(products)
    queued = enqueue_matches(s5p)
    assert queued[ids[1]] == published > 0
    if s5p.engine.dialect.name == "postgresql":
        assert ids[0] not in queued and "not matched" in caplog.text
        with s5p.session() as s:  # rolled back: nothing of the broken one queued
            assert s.scalar(select(func.count()).select_from(SubscriptionNotification)) == published


def test_the_task_gives_up_after_the_configured_attempts(
    s5p: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROSEO_SUBSCRIPTION_MAX_ATTEMPTS", "1")
    refusing = Receiver(fail_first=10**6)
    try:
        with s5p.session() as s:
            create_subscription(
                s,
                access.grants_of(s, "hook-owner"),
                {"FilterParam": "Online eq true", "NotificationEndpoint": refusing.url},
                datetime.now(UTC),
            )
        ingest(s5p, DAY, DAY + timedelta(days=1), tmp_path, AUX)
        result = subscriptions.run_subscriptions(s5p.url)
        with s5p.session() as s:
            states = set(s.scalars(select(SubscriptionNotification.state)))
        assert result["failed"] == len(refusing.posts) > 0 and result["retried"] == 0
        assert states == {"failed"}
    finally:
        refusing.close()
