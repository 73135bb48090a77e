"""interface cursors: how far each pull from a delivery point (PRIP, AUXIP) has got

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 17:10:00

One row per mission and source: the PublicationDate and Id of the last product taken,
and how many were taken. A new table; nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import proseo.catalog.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_UTC = proseo.catalog.db.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "interface_cursor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mission_id", sa.Integer(), sa.ForeignKey("mission.id"), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("published", _UTC, nullable=True),
        sa.Column("last_id", sa.String(36), nullable=True),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.UniqueConstraint("mission_id", "source"),
    )


def downgrade() -> None:
    op.drop_table("interface_cursor")
