"""order events, plan fields on orders and job steps

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import proseo.catalog.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_event",
        sa.Column("id", _ID, nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=False),
        sa.Column("to_state", sa.String(length=20), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["processing_order.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("order_event", schema=None) as batch_op:
        batch_op.create_index("ix_order_event_order", ["order_id"], unique=False)
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("planned_at", proseo.catalog.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("plan_summary", _JSON, nullable=True))
    with op.batch_alter_table("job_step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("depth", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("requested", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("job_step", schema=None) as batch_op:
        batch_op.drop_column("requested")
        batch_op.drop_column("depth")
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.drop_column("plan_summary")
        batch_op.drop_column("planned_at")
    with op.batch_alter_table("order_event", schema=None) as batch_op:
        batch_op.drop_index("ix_order_event_order")
    op.drop_table("order_event")
