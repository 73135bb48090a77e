"""odip orders: what the on-demand production interface keeps beside an order

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 15:40:00

One row per order created through the ODIP: workflow, options and input reference as
the client sent them, the notification endpoint and its credentials, and the state of
the notification outbox (which end of the order was notified, attempts, last error,
next attempt, a dispatcher's claim), and the sweep's failed releases of a queued
order. A new table; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import proseo.catalog.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_UTC = proseo.catalog.db.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "odip_order",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "order_id",
            sa.Integer(),
            sa.ForeignKey("processing_order.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("workflow", sa.String(200), nullable=False),
        sa.Column("workflow_options", proseo.catalog.db.JSONType, nullable=False),
        sa.Column("input_reference", proseo.catalog.db.JSONType, nullable=False),
        sa.Column("notification_endpoint", sa.String(1000), nullable=True),
        sa.Column("notification_username", sa.String(200), nullable=True),
        sa.Column("notification_password", sa.String(500), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("notified_event_id", sa.BigInteger(), nullable=True),
        sa.Column("notified_at", _UTC, nullable=True),
        sa.Column("notify_attempts", sa.Integer(), nullable=False),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.Column("notify_next_at", _UTC, nullable=True),
        sa.Column("notify_claimed_until", _UTC, nullable=True),
        sa.Column("release_attempts", sa.Integer(), nullable=False),
        sa.Column("release_next_at", _UTC, nullable=True),
    )
    op.create_index("ix_odip_order_pending", "odip_order", ["notified_event_id"])


def downgrade() -> None:
    op.drop_index("ix_odip_order_pending", table_name="odip_order")
    op.drop_table("odip_order")
