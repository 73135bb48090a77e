"""PRIP ``Subscriptions`` over HTTP: creation and validation, push with back-off, pull, delete, scoping.

The PRIP is served by uvicorn (``prip_url``); notifications are POSTed to a real HTTP
receiver in a thread. New products are published by real ingestion after a subscription
is created, and what a subscriber should get is read from the catalogue directly.
"""

from __future__ import annotations

import base64
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from proseo.catalog import access
from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog
from proseo.catalog.model_mission import Mission, ProductClass
from proseo.catalog.model_product import Product
from proseo.interfaces.subscription_match import enqueue_matches
from proseo.interfaces.subscription_push import Backoff, deliver_due
from tests_receiver import Garbage, Receiver

DAY = datetime(2025, 3, 1, tzinfo=UTC)
WANTED = "L0__ODB_1_"
FILTER = (
    "Attributes/OData.CSC.StringAttribute/any(att:att/Name eq 'productType' and "
    f"att/OData.CSC.StringAttribute/Value eq '{WANTED}')"
)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def _http(prip_url: str, token_for: Any, user: str) -> httpx.Client:
    return httpx.Client(base_url=prip_url, headers={"Authorization": f"Bearer {token_for(user)}"}, timeout=30)


def _publish(catalog: Catalog, code: str, start: datetime, hours: int, tmp: Path) -> dict[str, str]:
    """Ingest a new window of the mission's inputs: {product Id: product type} of the new products."""
    from proseo.devtools.generate import write_inputs

    def known() -> dict[str, str]:
        with catalog.session() as s:
            rows = s.execute(
                select(Product.uuid, ProductClass.product_type)
                .join(ProductClass, ProductClass.id == Product.product_class_id)
                .join(Mission, Mission.id == Product.mission_id)
                .where(Mission.code == code)
            ).all()
        return {u: t for u, t in rows}

    before = known()
    with catalog.session() as s:
        mission = loaded_from_catalog(s, code)
    files = write_inputs(mission, start, start + timedelta(hours=hours), tmp / uuid.uuid4().hex[:6], size=300)
    assert Ingestor(catalog, mission).run(files).ok
    return {u: t for u, t in known().items() if u not in before}


def _create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    answer = http.post("/Subscriptions", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_creation_validates_the_filter_and_the_fields(prip_url: str, token_for: Any) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        created = _create(http, FilterParam=FILTER, NotificationEndpoint="http://127.0.0.1:9/x")
        assert created["Status"] == "running" and created["SubscriptionType"] == "push"
        assert created["Mission"] == "S5P" and created["Owner"] == "s5p-viewer"
        assert created["FilterParam"] == FILTER and created["SubmissionDate"].endswith("Z")
        assert created["LastNotificationDate"] is None
        shown = http.get(f"/Subscriptions({created['Id']})").json()
        assert {k: shown[k] for k in created if not k.startswith("@")} == {
            k: v for k, v in created.items() if not k.startswith("@")
        }
        bad = http.post("/Subscriptions", json={"FilterParam": "Name eq 'x' and", "SubscriptionType": "pull"})
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert error["target"] == "FilterParam" and error["offset"] == len("Name eq 'x' and")
        assert "character 15 (end of input)" in error["message"]
        typed = http.post("/Subscriptions", json={"FilterParam": "PublicationDate gt 'soon'"})
        assert typed.status_code == 400 and typed.json()["error"]["offset"] == 19
        for body, field in (
            ({"FilterParam": FILTER, "SubscriptionType": "push"}, "NotificationEndpoint"),
            ({"FilterParam": FILTER, "Colour": "red"}, "Colour"),
            ({"FilterParam": FILTER, "Status": "cancelled"}, "Status"),
            ({"NotificationEndpoint": "http://x"}, "FilterParam"),
            ({"FilterParam": FILTER, "NotificationEndpoint": "http://[::1/x"}, "NotificationEndpoint"),
            ({"FilterParam": FILTER, "NotificationEndpoint": "http://a:b:c/"}, "NotificationEndpoint"),
            ({"FilterParam": FILTER, "NotificationEndpoint": "http:///x"}, "NotificationEndpoint"),
            ({"FilterParam": FILTER, "NotificationEndpoint": "http://a b/"}, "NotificationEndpoint"),
        ):
            answer = http.post("/Subscriptions", json=body)
            assert answer.status_code == 400 and answer.json()["error"]["message"].startswith(field)
            assert answer.json()["error"]["target"] == field  # as the ODIP names its fields
        assert http.post("/Subscriptions", content=b"{no").json()["error"]["target"] == "body"
        assert (
            http.get(f"/Subscriptions({created['Id']})/Notifications?$top=0").json()["error"]["target"]
            == "$top"
        )
        listed = http.get("/Subscriptions").json()["value"]
        assert [s["Id"] for s in listed] == [created["Id"]]  # nothing refused was written
        # $metadata describes exactly the properties the entity shows.
        edm = {"edm": "http://docs.oasis-open.org/odata/ns/edm"}
        root = ET.fromstring(http.get("/$metadata").text)
        described = root.find(".//edm:EntityType[@Name='Subscription']", edm)
        assert described is not None
        names = {p.get("Name") for p in described.findall("edm:Property", edm)}
        assert names == {k for k in created if not k.startswith("@")}
        assert root.find(".//edm:EntitySet[@Name='Subscriptions']", edm) is not None
    with _http(prip_url, token_for, "ops") as http:  # S5P and SKY: the mission must be named
        answer = http.post("/Subscriptions", json={"FilterParam": FILTER})
        assert answer.status_code == 400 and "Mission" in answer.json()["error"]["message"]
        assert _create(http, FilterParam=FILTER, Mission="SKY")["SubscriptionType"] == "pull"


def test_push_delivers_each_matching_product_once_with_back_off(
    prip_url: str, token_for: Any, world: Catalog, receiver: Receiver, tmp_path: Path
) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        sub = _create(
            http,
            FilterParam=FILTER,
            NotificationEndpoint=receiver.url,
            NotificationEpUsername="hook",
            NotificationEpPassword="s3cret",
        )
        new = _publish(world, "S5P", DAY + timedelta(hours=6), 6, tmp_path)
        _publish(world, "SKY", DAY + timedelta(days=1), 1, tmp_path)  # another mission: never matches
        wanted = {u for u, t in new.items() if t == WANTED}
        assert wanted and len(wanted) < len(new)
        assert enqueue_matches(world)[sub["Id"]] == len(wanted)
        assert enqueue_matches(world)[sub["Id"]] == 0  # idempotent: nothing queued twice

        now = datetime.now(UTC)
        first = deliver_due(world, now=now)
        assert (first.delivered, first.retried, first.failed) == (len(wanted) - 2, 2, 0)
        assert deliver_due(world, now=now + timedelta(seconds=29)).delivered == 0  # backing off
        second = deliver_due(world, now=now + timedelta(seconds=31))
        assert (second.delivered, second.retried) == (2, 0)
        assert deliver_due(world, now=now + timedelta(hours=2)).delivered == 0

        assert len(receiver.posts) == len(wanted) + 2
        assert sorted(b["ProductId"] for b in receiver.accepted) == sorted(wanted)
        expected_auth = "Basic " + base64.b64encode(b"hook:s3cret").decode()
        assert all(h["Authorization"] == expected_auth for h, _ in receiver.posts)
        body = receiver.accepted[0]
        assert body["SubscriptionId"] == sub["Id"] and body["SubscriptionEvent"] == "created"
        as_prip = http.get(f"/Products({body['ProductId']})", params={"$expand": "Attributes"}).json()
        assert body["value"] == {k: v for k, v in as_prip.items() if k != "@odata.context"}
        assert body["ProductName"] == as_prip["Name"]

        shown = http.get(f"/Subscriptions({sub['Id']})").json()
        assert shown["DeliveredNotifications"] == len(wanted) and shown["PendingNotifications"] == 0
        assert shown["LastNotificationDate"] is not None
        rows = http.get(f"/Subscriptions({sub['Id']})/Notifications").json()["value"]
        assert sorted(r["Attempts"] for r in rows) == [1] * (len(wanted) - 2) + [2, 2]
        assert {r["State"] for r in rows} == {"delivered"}


def test_bad_endpoints_fail_their_own_notifications_and_nothing_else(
    prip_url: str, token_for: Any, world: Catalog, tmp_path: Path
) -> None:
    """Endpoints that cannot be parsed (rows older than the creation check), one answering
    garbage and one redirecting: each fails its own notifications; the good one gets all of its."""
    from proseo.catalog.model_subscription import Subscription, SubscriptionNotification

    good, garbage, target = Receiver(), Garbage(), Receiver()
    redirect = Receiver(redirect_to=target.url)
    unparsable = ["http://[::1/x", "http://hook:pw0rd@a:b:c/?token=tok3n"]
    try:
        with _http(prip_url, token_for, "s5p-viewer") as http:
            ids = [
                _create(
                    http,
                    FilterParam=FILTER,
                    NotificationEndpoint=url,
                    NotificationEpUsername="u",
                    NotificationEpPassword="pw0rd",
                )["Id"]
                for url in (good.url, garbage.url, redirect.url, good.url, good.url)
            ]
        with world.session() as s:
            for key, url in zip(ids[3:], unparsable, strict=True):
                s.execute(update(Subscription).where(Subscription.uuid == key).values(endpoint=url))
        wanted = {
            u for u, t in _publish(world, "S5P", DAY + timedelta(hours=6), 3, tmp_path).items() if t == WANTED
        }
        enqueue_matches(world)
        report = deliver_due(world, now=datetime.now(UTC))
        assert (report.delivered, report.retried, report.failed) == (len(wanted), 4 * len(wanted), 0)
        assert sorted(b["ProductId"] for b in good.accepted) == sorted(wanted)
        assert garbage.connections == len(wanted)
        assert len(redirect.posts) == len(wanted) and target.posts == []  # never followed
        with world.session() as s:
            errors = dict(
                s.execute(
                    select(Subscription.uuid, SubscriptionNotification.last_error)
                    .join(Subscription, Subscription.id == SubscriptionNotification.subscription_id)
                    .where(SubscriptionNotification.state == "pending")
                ).all()
            )
        assert errors[ids[1]].startswith("BadStatusLine") or "Remote" in errors[ids[1]]
        assert errors[ids[2]].startswith("HTTP 302")
        assert all(errors[k] for k in ids[3:])
        shown = " ".join([*errors.values(), *report.errors])
        assert "pw0rd" not in shown and "tok3n" not in shown and "hook" not in shown
    finally:
        for r in (good, garbage, target, redirect):
            r.close()


def test_a_notification_is_given_up_after_the_last_attempt(
    prip_url: str, token_for: Any, world: Catalog, tmp_path: Path
) -> None:
    never = Receiver(fail_first=10**6)
    try:
        with _http(prip_url, token_for, "s5p-viewer") as http:
            sub = _create(http, FilterParam=FILTER, NotificationEndpoint=never.url)
            wanted = {
                u
                for u, t in _publish(world, "S5P", DAY + timedelta(hours=6), 3, tmp_path).items()
                if t == WANTED
            }
            enqueue_matches(world)
            backoff = Backoff(base=timedelta(seconds=1), max_attempts=3)
            now = datetime.now(UTC)
            reports = [
                deliver_due(world, now=now + timedelta(seconds=s), backoff=backoff) for s in (0, 1, 3, 60)
            ]
            assert [(r.retried, r.failed) for r in reports] == [
                (len(wanted), 0),
                (len(wanted), 0),
                (0, len(wanted)),
                (0, 0),
            ]
            assert len(never.posts) == 3 * len(wanted)
            shown = http.get(f"/Subscriptions({sub['Id']})").json()
            assert shown["FailedNotifications"] == len(wanted) and shown["PendingNotifications"] == 0
            rows = http.get(f"/Subscriptions({sub['Id']})/Notifications").json()["value"]
            assert {(r["State"], r["Attempts"], r["LastError"]) for r in rows} == {("failed", 3, "HTTP 503")}
    finally:
        never.close()


def test_two_dispatchers_at_once_post_each_notification_once(
    prip_url: str, token_for: Any, world: Catalog, tmp_path: Path
) -> None:
    ok = Receiver()
    try:
        with _http(prip_url, token_for, "s5p-viewer") as http:
            _create(http, FilterParam="PublicationDate gt 2000-01-01T00:00:00Z", NotificationEndpoint=ok.url)
        new = _publish(world, "S5P", DAY + timedelta(hours=6), 6, tmp_path)
        enqueue_matches(world)
        now = datetime.now(UTC)
        threads = [threading.Thread(target=deliver_due, args=(world,), kwargs={"now": now}) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        deliver_due(world, now=now + timedelta(hours=1))  # whatever a lost claim race left
        assert sorted(b["ProductId"] for b in ok.accepted) == sorted(new)
    finally:
        ok.close()


def test_pull_reads_in_order_until_acknowledged(
    prip_url: str, token_for: Any, world: Catalog, tmp_path: Path
) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        sub = _create(http, FilterParam=FILTER, SubscriptionType="pull")
        path = f"/Subscriptions({sub['Id']})"
        new = _publish(world, "S5P", DAY + timedelta(hours=6), 9, tmp_path)
        wanted = {u for u, t in new.items() if t == WANTED}
        assert len(wanted) >= 3
        enqueue_matches(world)
        first = http.get(f"{path}/Read", params={"$top": "2"}).json()["value"]
        again = http.get(f"{path}/Read", params={"$top": "2"}).json()["value"]
        assert [n["ProductId"] for n in first] == [n["ProductId"] for n in again]  # not acknowledged yet
        assert int(first[0]["AckId"]) < int(first[1]["AckId"])
        acked = http.post(f"{path}/Ack", params={"$ackid": first[1]["AckId"]}).json()
        assert acked == {"AckMessagesNum": 2, "CurrentQueueLength": len(wanted) - 2}
        rest = http.get(f"{path}/Read", params={"$top": "1000"}).json()["value"]
        seen = [n["ProductId"] for n in first + rest]
        assert sorted(seen) == sorted(wanted) and len(seen) == len(set(seen))
        assert (
            http.post(f"{path}/Ack", params={"$ackid": rest[-1]["AckId"]}).json()["CurrentQueueLength"] == 0
        )
        assert http.get(f"{path}/Read").json()["value"] == []
        assert http.post(f"{path}/Ack", params={"$ackid": "x1"}).status_code == 400
    with _http(prip_url, token_for, "root") as admin:  # an admin sees it, but reading is the owner's
        assert admin.get(f"{path}/Read").status_code == 403


def test_pause_holds_and_resume_catches_up(
    prip_url: str, token_for: Any, world: Catalog, tmp_path: Path
) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        sub = _create(http, FilterParam=FILTER, SubscriptionType="pull")
        path = f"/Subscriptions({sub['Id']})"
        assert http.patch(path, json={"Status": "paused"}).json()["Status"] == "paused"
        wanted = {
            u for u, t in _publish(world, "S5P", DAY + timedelta(hours=6), 3, tmp_path).items() if t == WANTED
        }
        assert sub["Id"] not in enqueue_matches(world)
        assert http.patch(path, json={"Status": "running"}).json()["Status"] == "running"
        assert enqueue_matches(world)[sub["Id"]] == len(wanted)
        assert http.patch(path, json={"Status": "cancelled"}).status_code == 400


def test_delete_stops_deliveries(
    prip_url: str, token_for: Any, world: Catalog, receiver: Receiver, tmp_path: Path
) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        sub = _create(http, FilterParam=FILTER, NotificationEndpoint=receiver.url)
        _publish(world, "S5P", DAY + timedelta(hours=6), 3, tmp_path)
        assert enqueue_matches(world)[sub["Id"]] > 0
        assert http.delete(f"/Subscriptions({sub['Id']})").status_code == 204
        assert http.get(f"/Subscriptions({sub['Id']})").status_code == 404
        _publish(world, "S5P", DAY + timedelta(hours=9), 3, tmp_path)
        assert sub["Id"] not in enqueue_matches(world)
        assert deliver_due(world).delivered == 0 and receiver.posts == []


def test_another_mission_s_users_neither_see_nor_delete(prip_url: str, token_for: Any) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as owner:
        sub = _create(owner, FilterParam=FILTER, SubscriptionType="pull")
        assert owner.post("/Subscriptions", json={"FilterParam": FILTER, "Mission": "SKY"}).status_code == 404
    path = f"/Subscriptions({sub['Id']})"
    for user in ("sky-admin", "nobody"):
        with _http(prip_url, token_for, user) as other:
            assert other.get("/Subscriptions").json()["value"] == []
            for answer in (other.get(path), other.delete(path), other.get(f"{path}/Read")):
                assert answer.status_code == 404, answer.text
    with _http(prip_url, token_for, "root") as admin:  # an admin of the mission sees every subscription
        assert [s["Id"] for s in admin.get("/Subscriptions").json()["value"]] == [sub["Id"]]
    with _http(prip_url, token_for, "s5p-viewer") as owner:
        assert owner.get(path).status_code == 200
        assert owner.get("/Subscriptions(not-a-uuid)").status_code == 400


def test_an_owner_who_lost_the_mission_is_sent_nothing(
    prip_url: str, token_for: Any, world: Catalog, tmp_path: Path
) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        sub = _create(http, FilterParam=FILTER, SubscriptionType="pull")
    with world.session() as s:
        access.revoke(s, "s5p-viewer", "S5P")
    new = _publish(world, "S5P", DAY + timedelta(hours=6), 3, tmp_path)
    assert enqueue_matches(world)[sub["Id"]] == 0
    with world.session() as s:
        access.grant(s, "s5p-viewer", "S5P", "viewer", by="test")
    assert enqueue_matches(world)[sub["Id"]] == len([u for u, t in new.items() if t == WANTED]) > 0


def test_what_was_queued_is_not_pushed_once_the_owner_lost_the_mission(
    prip_url: str, token_for: Any, world: Catalog, receiver: Receiver, tmp_path: Path
) -> None:
    with _http(prip_url, token_for, "s5p-viewer") as http:
        sub = _create(http, FilterParam=FILTER, NotificationEndpoint=receiver.url)
    wanted = [
        u for u, t in _publish(world, "S5P", DAY + timedelta(hours=6), 3, tmp_path).items() if t == WANTED
    ]
    assert enqueue_matches(world)[sub["Id"]] == len(wanted) > 0
    with world.session() as s:
        access.revoke(s, "s5p-viewer", "S5P")
    report = deliver_due(world, now=datetime.now(UTC))
    assert (report.delivered, report.failed) == (0, len(wanted)) and receiver.posts == []
    with world.session() as s:
        from proseo.catalog.model_subscription import SubscriptionNotification

        errors = set(s.scalars(select(SubscriptionNotification.last_error)))
    assert errors == {"the owner may no longer view mission S5P"}
