"""The subscription matcher: newly published products -> notification rows (the outbox).

Why afterwards and not at registration: registration and ingestion commit products in
bulk transactions on the production path; evaluating every subscription's filter there
would slow them, and a broken endpoint or filter could block them. Instead the matcher
runs from the outbox side (the dispatcher's schedule), per running subscription:

* it takes the subscription's row lock (an UPDATE of its own row: PostgreSQL's row lock,
  SQLite's write lock), so two matchers never work on one subscription at once;
* it runs ONE ``INSERT ... SELECT``: the subscription's ``FilterParam`` translated to SQL
  exactly as ``GET Products`` translates it (:func:`prip_query.match_statement`), over the
  mission's AVAILABLE products published (``created_at``, the PRIP's PublicationDate)
  since its high-water mark, minus :data:`LATE_COMMIT`, leaving out products it has
  already queued (``NOT EXISTS``; the unique (subscription, product) pair backs it);
* it moves the mark to ``now``.

``created_at`` is set when a product row is written, before its transaction commits, so a
product can become visible with a PublicationDate a little older than the mark; looking
back :data:`LATE_COMMIT` each time finds it, and ``NOT EXISTS`` keeps the overlap from
queueing anything twice. The contract for every writer of products (catalog/ingest.py,
catalog/register.py): commit within :data:`LATE_COMMIT` (5 minutes) of stamping
``created_at``; a product committed later than that is never matched. Products published
before the subscription never match.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, exists, insert, literal, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from proseo.catalog.access import Role, grants_of
from proseo.catalog.db import Catalog, UTCDateTime, utcnow
from proseo.catalog.footprints import footprint_of, intersects
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_product import Product
from proseo.catalog.model_subscription import (
    NotificationState,
    Subscription,
    SubscriptionNotification,
    SubscriptionStatus,
)
from proseo.errors import ProseoError
from proseo.interfaces.odata_filter import parse_filter
from proseo.interfaces.odata_lexer import ODataError
from proseo.interfaces.odata_options import QueryOptions
from proseo.interfaces.prip_entity import odata_time, product_entity
from proseo.interfaces.prip_model import parameter_types
from proseo.interfaces.prip_query import match_statement, query_page

log = logging.getLogger(__name__)

#: How far before its high-water mark a matcher looks again (products committed late).
LATE_COMMIT = timedelta(minutes=5)
#: What a notification shows of its product: the whole entity with its attributes.
ENTITY_OPTIONS = QueryOptions(expand=("Attributes",))


def enqueue_matches(catalog: Catalog, *, now: datetime | None = None) -> dict[str, int]:
    """Queue a notification per new matching product for every running subscription.

    One short transaction per subscription; returns how many were queued per subscription Id.
    """
    now = now or utcnow()
    with catalog.session() as session:
        ids = session.scalars(
            select(Subscription.id).where(Subscription.status == SubscriptionStatus.RUNNING.value)
        ).all()
    queued: dict[str, int] = {}
    for sid in ids:
        try:
            with catalog.session() as session:
                found = _match_one(session, sid, now)
        except (ProseoError, SQLAlchemyError) as exc:
            # A filter that no longer translates (a mission revision retyped a parameter), or
            # one the database refuses to run (an Integer attribute cast of a value that is not
            # a number is a DataError on PostgreSQL): its transaction is rolled back, this
            # subscription waits with its mark unmoved, and the others go on.
            log.error("subscription %d: not matched: %s", sid, str(exc).splitlines()[0][:500])
            continue
        if found is not None:
            queued[found[0]] = found[1]
    return queued


def _match_one(session: Session, sid: int, now: datetime) -> tuple[str, int] | None:
    locked = session.execute(
        update(Subscription)
        .where(Subscription.id == sid, Subscription.status == SubscriptionStatus.RUNNING.value)
        .values(matched_until=Subscription.matched_until)
    )
    if not locked.rowcount:  # type: ignore[attr-defined]
        return None  # deleted or paused since the list was read
    sub, mission = session.execute(
        select(Subscription, Mission.code)
        .join(Mission, Mission.id == Subscription.mission_id)
        .where(Subscription.id == sid)
    ).one()
    if not grants_of(session, sub.owner).allows(mission, Role.VIEWER):
        return sub.uuid, 0  # the owner lost access: nothing is queued while they lack it
    since = max(sub.submitted_at, sub.matched_until - LATE_COMMIT)
    n = SubscriptionNotification
    already = exists().where(n.subscription_id == sid, n.product_id == Product.id)
    utc = UTCDateTime()
    try:
        options = QueryOptions(filter=parse_filter(sub.filter_param), filter_text=sub.filter_param)
        source = match_statement(
            options,
            literal(sid, Integer()),
            Product.id,
            literal(NotificationState.PENDING.value, String()),
            literal(now, utc),
            literal(0, Integer()),
            literal(now, utc),
            scope=Product.mission_id == sub.mission_id,
            footprint=intersects,
            parameter_types=parameter_types(session),
        ).where(Product.created_at >= since, Product.created_at <= now, ~already)
    except ODataError as exc:
        raise ODataError("FilterParam", exc.text, exc.offset, exc.reason) from exc
    source = source.order_by(Product.created_at, Product.id)
    columns = ["subscription_id", "product_id", "state", "enqueued_at", "attempts", "next_attempt_at"]
    # RETURNING counts the rows on both backends (psycopg's rowcount of INSERT ... SELECT is -1).
    queued = len(session.execute(insert(n).from_select(columns, source).returning(n.id)).all())
    sub.matched_until = max(now, sub.matched_until)
    return sub.uuid, queued


def notification_bodies(
    session: Session, rows: list[tuple[int, str, int]], now: datetime
) -> dict[int, dict[str, Any]]:
    """The JSON of notifications ``(notification id, subscription Id, product id)``, by notification id.

    The product entity is the one ``GET Products(<Id>)?$expand=Attributes`` answers; all of
    them come from one page statement.
    """
    if not rows:
        return {}
    ids = sorted({pid for _, _, pid in rows})
    options = QueryOptions(top=len(ids), expand=ENTITY_OPTIONS.expand)
    page = query_page(session, options, scope=Product.id.in_(ids))
    entities = {r.product.id: product_entity(r, options, footprint_of(r.product)) for r in page.rows}
    out: dict[int, dict[str, Any]] = {}
    for nid, subscription, pid in rows:
        entity = entities.get(pid)
        if entity is None:  # evicted or removed since it was queued: nothing to announce
            continue
        out[nid] = {
            "@odata.context": "$metadata#Notification/$entity",
            "SubscriptionEvent": "created",
            "SubscriptionId": subscription,
            "ProductId": entity["Id"],
            "ProductName": entity["Name"],
            "NotificationDate": odata_time(now),
            "value": entity,
        }
    return out
