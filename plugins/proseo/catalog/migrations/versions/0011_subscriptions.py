"""subscriptions: PRIP subscriptions and their notification outbox

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 15:30:00

Two new tables: subscription (a caller's standing filter on one mission's products,
push or pull, with the matcher's high-water mark) and subscription_notification (one
row per subscription and matching product: attempts, next attempt, claim, state).
Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import proseo.catalog.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_UTC = proseo.catalog.db.UTCDateTime()
_BIG = proseo.catalog.db.BigId


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("mission_id", sa.Integer(), sa.ForeignKey("mission.id"), nullable=False),
        sa.Column("owner", sa.String(256), nullable=False),
        sa.Column("filter_param", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("subscription_event", sa.String(16), nullable=False),
        sa.Column("subscription_type", sa.String(8), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("endpoint_user", sa.String(256), nullable=True),
        sa.Column("endpoint_password", sa.Text(), nullable=True),
        sa.Column("submitted_at", _UTC, nullable=False),
        sa.Column("last_notified_at", _UTC, nullable=True),
        sa.Column("matched_until", _UTC, nullable=False),
    )
    op.create_index("ix_subscription_mission_owner", "subscription", ["mission_id", "owner"])
    op.create_table(
        "subscription_notification",
        sa.Column("id", _BIG, primary_key=True),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("subscription.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("product_id", _BIG, sa.ForeignKey("product.id", ondelete="CASCADE"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("enqueued_at", _UTC, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _UTC, nullable=False),
        sa.Column("claim", sa.String(32), nullable=True),
        sa.Column("claimed_until", _UTC, nullable=True),
        sa.Column("delivered_at", _UTC, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("subscription_id", "product_id"),
    )
    op.create_index("ix_notification_due", "subscription_notification", ["state", "next_attempt_at"])
    op.create_index(
        "ix_notification_subscription", "subscription_notification", ["subscription_id", "state", "id"]
    )


def downgrade() -> None:
    op.drop_table("subscription_notification")
    op.drop_table("subscription")
