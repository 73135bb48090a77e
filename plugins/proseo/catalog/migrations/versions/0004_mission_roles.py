"""per-mission roles

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import proseo.catalog.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mission_role",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("mission", sa.String(16), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("granted_by", sa.String(256), nullable=True),
        sa.Column("granted_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.UniqueConstraint("username", "mission"),
    )


def downgrade() -> None:
    op.drop_table("mission_role")
