"""footprints: product.footprint with a spatial index on each backend

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 17:00:00

PostgreSQL: PostGIS (created here when missing; the server needs the package, e.g.
Debian's postgresql-15-postgis-3, and the migrating role the right to create it), a
``geometry(Geometry, 4326)`` column and its GiST index. SQLite: the GeoJSON as text, an
R*Tree of bounding boxes and the triggers that keep it in step
(proseo/catalog/footprint_column.py). Existing products have no footprint.

Downgrade drops the column, index, R*Tree and triggers, but leaves the PostGIS extension:
other objects in the database may use it, and dropping it is the administrator's call.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from proseo.catalog.footprint_column import SQLITE_DDL, SQLITE_DROP, FootprintType

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(sa.Column("footprint", FootprintType(), nullable=True))
    if bind.dialect.name == "postgresql":
        op.create_index("ix_product_footprint", "product", ["footprint"], postgresql_using="gist")
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE_DDL:
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.drop_index("ix_product_footprint", table_name="product")
    elif bind.dialect.name == "sqlite":
        for statement in SQLITE_DROP:
            op.execute(statement)
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_column("footprint")
