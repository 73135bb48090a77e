"""publication index: products in the order the delivery points publish them

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 15:40:00

An index on product.created_at (the PRIP's PublicationDate): a pull client's
"published after my cursor, oldest first" and a map's "newest first in this area" walk
it instead of sorting every match. Nothing else changes.
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_product_created", "product", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_product_created", table_name="product")
