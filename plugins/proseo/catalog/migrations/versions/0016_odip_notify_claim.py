"""odip notify claim: the token of the dispatcher that holds an ODIP order's notification

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 16:30:00

A nullable text column beside ``notify_claimed_until``: every write of a delivery's outcome
checks it, so a dispatcher whose claim expired records nothing over a newer one's.
Nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("odip_order") as batch:
        batch.add_column(sa.Column("notify_claim", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("odip_order") as batch:
        batch.drop_column("notify_claim")
