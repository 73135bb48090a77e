"""order DAG blueprint

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dag_blueprint", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.drop_column("dag_blueprint")
