"""PRIP ``Subscriptions``: create, find, list, pause/resume and delete, and their JSON.

A subscription belongs to one mission and to the user who created it. Its
``FilterParam`` is parsed *and* translated to SQL at creation (against the catalogue's
parameter types), so a filter the matcher could not run is refused then, with the
character to fix, never discovered later by a dispatcher. Who sees what: the owner
their own subscriptions (while they may view the mission), a mission admin every
subscription of the mission; any other caller gets 404, as for a product they may not see.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, false, func, or_, select
from sqlalchemy.orm import Session

from proseo.catalog.access import Grants, Role
from proseo.catalog.footprints import intersects
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_subscription import (
    NotificationState,
    Subscription,
    SubscriptionNotification,
    SubscriptionStatus,
    SubscriptionType,
)
from proseo.errors import NotFoundError
from proseo.interfaces.notify_http import endpoint_problem
from proseo.interfaces.odata_filter import parse_filter
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.prip_entity import odata_time
from proseo.interfaces.prip_filter_sql import FilterTranslator
from proseo.interfaces.prip_model import parameter_types
from proseo.interfaces.request_fields import FieldError, text_field, uuid_key

#: What a client may send when it creates a subscription (CDSE's names; Mission is proseo's).
#: StageOrder and Priority (CDSE's, for staging offline products) are accepted and ignored:
#: every product a PRIP lists here is online.
FIELDS = (
    "FilterParam",
    "Mission",
    "Status",
    "SubscriptionEvent",
    "SubscriptionType",
    "NotificationEndpoint",
    "NotificationEpUsername",
    "NotificationEpPassword",
    "StageOrder",
    "Priority",
)


class SubscriptionError(FieldError):
    """A subscription request that cannot be accepted; names the field to fix."""


class NotOwner(SubscriptionError):
    """Only a subscription's owner reads and acknowledges its notifications."""

    http_status = 403


def filter_condition(session: Session, text: str) -> ColumnElement[bool]:
    """The SQL condition of a ``FilterParam``; an :class:`ODataError` on option ``FilterParam``."""
    try:
        return FilterTranslator(
            text, footprint=intersects, parameter_types=parameter_types(session)
        ).condition(parse_filter(text))
    except ODataError as exc:
        raise ODataError("FilterParam", exc.text, exc.offset, exc.reason) from exc


def _text(body: Mapping[str, Any], field: str, *, required: bool = False, limit: int = 4000) -> str | None:
    return text_field(body, field, limit=limit, required=required, error=SubscriptionError)


def _mission(session: Session, grants: Grants, code: str | None) -> Mission:
    """The subscription's mission: the one named, or the only one the caller may view."""
    codes = grants.visible(session.scalars(select(Mission.code).order_by(Mission.code)).all())
    if code is None:
        if len(codes) != 1:
            raise SubscriptionError("Mission", f"is required: the caller may view {len(codes)} missions")
        code = codes[0]
    if code not in codes:
        raise NotFoundError(f"Mission {code[:16]!r}: no such mission")
    return session.scalars(select(Mission).where(Mission.code == code)).one()


def create_subscription(
    session: Session, grants: Grants, body: Mapping[str, Any], now: datetime
) -> Subscription:
    """A new subscription of ``grants.user`` from a client's JSON body (nothing written on error)."""
    unknown = sorted(k for k in body if k not in FIELDS and not k.startswith("@odata."))
    if unknown:
        raise SubscriptionError(unknown[0], f"unknown property (known: {', '.join(FIELDS)})")
    text = _text(body, "FilterParam", required=True)
    assert text is not None
    filter_condition(session, text)
    mission = _mission(session, grants, _text(body, "Mission", limit=16))
    status = _text(body, "Status") or SubscriptionStatus.RUNNING.value
    if status not in (SubscriptionStatus.RUNNING, SubscriptionStatus.PAUSED):
        raise SubscriptionError("Status", f"{status[:20]!r}: a new subscription is running or paused")
    if (_text(body, "SubscriptionEvent") or "created") != "created":
        raise SubscriptionError("SubscriptionEvent", "only 'created' (a product was published) is offered")
    endpoint = _text(body, "NotificationEndpoint")
    kind = _text(body, "SubscriptionType") or (SubscriptionType.PUSH if endpoint else SubscriptionType.PULL)
    if kind not in (SubscriptionType.PUSH, SubscriptionType.PULL):
        raise SubscriptionError("SubscriptionType", f"{kind[:20]!r}: push or pull")
    if kind == SubscriptionType.PUSH and not endpoint:
        raise SubscriptionError("NotificationEndpoint", "a push subscription needs an http(s) URL")
    problem = endpoint_problem(endpoint) if endpoint else None
    if problem:
        raise SubscriptionError("NotificationEndpoint", problem)
    if kind == SubscriptionType.PULL and endpoint:
        raise SubscriptionError("NotificationEndpoint", "a pull subscription has no endpoint")
    user, password = _text(body, "NotificationEpUsername", limit=256), _text(body, "NotificationEpPassword")
    if password and not user:
        raise SubscriptionError("NotificationEpUsername", "is required with NotificationEpPassword")
    sub = Subscription(
        uuid=str(uuid.uuid4()),
        mission_id=mission.id,
        owner=grants.user,
        filter_param=text,
        status=str(status),
        subscription_event="created",
        subscription_type=str(kind),
        endpoint=endpoint,
        endpoint_user=user,
        endpoint_password=password,
        submitted_at=now,
        matched_until=now,
    )
    session.add(sub)
    session.flush()
    return sub


def visible(session: Session, grants: Grants) -> ColumnElement[bool]:
    """Subscriptions the caller sees: their own on missions they view, all on missions they administer."""
    codes = session.scalars(select(Mission.code)).all()
    viewed = grants.visible(codes)
    administered = [c for c in codes if grants.allows(c, Role.ADMIN)]
    if not viewed:
        return false()
    return or_(
        and_(Subscription.owner == grants.user, Mission.code.in_(viewed)),
        Mission.code.in_(administered),
    )


def _listing(session: Session, grants: Grants) -> Select[Subscription, str]:
    return (
        select(Subscription, Mission.code)
        .join(Mission, Mission.id == Subscription.mission_id)
        .where(visible(session, grants))
        .order_by(Subscription.id)
    )


def subscription_key(key: str) -> str:
    """The UUID of ``Subscriptions(<key>)``, bare or quoted."""
    return uuid_key(key, "Subscriptions", SubscriptionError)


def find_subscription(
    session: Session, grants: Grants, key: str, *, lock: bool = False
) -> tuple[Subscription, str]:
    """One visible subscription and its mission's code, or 404."""
    wanted = subscription_key(key)
    stmt = _listing(session, grants).where(Subscription.uuid == wanted)
    row = session.execute(stmt.with_for_update(of=Subscription) if lock else stmt).first()
    if row is None:
        raise NotFoundError(f"Subscriptions({wanted}): no such subscription")
    return row[0], row[1]


def list_subscriptions(
    session: Session, grants: Grants | None, mission: str | None = None
) -> list[dict[str, Any]]:
    """What ``grants`` see (None: everything, for the CLI on the catalogue), of one mission or all."""
    stmt = (
        _listing(session, grants)
        if grants is not None
        else select(Subscription, Mission.code)
        .join(Mission, Mission.id == Subscription.mission_id)
        .order_by(Subscription.id)
    )
    if mission is not None:
        stmt = stmt.where(Mission.code == mission)
    rows = session.execute(stmt).all()
    counts = _counts(session, [s.id for s, _ in rows])
    return [subscription_entity(s, code, counts.get(s.id, {})) for s, code in rows]


def entity_of(session: Session, sub: Subscription, mission: str) -> dict[str, Any]:
    """:func:`subscription_entity` with the subscription's notification counts."""
    return subscription_entity(sub, mission, _counts(session, [sub.id]).get(sub.id, {}))


def set_status(session: Session, grants: Grants, key: str, status: object) -> dict[str, Any]:
    """Pause or resume (``PATCH`` with ``Status``). A resumed subscription catches up on what was
    published while it was paused: its high-water mark did not move."""
    if status not in (SubscriptionStatus.RUNNING, SubscriptionStatus.PAUSED):
        raise SubscriptionError("Status", "running or paused (DELETE ends a subscription)")
    sub, code = find_subscription(session, grants, key, lock=True)
    sub.status = str(status)
    return entity_of(session, sub, code)


def delete_subscription(session: Session, grants: Grants, key: str) -> None:
    """Remove a subscription and its notifications: nothing more is matched, pushed or read.

    A dispatcher in the middle of a POST for it finds its claim gone and records nothing.
    """
    sub, _ = find_subscription(session, grants, key, lock=True)
    session.execute(
        delete(SubscriptionNotification).where(SubscriptionNotification.subscription_id == sub.id)
    )
    session.delete(sub)


def _counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    if not ids:
        return out
    n = SubscriptionNotification
    for sid, state, count in session.execute(
        select(n.subscription_id, n.state, func.count())
        .where(n.subscription_id.in_(ids))
        .group_by(n.subscription_id, n.state)
    ):
        out.setdefault(sid, {})[state] = count
    return out


def subscription_entity(sub: Subscription, mission: str, counts: Mapping[str, int]) -> dict[str, Any]:
    """The JSON of one subscription (the endpoint's password is never shown)."""
    return {
        "Id": sub.uuid,
        "Status": sub.status,
        "SubscriptionEvent": sub.subscription_event,
        "FilterParam": sub.filter_param,
        "SubscriptionType": sub.subscription_type,
        "NotificationEndpoint": sub.endpoint,
        "NotificationEpUsername": sub.endpoint_user,
        "SubmissionDate": odata_time(sub.submitted_at),
        "LastNotificationDate": odata_time(sub.last_notified_at),
        "Mission": mission,
        "Owner": sub.owner,
        "PendingNotifications": counts.get(NotificationState.PENDING, 0),
        "DeliveredNotifications": counts.get(NotificationState.DELIVERED, 0),
        "FailedNotifications": counts.get(NotificationState.FAILED, 0),
    }
