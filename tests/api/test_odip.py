"""The ODIP over HTTP (uvicorn in a thread, Airflow's own tokens): service document and
$metadata, Workflows, ProductionOrder created through both routes, listed, read and
cancelled, bad bodies refused naming the field, and the notification outbox delivering
to a real HTTP receiver exactly once per order end, retrying after a failure."""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.model_odip import OdipOrder
from proseo.catalog.model_order import ProcessingOrder
from proseo.interfaces.odip_notify import deliver_due, due_count
from tests_receiver import Garbage, Receiver

ORDER = {
    "WorkflowName": "SKY.SRC_CAT",
    "InputProductReference": {
        "Reference": "",
        "ContentDate": {"Start": "2025-03-01T00:00:00.000Z", "End": "2025-03-02T00:00:00.000Z"},
    },
    "WorkflowOptions": [{"Name": "threshold_sigma", "Value": 4.5}],
    "Priority": 70,
    "Name": "night sources",
}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=1)
    yield r
    r.close()


@pytest.fixture
def odip(odip_url: str, airflow_credentials: tuple[str, str]) -> httpx.Client:
    user, password = airflow_credentials
    token = httpx.post(
        f"{odip_url}/oauth2/token", data={"grant_type": "password", "username": user, "password": password}
    )
    assert token.status_code == 200, token.text
    return httpx.Client(
        base_url=odip_url, headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=60
    )


def _wait_state(client: httpx.Client, key: str, status: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/ProductionOrder({key})").json()
        if body["Status"] == status or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_service_document_metadata_and_workflows(odip: httpx.Client) -> None:
    assert {e["name"] for e in odip.get("/").json()["value"]} == {"Workflows", "ProductionOrder"}
    root = ET.fromstring(odip.get("/$metadata").text)
    ns = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
    order = root.find(".//edm:EntityType[@Name='ProductionOrder']", ns)
    assert order is not None
    names = {p.get("Name") for p in order.findall("edm:Property", ns)}
    assert {"Status", "StatusMessage", "EstimatedDate", "NotificationEndpoint", "WorkflowOptions"} <= names
    assert root.find(".//edm:Action[@Name='Cancel']", ns) is not None
    assert httpx.get(str(odip.base_url).rstrip("/") + "/$metadata").status_code == 401
    flows = odip.get("/Workflows").json()["value"]
    assert flows and {w["Name"].split(".")[0] for w in flows} == {"SKY"}  # the caller's missions only
    src = next(w for w in flows if w["OutputProductType"] == "SRC_CAT")
    assert src["WorkflowOptions"] == [
        {
            "Name": "threshold_sigma",
            "Description": "dynamic processing parameter of processor DETECT",
            "Type": "Double",
            "Default": 5.0,
            "Value": [],
        }
    ]
    assert odip.get(f"/Workflows({src['Id']})").json()["Name"] == "SKY.SRC_CAT"
    assert odip.get(f"/Workflows({uuid.uuid4()})").status_code == 404


def test_create_through_both_routes_list_read_cancel(odip: httpx.Client, world: Catalog) -> None:
    made = odip.post("/ProductionOrder/OData.CSC.Order", json=ORDER)
    assert made.status_code == 201, made.text
    first = made.json()
    assert (first["Status"], first["StatusMessage"]) == ("queued", "request is queued for processing")
    assert made.headers["Location"].endswith(f"/ProductionOrder({first['Id']})")
    assert first["WorkflowName"] == "SKY.SRC_CAT" and first["Priority"] == 70 and first["EstimatedDate"]
    second = odip.post("/ProductionOrder", json={**ORDER, "Name": "entity form"})
    assert second.status_code == 201 and second.json()["Status"] == "queued"
    # Released in the background after the answer: in_progress without anyone asking.
    running = _wait_state(odip, first["Id"], "in_progress")
    assert running["StatusMessage"] == "request is under processing"
    with world.session() as s:
        order = s.scalars(select(ProcessingOrder).where(ProcessingOrder.uuid == first["Id"])).one()
        assert order.dynamic_parameters == {"threshold_sigma": 4.5} and order.state == "RELEASED"
        assert order.requested_classes == ["SRC_CAT"]
    listed = odip.get("/ProductionOrder").json()["value"]
    assert [o["Id"] for o in listed] == [second.json()["Id"], first["Id"]]
    page = odip.get("/ProductionOrder", params={"$top": 1}).json()
    assert len(page["value"]) == 1 and "$skip=1" in page["@odata.nextLink"]
    cancelled = odip.post(f"/ProductionOrder({first['Id']})/OData.CSC.Cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["Status"], cancelled.json()["StatusMessage"]) == (
        "cancelled",
        "request cancelled by user",
    )
    assert cancelled.json()["CompletedDate"]
    again = odip.post(f"/ProductionOrder({first['Id']})/OData.CSC.Cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "IllegalTransition"
    assert odip.get(f"/ProductionOrder({uuid.uuid4()})").status_code == 404
    assert odip.get("/ProductionOrder(nope)").json()["error"]["target"] == "Id"
    nothing = odip.get(f"/ProductionOrder({first['Id']})/Product")
    assert nothing.status_code == 404 and "no product yet" in nothing.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "target"),
    [
        ({"WorkflowName": "SKY.NOPE"}, "WorkflowName"),
        ({"WorkflowName": "S5P.L2__NO2___"}, "WorkflowName"),  # a mission the caller cannot order on
        ({"WorkflowOptions": [{"Name": "gain", "Value": 1}]}, "WorkflowOptions[0].Name"),
        ({"WorkflowOptions": [{"Name": "threshold_sigma", "Value": "x"}]}, "WorkflowOptions[0].Value"),
        ({"InputProductReference": {"ContentDate": {"Start": "yesterday", "End": "x"}}}, None),
        ({"InputProductReference": {"Reference": "NO_SUCH_FILE.parquet"}}, None),
        ({"Priority": 0}, "Priority"),
        ({"NotificationEndpoint": "ftp://x"}, "NotificationEndpoint"),
        ({"Colour": "red"}, "Colour"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    odip: httpx.Client, world: Catalog, change: dict[str, Any], target: str | None
) -> None:
    answer = odip.post("/ProductionOrder/OData.CSC.Order", json={**ORDER, **change})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    expected = (
        target
        or {
            "yesterday": "InputProductReference.ContentDate.Start",
            "NO_SUCH": "InputProductReference.Reference",
        }["yesterday" if "yesterday" in json.dumps(change) else "NO_SUCH"]
    )
    assert error["target"] == expected and error["message"].startswith(expected), error
    with world.session() as s:
        assert s.scalar(select(OdipOrder.id)) is None  # nothing half-written
    assert odip.post("/ProductionOrder", content=b"{not json").json()["error"]["target"] == "body"


def test_notification_once_per_end_after_a_failed_attempt(
    odip: httpx.Client, world: Catalog, receiver: Receiver
) -> None:
    body = {
        **ORDER,
        "NotificationEndpoint": receiver.url,
        "NotificationEpUsername": "client",
        "NotificationEpPassword": "secret",
    }
    key = odip.post("/ProductionOrder/OData.CSC.Order", json=body).json()["Id"]
    _wait_state(odip, key, "in_progress")
    with world.session() as s:
        assert due_count(s) == 0  # not ended: nothing owed
    assert "NotificationEpPassword" not in odip.get(f"/ProductionOrder({key})").json()
    odip.post(f"/ProductionOrder({key})/OData.CSC.Cancel").raise_for_status()
    first = deliver_due(world)  # the endpoint answers 503 once
    assert first.sent == [] and "HTTP 503" in first.failed[key]
    assert deliver_due(world).sent == []  # backing off: not due yet
    with world.session() as s:
        row = s.scalars(select(OdipOrder)).one()
        assert row.notify_attempts == 1 and row.notify_next_at is not None and row.notified_at is None
    later = utcnow() + timedelta(minutes=5)
    with world.session() as s:
        assert due_count(s, later) == 1
    assert deliver_due(world, now=later).sent == [key]
    assert deliver_due(world, now=later + timedelta(hours=2)).sent == []  # exactly once
    assert len(receiver.accepted) == 1
    posted = receiver.accepted[0]
    assert (posted["Id"], posted["Status"]) == (key, "cancelled")
    assert receiver.authorizations() == ["Basic Y2xpZW50OnNlY3JldA=="]  # client:secret
    with world.session() as s:
        row = s.scalars(select(OdipOrder)).one()
        assert row.notified_at is not None and row.notify_error is None and row.notified_event_id
        assert due_count(s, later + timedelta(hours=2)) == 0


def _ended(world: Catalog, endpoint: str) -> str:
    """An ODIP order made and cancelled without the API (so no Airflow run): its Id."""
    from proseo.interfaces import odip_orders
    from proseo.planning import lifecycle

    with world.session() as s:
        parsed = odip_orders.parse_request(s, {**ORDER, "NotificationEndpoint": endpoint}, ["SKY"])
        order = odip_orders.create(s, parsed, "ops")
        key, identifier = order.uuid, order.identifier
    lifecycle.approve_order(world, "SKY", identifier)
    lifecycle.cancel_order(world, "SKY", identifier)
    return key


def test_a_bad_endpoint_fails_only_its_own_notification(world: Catalog) -> None:
    good, garbage, target = Receiver(), Garbage(), Receiver()
    redirect = Receiver(redirect_to=target.url)
    try:
        keys = [_ended(world, url) for url in (good.url, garbage.url, redirect.url, good.url)]
        with world.session() as s:  # a row older than the creation check
            s.execute(
                update(OdipOrder)
                .where(
                    OdipOrder.order_id
                    == select(ProcessingOrder.id).where(ProcessingOrder.uuid == keys[3]).scalar_subquery()
                )
                .values(notification_endpoint="http://user:pw0rd@a:b:c/?t=tok3n")
            )
        result = deliver_due(world)
        assert result.sent == [keys[0]] and [a["Id"] for a in good.accepted] == [keys[0]]
        assert set(result.failed) == set(keys[1:])
        assert result.failed[keys[2]].startswith("HTTP 302") and target.posts == []
        assert garbage.connections == 1
        assert "pw0rd" not in result.failed[keys[3]] and "tok3n" not in result.failed[keys[3]]
        with world.session() as s:
            rows = s.scalars(select(OdipOrder).where(OdipOrder.notify_error.is_not(None))).all()
            assert len(rows) == 3 and all(r.notify_attempts == 1 and r.notify_claim is None for r in rows)
    finally:
        for r in (good, garbage, target, redirect):
            r.close()


def test_a_dispatcher_whose_claim_expired_records_nothing(world: Catalog) -> None:
    """A's POST is slow: meanwhile A's claim expires, B claims and delivers. A's 503 must
    not be written over B's delivery."""
    later: list[Any] = []
    receiver = Receiver(
        fail_first=1, on_first=lambda: later.append(deliver_due(world, now=utcnow() + timedelta(hours=1)))
    )
    try:
        key = _ended(world, receiver.url)
        first = deliver_due(world)
        assert later[0].sent == [key]
        assert first.sent == [] and first.failed == {}  # its outcome was not recorded
        with world.session() as s:
            row = s.scalars(select(OdipOrder)).one()
            assert row.notified_at is not None and row.notify_error is None and row.notify_attempts == 0
            assert row.notify_claim is None and row.notify_claimed_until is None
    finally:
        receiver.close()


def test_the_sweep_releases_orders_left_queued_but_never_a_suspended_one(world: Catalog) -> None:
    """What the proseo_odip DAG does when the API stopped before its background release:
    orders left queued are released; a suspended one stays; a refused release backs off."""
    from proseo.interfaces import odip_orders
    from proseo.interfaces.odip_notify import QUEUED_GRACE_S, RETRY, carry_queued
    from proseo.planning import lifecycle

    second_night = {"ContentDate": {"Start": "2025-03-02T00:00:00Z", "End": "2025-03-03T00:00:00Z"}}
    made = []
    for body in (ORDER, {**ORDER, "InputProductReference": second_night}, ORDER):
        with world.session() as s:
            order = odip_orders.create(s, odip_orders.parse_request(s, body, ["SKY"]), "ops")
            made.append(order.identifier)
        lifecycle.approve_order(world, "SKY", made[-1])
    lifecycle.plan_order(world, "SKY", made[1])
    lifecycle.release_order(world, "SKY", made[1])
    lifecycle.suspend_order(world, "SKY", made[1], force=True)  # an operator's decision: PLANNED
    now = utcnow()
    assert carry_queued(world, now=now) == {"released": [], "failed": []}  # within the grace time
    later = now + timedelta(seconds=QUEUED_GRACE_S + 1)
    with world.session() as s:
        assert due_count(s, later) == 2
    done = carry_queued(world, now=later)
    # The third asks for the first's product: refused until the first has made it.
    assert done["released"] == [made[0]] and len(done["failed"]) == 1 and made[0] in done["failed"][0]
    with world.session() as s:
        states = dict(s.execute(select(ProcessingOrder.identifier, ProcessingOrder.state)).all())
        assert [states[m] for m in made] == ["RELEASED", "PLANNED", "PLANNED"]
        assert due_count(s, later) == 0  # backing off
        assert due_count(s, later + RETRY.delay(1) + timedelta(seconds=1)) == 1


def test_a_named_input_product_gives_the_window(odip: httpx.Client, world: Catalog) -> None:
    from proseo.catalog.model_mission import Mission
    from proseo.catalog.model_product import Product, ProductFile

    with world.session() as s:
        name, start, stop = s.execute(
            select(ProductFile.file_name, Product.sensing_start, Product.sensing_stop)
            .join(Product, Product.id == ProductFile.product_id)
            .join(Mission, Mission.id == Product.mission_id)
            .where(Mission.code == "SKY")
            .order_by(Product.id)
        ).first()
    made = odip.post("/ProductionOrder", json={**ORDER, "InputProductReference": {"Reference": name}})
    assert made.status_code == 201, made.text
    assert made.json()["InputProductReference"] == {"Reference": name}
    with world.session() as s:
        order = s.scalars(select(ProcessingOrder).where(ProcessingOrder.uuid == made.json()["Id"])).one()
        assert (order.start_time, order.stop_time) == (start, stop)


def test_a_client_sees_and_cancels_only_its_own_orders_an_admin_all(
    odip: httpx.Client, odip_url: str, token_for: Any, world: Catalog
) -> None:
    from proseo.interfaces import odip_orders

    with world.session() as s:
        parsed = odip_orders.parse_request(
            s, {**ORDER, "NotificationEndpoint": "http://hook.example/x"}, ["SKY"]
        )
        key = odip_orders.create(s, parsed, "ops").uuid
    as_user = {
        u: httpx.Client(base_url=odip_url, headers={"Authorization": f"Bearer {token_for(u)}"}, timeout=60)
        for u in ("ops", "sky-admin", "root")
    }
    # The Airflow user operates SKY too, but the order is ops's.
    assert key not in [o["Id"] for o in odip.get("/ProductionOrder").json()["value"]]
    assert odip.get(f"/ProductionOrder({key})").status_code == 404
    assert odip.post(f"/ProductionOrder({key})/OData.CSC.Cancel").status_code == 404
    for user in ("ops", "sky-admin", "root"):
        http = as_user[user]
        assert key in [o["Id"] for o in http.get("/ProductionOrder").json()["value"]], user
        shown = http.get(f"/ProductionOrder({key})")
        assert shown.status_code == 200 and shown.json()["NotificationEndpoint"] == "http://hook.example/x"
    with world.session() as s:
        assert s.scalar(select(ProcessingOrder.state).where(ProcessingOrder.uuid == key)) == "INITIAL"


def test_an_order_whose_approval_fails_is_still_created_once(
    odip: httpx.Client, world: Catalog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fault injection (the approval raising after the order was committed): the client gets
    201 and the order's Id, so it has no reason to send it again; the sweep takes it over."""
    from proseo.api import odip_orders as api
    from proseo.errors import ProseoError

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ProseoError("approval refused by the test")

    monkeypatch.setattr(api.lifecycle, "approve_order", refuse)
    answer = odip.post("/ProductionOrder", json=ORDER)
    assert answer.status_code == 201, answer.text
    with world.session() as s:
        order = s.scalars(select(ProcessingOrder).where(ProcessingOrder.uuid == answer.json()["Id"])).one()
        assert order.state == "INITIAL" and s.scalar(select(func.count()).select_from(OdipOrder)) == 1
    assert "approving SKY/" in caplog.text and "approval refused by the test" in caplog.text


def test_a_background_release_that_fails_is_logged(world: Catalog, caplog: pytest.LogCaptureFixture) -> None:
    from proseo.api.odip_orders import _release
    from proseo.interfaces import odip_orders
    from proseo.planning import lifecycle

    made = []
    for _ in range(2):  # the second asks for the first's product: refused until it is made
        with world.session() as s:
            made.append(odip_orders.create(s, odip_orders.parse_request(s, ORDER, ["SKY"]), "ops").identifier)
        lifecycle.approve_order(world, "SKY", made[-1])
    _release(world, "SKY", made[0])
    assert "not released" not in caplog.text
    _release(world, "SKY", made[1])
    assert f"odip: SKY/{made[1]} not released yet" in caplog.text


def test_output_size_counts_a_replicated_product_once(world: Catalog) -> None:
    """A product stored at two facilities: OrderOutputSize is its size, not twice it."""
    from proseo.catalog.model_mission import Facility, Mission
    from proseo.catalog.model_order import Job, JobStep
    from proseo.catalog.model_product import Product, ProductFile
    from proseo.interfaces import odip_entity, odip_orders
    from proseo.planning import lifecycle

    with world.session() as s:
        order = odip_orders.create(s, odip_orders.parse_request(s, ORDER, ["SKY"]), "ops")
        order_id, identifier = order.id, order.identifier
    lifecycle.approve_order(world, "SKY", identifier)
    lifecycle.plan_order(world, "SKY", identifier)
    with world.session() as s:
        step = s.scalars(
            select(JobStep)
            .join(Job, Job.id == JobStep.job_id)
            .where(Job.order_id == order_id, JobStep.requested)
        ).first()
        assert step is not None
        mission_id = s.scalar(select(Mission.id).where(Mission.code == "SKY"))
        made = s.scalars(select(Product).where(Product.mission_id == mission_id).order_by(Product.id)).first()
        assert made is not None
        made.job_step_id = step.id
        first = s.scalars(select(ProductFile).where(ProductFile.product_id == made.id)).all()
        home = s.get(Facility, first[0].facility_id)
        assert home is not None
        other = Facility(
            mission_id=home.mission_id,
            name="replica",
            backend=home.backend,
            storage_url=home.storage_url + "-replica",
            storage_options={},
            scratch_path=home.scratch_path,
            max_concurrent_job_steps=1,
        )
        s.add(other)
        s.flush()
        for f in first:
            s.add(
                ProductFile(
                    product_id=made.id,
                    facility_id=other.id,
                    file_name=f.file_name,
                    storage_url=f.storage_url + "-replica",
                    size=f.size,
                    md5=f.md5,
                    sha256=f.sha256,
                )
            )
        expected = sum(f.size for f in first)
        key = made.uuid
    with world.session() as s:
        assert odip_entity.output_products(s, order_id) == [(key, expected)]
