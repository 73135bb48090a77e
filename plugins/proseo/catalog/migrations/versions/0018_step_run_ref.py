"""step run reference: the backend's own name for the step's current try

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 20:05:00

``job_step.run_ref`` holds what an operator looks up on the backend for the running or
latest try, e.g. ``slurm:4711`` (``squeue -j``/``sacct -j``/``scancel``). NULL: the
backend runs the step in its own task process (local) or the try has not submitted
anything yet. Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_step") as batch:
        batch.add_column(sa.Column("run_ref", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_step") as batch:
        batch.drop_column("run_ref")
