"""PRIP subscriptions and their notification outbox.

A subscription is a caller's standing ``$filter`` (``FilterParam``) on one mission's
products. Registration and ingestion know nothing of it: a matcher reads newly
published products afterwards and puts one ``subscription_notification`` row per
(subscription, product) into the outbox (the unique pair makes enqueuing idempotent);
push dispatchers deliver those rows with retries, pull clients read and acknowledge
them. The rows are the whole state, so a dispatcher or matcher that dies loses nothing.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from proseo.catalog.db import Base, BigId, utcnow


class SubscriptionStatus(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class SubscriptionType(StrEnum):
    PUSH = "push"
    PULL = "pull"


class NotificationState(StrEnum):
    PENDING = "pending"  # push: to be (re)tried at next_attempt_at; pull: not acknowledged yet
    DELIVERED = "delivered"  # push: the endpoint answered 2xx; pull: acknowledged
    FAILED = "failed"  # push: given up after the last attempt


class Subscription(Base):
    __tablename__ = "subscription"
    __table_args__ = (Index("ix_subscription_mission_owner", "mission_id", "owner"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    mission_id: Mapped[int] = mapped_column(ForeignKey("mission.id"))
    #: The user who created it (an Airflow user name).
    owner: Mapped[str] = mapped_column(String(256))
    #: The OData filter, as the client sent it (parsed and type-checked at creation).
    filter_param: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.RUNNING.value)
    subscription_event: Mapped[str] = mapped_column(String(16), default="created")
    subscription_type: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str | None] = mapped_column(Text)
    endpoint_user: Mapped[str | None] = mapped_column(String(256))
    endpoint_password: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_notified_at: Mapped[datetime | None]
    #: The matcher's high-water mark: the latest PublicationDate it has looked at.
    matched_until: Mapped[datetime]


class SubscriptionNotification(Base):
    __tablename__ = "subscription_notification"
    __table_args__ = (
        UniqueConstraint("subscription_id", "product_id"),
        # Push dispatchers look for due rows; pull readers for a subscription's pending ones.
        Index("ix_notification_due", "state", "next_attempt_at"),
        Index("ix_notification_subscription", "subscription_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscription.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default=NotificationState.PENDING.value)
    enqueued_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    #: A dispatcher's claim (random token) and until when it holds; an expired claim is free.
    claim: Mapped[str | None] = mapped_column(String(32))
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
