"""campaigns: the campaign table and each order's campaign, unit and attempt

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:10:00

A reprocessing campaign is one row (its request as JSON, the state an operator gave
it, the gap retry round); its orders point at it and name their unit and attempt.
Everything else is derived from the orders and products. Existing orders belong to
no campaign.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import proseo.catalog.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_UTC = proseo.catalog.db.UTCDateTime()
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mission_id", sa.Integer(), sa.ForeignKey("mission.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("spec", _JSON, nullable=False),
        sa.Column("retry_round", sa.Integer(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("started_at", _UTC, nullable=True),
        sa.Column("updated_at", _UTC, nullable=True),
        sa.Column("last_pass_at", _UTC, nullable=True),
        sa.Column("completed_at", _UTC, nullable=True),
        sa.UniqueConstraint("mission_id", "name"),
    )
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("campaign_unit", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("campaign_attempt", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_processing_order_campaign", "campaign", ["campaign_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index("ix_order_campaign", ["campaign_id"])


def downgrade() -> None:
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.drop_index("ix_order_campaign")
        batch_op.drop_constraint("fk_processing_order_campaign", type_="foreignkey")
        for column in ("campaign_attempt", "campaign_unit", "campaign_id"):
            batch_op.drop_column(column)
    op.drop_table("campaign")
