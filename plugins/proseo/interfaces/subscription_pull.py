"""Pull delivery: a subscriber reads its queued notifications, then acknowledges them.

CDSE's form: ``GET Subscriptions(<Id>)/Read?$top=n`` answers the oldest unacknowledged
notifications, each with an ``AckId``; ``POST Subscriptions(<Id>)/Ack?$ackid=<AckId>``
acknowledges that one and every older one. Reading changes nothing, so an answer lost on
the way is read again; only the acknowledgement, sent once the client has what it read,
removes them from the queue: nothing is lost, and nothing acknowledged comes back.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from proseo.catalog.model_product import Product
from proseo.catalog.model_subscription import NotificationState, Subscription, SubscriptionNotification
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.prip_entity import odata_time
from proseo.interfaces.subscription_match import notification_bodies
from proseo.interfaces.subscriptions import SubscriptionError

MAX_READ = 1000


def _pull_only(sub: Subscription) -> None:
    if sub.subscription_type != "pull":
        raise SubscriptionError(f"Subscriptions({sub.uuid})", "is a push subscription: nothing to read")


def read(session: Session, sub: Subscription, top: int, now: datetime) -> dict[str, Any]:
    """The oldest ``top`` unacknowledged notifications, oldest first, each with its AckId."""
    _pull_only(sub)
    n = SubscriptionNotification
    pending = (n.subscription_id == sub.id, n.state == NotificationState.PENDING.value)
    rows = session.execute(select(n.id, n.product_id).where(*pending).order_by(n.id).limit(top)).all()
    bodies = notification_bodies(session, [(nid, sub.uuid, pid) for nid, pid in rows], now)
    value = []
    for nid, _ in rows:
        # A product removed since it was queued has no entity: announced as its Id only.
        body = bodies.get(nid, {"SubscriptionEvent": "created", "SubscriptionId": sub.uuid, "value": None})
        value.append({**body, "AckId": str(nid)})
    if rows:
        sub.last_notified_at = now
    return {"@odata.context": "$metadata#Notification", "value": value}


def ack(session: Session, sub: Subscription, ack_id: str, now: datetime) -> dict[str, Any]:
    """Acknowledge notification ``ack_id`` and every older one of the subscription."""
    _pull_only(sub)
    if not re.fullmatch(r"\s*\d{1,18}\s*", ack_id):
        raise ODataError("$ackid", ack_id, None, "expected an AckId from a Read answer")
    n = SubscriptionNotification
    done = session.execute(
        update(n)
        .where(n.subscription_id == sub.id, n.state == NotificationState.PENDING.value, n.id <= int(ack_id))
        .values(state=NotificationState.DELIVERED.value, delivered_at=now)
    )
    left = session.scalar(
        select(func.count()).where(n.subscription_id == sub.id, n.state == NotificationState.PENDING.value)
    )
    return {"AckMessagesNum": int(done.rowcount or 0), "CurrentQueueLength": int(left or 0)}  # type: ignore[attr-defined]


def notifications(session: Session, sub: Subscription, top: int, skip: int) -> list[dict[str, Any]]:
    """Every queued notification of a subscription with its delivery state (push failures show here)."""
    n = SubscriptionNotification
    rows = session.execute(
        select(n, Product.uuid)
        .join(Product, Product.id == n.product_id)
        .where(n.subscription_id == sub.id)
        .order_by(n.id)
        .limit(top)
        .offset(skip)
    ).all()
    return [
        {
            "AckId": str(row.id),
            "ProductId": product,
            "State": row.state,
            "Attempts": row.attempts,
            "EnqueuedDate": odata_time(row.enqueued_at),
            "NextAttemptDate": odata_time(row.next_attempt_at) if row.state == "pending" else None,
            "DeliveredDate": odata_time(row.delivered_at),
            "LastError": row.last_error,
        }
        for row, product in rows
    ]
