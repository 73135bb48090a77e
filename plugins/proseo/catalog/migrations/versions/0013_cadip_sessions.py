"""cadip sessions: what a CADIP pull has seen of each downlink session, and its files once taken

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 15:40:00

Two new tables: cadip_session (one row per mission, source and session entity: pending
with the reason, or taken) and cadip_file (the files of a taken session, each with the
product holding its bytes). Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import proseo.catalog.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_UTC = proseo.catalog.db.UTCDateTime()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "cadip_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mission_id", sa.Integer(), sa.ForeignKey("mission.id"), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(64), nullable=False),
        sa.Column("session_id", sa.String(128), nullable=False),
        sa.Column("satellite", sa.String(16), nullable=True),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("published", _UTC, nullable=False),
        sa.Column("downlink_start", _UTC, nullable=True),
        sa.Column("downlink_stop", _UTC, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("examined", sa.Integer(), nullable=False),
        sa.Column("products", sa.Integer(), nullable=False),
        sa.Column("first_seen", _UTC, nullable=False),
        sa.Column("taken_at", _UTC, nullable=True),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.UniqueConstraint("mission_id", "source", "entity_id"),
    )
    op.create_index("ix_cadip_session_session_id", "cadip_session", ["session_id"])
    op.create_index("ix_cadip_session_state", "cadip_session", ["state"])
    op.create_table(
        "cadip_file",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "session_id", sa.Integer(), sa.ForeignKey("cadip_session.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("file_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("published", _UTC, nullable=True),
        sa.Column("product_id", _ID, sa.ForeignKey("product.id", ondelete="SET NULL"), nullable=True),
        sa.UniqueConstraint("session_id", "file_id"),
    )
    op.create_index("ix_cadip_file_session_id", "cadip_file", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_cadip_file_session_id", "cadip_file")
    op.drop_table("cadip_file")
    op.drop_index("ix_cadip_session_state", "cadip_session")
    op.drop_index("ix_cadip_session_session_id", "cadip_session")
    op.drop_table("cadip_session")
