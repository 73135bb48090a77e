"""facility slurm settings: partition, account, shared directory of a Slurm facility

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 15:40:00

A nullable JSON column beside ``kubernetes``: the validated ``slurm`` section of a
facility with backend ``slurm``, NULL for the others. Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("facility") as batch:
        batch.add_column(
            sa.Column(
                "slurm",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("facility") as batch:
        batch.drop_column("slurm")
