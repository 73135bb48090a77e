"""fast hash: XXH3-128 of every product file

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 08:30:00

Stage-in verifies every byte of every input; with SHA-256 that cost more than the
copy itself, so files now also record XXH3-128 (``product_file.xxh128``, 32 hex
characters), computed in the same pass as MD5 and SHA-256 at ingestion and at
registration of processor outputs. Existing catalogues upgrade in place: the column is
nullable and the files already catalogued keep NULL (filling it would mean reading
every stored byte again), so their stage-in verifies SHA-256 as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("product_file", schema=None) as batch_op:
        batch_op.add_column(sa.Column("xxh128", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_file", schema=None) as batch_op:
        batch_op.drop_column("xxh128")
