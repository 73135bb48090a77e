"""Deadline alerts: the factory attaches one per order with a deadline, and its callback
records the miss once in a real catalogue and notifies without ever raising."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from airflow.sdk.definitions.callback import AsyncCallback
from airflow.sdk.definitions.deadline import FixedDatetimeDeadline
from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import OrderEvent, OrderState, ProcessingOrder
from proseo.missions import load_mission
from proseo.orchestration.deadlines import CALLBACK_PATH, order_deadline_missed
from proseo.orchestration.factory import build_dag
from proseo.planning import lifecycle, orders
from proseo.planning.blueprint import Blueprint, Level
from proseo.planning.deadline import OPERATION
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

DUE = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _blueprint(deadline: datetime | None) -> Blueprint:
    return Blueprint(
        dag_id="proseo__SKY__n1",
        mission="SKY",
        order="n1",
        order_id=7,
        levels=[Level(steps=[1], classes=["STACK_G"])],
        job_steps=1,
        deadline=deadline,
    )


def test_the_factory_adds_a_fixed_deadline_alert_only_when_the_order_has_a_deadline() -> None:
    (alert,) = build_dag(_blueprint(DUE)).deadline or []
    assert isinstance(alert.reference, FixedDatetimeDeadline) and alert.reference._datetime == DUE
    assert alert.interval == timedelta(0)
    assert isinstance(alert.callback, AsyncCallback) and alert.callback.path == CALLBACK_PATH
    assert alert.callback.kwargs == {"order_id": 7, "mission": "SKY", "order": "n1", "catalog_url": None}
    json.dumps(alert.callback.kwargs)  # stored with the serialized DAG
    assert not build_dag(_blueprint(None)).deadline


@pytest.fixture
def released(catalog: Catalog, data_dirs: dict[str, Path]) -> ProcessingOrder:
    """A released SKY order with a deadline, as the order generator makes them."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        orders.create_order(
            s,
            "SKY",
            OrderSpec(
                identifier="n1",
                requested_classes=["STACK_G"],
                start=datetime(2025, 3, 1, tzinfo=UTC),
                stop=datetime(2025, 3, 2, tzinfo=UTC),
            ),
        )
    lifecycle.approve_order(catalog, "SKY", "n1")
    lifecycle.plan_order(catalog, "SKY", "n1")
    order = lifecycle.release_order(catalog, "SKY", "n1")
    with catalog.session() as s:
        s.execute(update(ProcessingOrder).where(ProcessingOrder.id == order.id).values(deadline=DUE))
    return order


def _miss(catalog: Catalog, order_id: int) -> dict[str, Any]:
    text = asyncio.run(
        order_deadline_missed(
            order_id=order_id,
            mission="SKY",
            order="n1",
            catalog_url=catalog.url,
            # The shape Airflow's scheduler gives (Deadline.handle_miss): the run as DAGRunResponse.
            context={"dag_run": {"dag_run_id": "scheduled__x", "dag_id": "d"}, "deadline": {"id": "d"}},
        )
    )
    assert isinstance(text, str)  # the triggerer stores it in a text column
    return dict(json.loads(text))


def _events(catalog: Catalog, order_id: int) -> list[str]:
    with catalog.session() as s:
        return list(
            s.scalars(
                select(OrderEvent.message).where(
                    OrderEvent.order_id == order_id, OrderEvent.operation == OPERATION
                )
            )
        )


def test_the_callback_records_the_miss_once(catalog: Catalog, released: ProcessingOrder) -> None:
    first = _miss(catalog, released.id)
    assert first["recorded"] is True and first["notified"] is False  # no endpoint
    with catalog.session() as s:
        missed_at = s.scalar(
            select(ProcessingOrder.deadline_missed_at).where(ProcessingOrder.id == released.id)
        )
    assert missed_at is not None and missed_at > DUE
    second = _miss(catalog, released.id)
    assert second["recorded"] is False and second["why"] == "already recorded"
    with catalog.session() as s:
        again = s.scalar(select(ProcessingOrder.deadline_missed_at).where(ProcessingOrder.id == released.id))
    assert again == missed_at
    (message,) = _events(catalog, released.id)
    assert message.startswith("deadline 2026-06-01T12:00:00+00:00 missed") and "RELEASED" in message


def test_a_completed_order_missed_nothing(catalog: Catalog, released: ProcessingOrder) -> None:
    with catalog.session() as s:
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == released.id)
            .values(state=OrderState.COMPLETED.value)
        )
    outcome = _miss(catalog, released.id)
    assert outcome["recorded"] is False and outcome["why"] == "the order completed"
    assert _events(catalog, released.id) == []


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_the_notification_endpoint_receives_the_miss(
    catalog: Catalog, released: ProcessingOrder, endpoint: str
) -> None:
    with catalog.session() as s:
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == released.id)
            .values(notification_endpoint=endpoint)
        )
    assert _miss(catalog, released.id)["notified"] is True
    (body,) = _Receiver.received
    assert body["event"] == "deadline_missed" and body["order"] == "SKY/n1"
    assert body["dag_run"] == "scheduled__x" and body["deadline"] == "2026-06-01T12:00:00+00:00"


def test_an_unreachable_endpoint_is_logged_not_raised(
    catalog: Catalog, released: ProcessingOrder, caplog: pytest.LogCaptureFixture
) -> None:
    with catalog.session() as s:
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == released.id)
            .values(notification_endpoint="http://127.0.0.1:9/nobody")
        )
    outcome = _miss(catalog, released.id)
    assert outcome["recorded"] is True and outcome["notified"] is False
    assert "deadline notification to http://127.0.0.1:9/nobody failed" in caplog.text
