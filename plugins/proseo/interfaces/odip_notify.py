"""The ODIP notification outbox: one POST to NotificationEndpoint per end of an order.

The record of an end is the order's own: the ``order_event`` that took it to
COMPLETED, FAILED or PLANNING_FAILED. An ODIP order whose latest such event is not its row's
``notified_event_id`` owes a notification, whoever ended it (the roll-up of its job
steps, a cancel, a plan without steps); nothing in those paths waits for, or fails
with, the client's endpoint. :func:`deliver_due` delivers what is owed:

1. claim a row (an UPDATE whose WHERE decides between dispatchers, held for
   :data:`CLAIM_S`, with a random token), so two dispatchers never POST the same end, and
   the outcome is written only under that token: a dispatcher whose claim expired
   records nothing over a newer one's;
2. POST the ``ProductionOrder`` entity as JSON (:func:`~proseo.interfaces.notify_http.post_json`:
   never raises, never follows a redirect) (HTTP Basic when the order gave
   NotificationEpUsername/Password), :data:`TIMEOUT_S` at most;
3. a 2xx answer records the end as notified; anything else records the error and
   the next attempt, backing off from :data:`FIRST_RETRY_S` to :data:`MAX_RETRY_S`.

Exactly one successful POST per end, unless the dispatcher dies between the
endpoint's answer and the commit after it: then the end is POSTed again (at least once).
:func:`due_count` is what the Airflow trigger polls; :func:`carry_queued` releases ODIP
orders whose creating request did not get that far (the API releases in the
background after answering "queued").
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.orm import Session

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_odip import OdipOrder
from proseo.catalog.model_order import OrderEvent, OrderState, ProcessingOrder
from proseo.interfaces.notify_http import Backoff, post_json, redacted
from proseo.interfaces.odip_entity import entity
from proseo.planning.lifecycle import carry_to_release

log = logging.getLogger(__name__)

CLAIM_S = 120.0
TIMEOUT_S = 10.0
FIRST_RETRY_S = 15.0
MAX_RETRY_S = 3600.0
#: A queued ODIP order older than this is released by the sweep (the API normally has).
QUEUED_GRACE_S = 60.0
_ENDS = (OrderState.COMPLETED.value, OrderState.FAILED.value, OrderState.PLANNING_FAILED.value)
_ENDED = (*_ENDS, OrderState.CLOSED.value)
_QUEUED = (OrderState.INITIAL.value, OrderState.APPROVED.value, OrderState.PLANNED.value)
#: Notifications and sweep releases back off alike: doubling from FIRST_RETRY_S, capped.
RETRY = Backoff(base=timedelta(seconds=FIRST_RETRY_S), cap=timedelta(seconds=MAX_RETRY_S))


@dataclass
class Delivery:
    sent: list[str] = field(default_factory=list)  # order Ids notified
    failed: dict[str, str] = field(default_factory=dict)  # order Id -> why


def _owed(now: datetime) -> tuple[ColumnElement[int], list[ColumnElement[bool]]]:
    """The end event each ODIP order last reached, and the conditions of an owed, due notification."""
    end = (
        select(func.max(OrderEvent.id))
        .where(OrderEvent.order_id == OdipOrder.order_id, OrderEvent.to_state.in_(_ENDS))
        .correlate(OdipOrder)
        .scalar_subquery()
    )
    conditions = [
        OdipOrder.notification_endpoint.is_not(None),
        ProcessingOrder.state.in_(_ENDED),
        or_(OdipOrder.notified_event_id.is_(None), OdipOrder.notified_event_id < end),
        or_(OdipOrder.notify_next_at.is_(None), OdipOrder.notify_next_at <= now),
        or_(OdipOrder.notify_claimed_until.is_(None), OdipOrder.notify_claimed_until < now),
    ]
    return end, conditions


def due_count(session: Session, now: datetime | None = None) -> int:
    """Notifications owed and due now, plus queued ODIP orders past their grace."""
    now = now or utcnow()
    _, conditions = _owed(now)
    owed = session.scalar(
        select(func.count())
        .select_from(OdipOrder)
        .join(ProcessingOrder, ProcessingOrder.id == OdipOrder.order_id)
        .where(*conditions)
    )
    queued = session.scalar(
        select(func.count())
        .select_from(OdipOrder)
        .join(ProcessingOrder, ProcessingOrder.id == OdipOrder.order_id)
        .where(*_left_queued(now))
    )
    return int(owed or 0) + int(queued or 0)


def deliver_due(catalog: Catalog, *, now: datetime | None = None, limit: int = 100) -> Delivery:
    """Deliver every owed, due notification (at most ``limit``); what was sent and what failed."""
    result = Delivery()
    now = now or utcnow()
    end, conditions = _owed(now)
    with catalog.session() as session:
        rows = session.execute(
            select(OdipOrder.id, end)
            .join(ProcessingOrder, ProcessingOrder.id == OdipOrder.order_id)
            .where(*conditions)
            .order_by(OdipOrder.id)
            .limit(limit)
        ).all()
    for odip_id, end_id in rows:
        _deliver_one(catalog, int(odip_id), int(end_id), now, result)
    return result


def _deliver_one(catalog: Catalog, odip_id: int, end_id: int, now: datetime, result: Delivery) -> None:
    not_done = or_(OdipOrder.notified_event_id.is_(None), OdipOrder.notified_event_id < end_id)
    token = secrets.token_hex(16)
    with catalog.session() as session:
        claimed = session.execute(
            update(OdipOrder)
            .where(
                OdipOrder.id == odip_id,
                not_done,
                or_(OdipOrder.notify_claimed_until.is_(None), OdipOrder.notify_claimed_until < now),
            )
            .values(notify_claimed_until=now + timedelta(seconds=CLAIM_S), notify_claim=token)
        )
        if not getattr(claimed, "rowcount", 0):
            return  # another dispatcher has it, or it was delivered meanwhile
    with catalog.session() as session:
        odip = session.get(OdipOrder, odip_id)
        assert odip is not None
        order = session.get(ProcessingOrder, odip.order_id)
        assert order is not None
        mission = session.scalar(select(Mission.code).where(Mission.id == order.mission_id)) or ""
        body = {"@odata.context": "$metadata#ProductionOrder/$entity", **entity(session, order, mission)}
        url, user, password, attempts = (
            odip.notification_endpoint or "",
            odip.notification_username,
            odip.notification_password,
            odip.notify_attempts,
        )
        key = order.uuid
    error = post_json(url, body, user, password, TIMEOUT_S)
    done = utcnow()
    values: dict[str, object] = {"notify_claimed_until": None, "notify_claim": None}
    if error is None:
        values |= dict(notified_event_id=end_id, notified_at=done, notify_attempts=0, notify_error=None)
        values["notify_next_at"] = None
    else:
        values |= dict(
            notify_attempts=attempts + 1,
            notify_error=error,
            notify_next_at=done + RETRY.delay(attempts + 1),
        )
    with catalog.session() as session:
        # Only under this dispatcher's claim: one whose claim expired records nothing over a newer one.
        written = session.execute(
            update(OdipOrder).where(OdipOrder.id == odip_id, OdipOrder.notify_claim == token).values(**values)
        )
        if not getattr(written, "rowcount", 0):
            log.warning("odip: notification of %s: claim lost before its outcome was recorded", key)
            return
    if error is None:
        result.sent.append(key)
    else:
        result.failed[key] = error
        log.warning("odip: notification of %s to %s failed: %s", key, redacted(url), error)


def carry_queued(catalog: Catalog, *, now: datetime | None = None) -> dict[str, list[str]]:
    """Approve, plan and release ODIP orders still queued after the grace time."""
    now = now or utcnow()
    with catalog.session() as session:
        rows = session.execute(
            select(OdipOrder.id, OdipOrder.release_attempts, Mission.code, ProcessingOrder.identifier)
            .add_columns(ProcessingOrder.state)
            .select_from(ProcessingOrder)
            .join(OdipOrder, OdipOrder.order_id == ProcessingOrder.id)
            .join(Mission, Mission.id == ProcessingOrder.mission_id)
            .where(*_left_queued(now))
            .order_by(OdipOrder.id)
        ).all()
    released: list[str] = []
    failed: list[str] = []
    for odip_id, attempts, code, identifier, state in rows:
        before = len(failed)
        carry_to_release(catalog, code, [(identifier, state)], released, failed)
        if len(failed) > before:
            log.warning("odip: could not release %s/%s: %s", code, identifier, failed[-1])
            with catalog.session() as session:
                session.execute(
                    update(OdipOrder)
                    .where(OdipOrder.id == odip_id)
                    .values(
                        release_attempts=attempts + 1,
                        release_next_at=now + RETRY.delay(attempts + 1),
                    )
                )
    return {"released": released, "failed": failed}


def _left_queued(now: datetime) -> list[ColumnElement[bool]]:
    """An ODIP order still queued past its grace time that was never released.

    Never released: an order suspended back to PLANNED is an operator's decision, not
    a release the API missed. A failed release waits for its back-off.
    """
    released = select(OrderEvent.id).where(
        OrderEvent.order_id == ProcessingOrder.id, OrderEvent.operation == "release"
    )
    return [
        ProcessingOrder.state.in_(_QUEUED),
        OdipOrder.created_at <= now - timedelta(seconds=QUEUED_GRACE_S),
        ~released.exists(),
        or_(OdipOrder.release_next_at.is_(None), OdipOrder.release_next_at <= now),
    ]
