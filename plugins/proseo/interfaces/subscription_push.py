"""Push delivery: POST each due notification to its subscription's endpoint, with back-off.

:func:`deliver_due` is the whole dispatcher, with no scheduler of its own (the Airflow DAG
``proseo_subscriptions`` calls it every minute; anything else may too). It is safe to run
several at once: rows are *claimed* by one ``UPDATE ... WHERE`` that only takes unclaimed
(or expired-claim) due rows, each with a random token, and every later write to a row
checks that token, so a row is POSTed by one dispatcher at a time and a slow dispatcher
whose claim expired records nothing over a newer one. ``attempts`` grows at the claim, so
a dispatcher that dies mid-POST still counts the attempt, and its claim expires after
the lease. Delivery is at least once: an endpoint that took a POST but whose answer was
lost sees it again (the body carries SubscriptionId and ProductId to recognise it).
Each POST is :func:`~proseo.interfaces.notify_http.post_json`, which never raises: an
endpoint that cannot be reached or parsed fails its own notification, never the batch.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from proseo.catalog.access import Role, grants_of
from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.model_mission import Mission
from proseo.catalog.model_subscription import (
    NotificationState,
    Subscription,
    SubscriptionNotification,
    SubscriptionStatus,
    SubscriptionType,
)
from proseo.interfaces.notify_http import Backoff, post_json, redacted
from proseo.interfaces.subscription_match import notification_bodies

__all__ = ["Backoff", "DeliveryReport", "deliver_due"]

DEFAULT_BACKOFF = Backoff()


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver_due(
    catalog: Catalog,
    *,
    now: datetime | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    batch: int = 100,
    timeout_s: float = 10.0,
    workers: int = 8,
) -> DeliveryReport:
    """Claim up to ``batch`` due push notifications, POST them ``workers`` at a time, record each outcome."""
    now = now or utcnow()
    token = secrets.token_hex(16)
    n = SubscriptionNotification
    pushing = select(Subscription.id).where(
        Subscription.subscription_type == SubscriptionType.PUSH.value,
        Subscription.status == SubscriptionStatus.RUNNING.value,
    )
    free = or_(n.claimed_until.is_(None), n.claimed_until < now)
    due = (
        select(n.id)
        .where(n.state == NotificationState.PENDING.value, n.next_attempt_at <= now, free)
        .where(n.subscription_id.in_(pushing))
        .order_by(n.next_attempt_at, n.id)
        .limit(batch)
    )
    with catalog.session() as session:
        # The conditions again outside the subquery: PostgreSQL re-checks them on a row
        # another dispatcher claimed meanwhile, which this UPDATE then leaves alone.
        session.execute(
            update(n)
            .where(n.id.in_(due.scalar_subquery()), n.state == NotificationState.PENDING.value, free)
            .values(
                claim=token,
                claimed_until=now + timedelta(seconds=_lease_s(batch, workers, timeout_s)),
                attempts=n.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
    with catalog.session() as session:
        claimed = session.execute(
            select(n.id, Subscription.uuid, n.product_id, n.attempts, Subscription.endpoint)
            .join(Subscription, Subscription.id == n.subscription_id)
            .where(n.claim == token)
            .order_by(n.id)
        ).all()
        subs = session.execute(
            select(Subscription, Mission.code)
            .join(Mission, Mission.id == Subscription.mission_id)
            .where(Subscription.uuid.in_({c[1] for c in claimed}))
        ).all()
        auth = {s.uuid: (s.endpoint_user, s.endpoint_password) for s, _ in subs}
        # Access again at delivery: what was queued while the owner could view the mission
        # is not sent once they no longer may.
        grants = {owner: grants_of(session, owner) for owner in {s.owner for s, _ in subs}}
        barred = {s.uuid: code for s, code in subs if not grants[s.owner].allows(code, Role.VIEWER)}
        bodies = notification_bodies(session, [(c[0], c[1], c[2]) for c in claimed], now)
    report = DeliveryReport()
    jobs: dict[int, tuple[str, dict[str, object], str | None, str | None]] = {}
    for nid, subscription, _, attempts, endpoint in claimed:
        body = bodies.get(nid)
        if subscription in barred:
            lost = f"the owner may no longer view mission {barred[subscription]}"
            _finish(catalog, nid, token, now, attempts, backoff, lost, final=True)
            report.failed += 1
            continue
        if body is None:
            gone = "the product is no longer available"
            _finish(catalog, nid, token, now, attempts, backoff, gone, final=True)
            report.failed += 1
            continue
        user, password = auth.get(subscription, (None, None))
        jobs[nid] = (str(endpoint), body, user, password)
    about = {nid: (subscription, attempts, endpoint) for nid, subscription, _, attempts, endpoint in claimed}
    # POSTs in parallel, so one slow or dead endpoint does not hold up the others'
    # notifications for its timeout each; outcomes are recorded here, one by one.
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(jobs)))) as pool:
        futures = {pool.submit(post_json, *job, timeout_s): nid for nid, job in jobs.items()}
        for future in as_completed(futures):
            nid, error = futures[future], future.result()
            subscription, attempts, endpoint = about[nid]
            if error is None:
                _delivered(catalog, nid, token, now)
                report.delivered += 1
                continue
            final = attempts >= backoff.max_attempts
            _finish(catalog, nid, token, now, attempts, backoff, error, final=final)
            report.errors.append(f"Subscriptions({subscription}) -> {redacted(str(endpoint))}: {error}")
            if final:
                report.failed += 1
            else:
                report.retried += 1
    return report


def _lease_s(batch: int, workers: int, timeout_s: float) -> float:
    """How long a claim holds: every POST of the batch timing out, ``workers`` at a time, and a margin."""
    return -(-batch // max(workers, 1)) * timeout_s + 60


def _delivered(catalog: Catalog, nid: int, token: str, now: datetime) -> None:
    n = SubscriptionNotification
    with catalog.session() as session:
        done = session.execute(
            update(n)
            .where(n.id == nid, n.claim == token)
            .values(state=NotificationState.DELIVERED.value, delivered_at=now, claim=None, claimed_until=None)
            .returning(n.subscription_id)
        ).scalar_one_or_none()
        if done is not None:
            session.execute(update(Subscription).where(Subscription.id == done).values(last_notified_at=now))


def _finish(
    catalog: Catalog,
    nid: int,
    token: str,
    now: datetime,
    attempts: int,
    backoff: Backoff,
    error: str,
    *,
    final: bool,
) -> None:
    """Record a failed attempt: the next one after the back-off, or the row failed for good."""
    n = SubscriptionNotification
    values: dict[str, object] = {"claim": None, "claimed_until": None, "last_error": error[:2000]}
    if final:
        values["state"] = NotificationState.FAILED.value
    else:
        values["next_attempt_at"] = now + backoff.delay(attempts)
    with catalog.session() as session:
        session.execute(update(n).where(n.id == nid, n.claim == token).values(**values))
