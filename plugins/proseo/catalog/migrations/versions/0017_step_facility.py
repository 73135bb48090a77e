"""step facility: each job step's chosen facility, the reason and the candidates' figures

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 16:20:00

An order may name several facilities; at release the facility choice
(planning/facility_choice.py) picks one per job step. ``processing_order.facilities``
keeps the candidates (NULL: the order named one or none); ``job_step.facility_id``,
``facility_reason`` and ``facility_scores`` record the choice (NULL: the order's
facility). Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("processing_order") as batch:
        batch.add_column(sa.Column("facilities", _json(), nullable=True))
    with op.batch_alter_table("job_step") as batch:
        batch.add_column(sa.Column("facility_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("facility_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("facility_scores", _json(), nullable=True))
        batch.create_foreign_key("fk_job_step_facility_id_facility", "facility", ["facility_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("job_step") as batch:
        batch.drop_constraint("fk_job_step_facility_id_facility", type_="foreignkey")
        batch.drop_column("facility_scores")
        batch.drop_column("facility_reason")
        batch.drop_column("facility_id")
    with op.batch_alter_table("processing_order") as batch:
        batch.drop_column("facilities")
