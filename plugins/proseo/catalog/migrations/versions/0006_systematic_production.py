"""systematic production: order generation keys, timeliness, trigger state, raw availability

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 17:30:00

Orders made by triggers carry the trigger's name and a unique generation key (one
order per mission, requested classes, slice and mode), a timeliness category and a
deadline; each trigger's progress is a ``trigger_state`` row; every product records
when the raw data behind it was available. Existing products get it in place: an
ingested product its own catalogue time, a produced one the latest over its inputs.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from alembic import op

import proseo.catalog.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_UTC = proseo.catalog.db.UTCDateTime()
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_product = sa.table(
    "product",
    sa.column("id", _ID),
    sa.column("job_step_id", _ID),
    sa.column("created_at", _UTC),
    sa.column("raw_available_at", _UTC),
)
_input = sa.table("product_input", sa.column("product_id", _ID), sa.column("input_product_id", _ID))


def upgrade() -> None:
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("generation_key", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("timeliness", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("deadline", _UTC, nullable=True))
        batch_op.add_column(sa.Column("deadline_missed_at", _UTC, nullable=True))
        batch_op.create_unique_constraint("uq_processing_order_generation_key", ["generation_key"])
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.add_column(sa.Column("raw_available_at", _UTC, nullable=True))
    op.create_table(
        "trigger_state",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mission_id", sa.Integer(), sa.ForeignKey("mission.id"), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("cursor", _UTC, nullable=True),
        sa.Column("last_fired_at", _UTC, nullable=True),
        sa.Column("fired", sa.Integer(), nullable=False),
        sa.Column("orders_created", sa.Integer(), nullable=False),
        sa.UniqueConstraint("mission_id", "trigger"),
    )
    _raw_availability(op.get_bind())


def _raw_availability(bind: sa.Connection) -> None:
    """Ingested products: their catalogue time; produced ones: the latest over their inputs."""
    bind.execute(
        sa.update(_product)
        .where(_product.c.job_step_id.is_(None))
        .values(raw_available_at=_product.c.created_at)
    )
    inputs: dict[int, list[int]] = defaultdict(list)
    for pid, iid in bind.execute(sa.select(_input.c.product_id, _input.c.input_product_id)):
        inputs[pid].append(iid)
    known: dict[int, datetime | None] = dict(
        bind.execute(sa.select(_product.c.id, _product.c.raw_available_at)).all()
    )
    produced = [pid for pid, at in sorted(known.items()) if at is None and pid in inputs]
    for _ in range(64):  # lineage depth; each pass settles one more level
        changed = []
        for pid in produced:
            values = [known.get(i) for i in inputs[pid]]
            if values and all(v is not None for v in values):
                known[pid] = max(v for v in values if v is not None)
                changed.append(pid)
        if not changed:
            break
        for pid in changed:
            bind.execute(sa.update(_product).where(_product.c.id == pid).values(raw_available_at=known[pid]))
        produced = [p for p in produced if p not in set(changed)]


def downgrade() -> None:
    op.drop_table("trigger_state")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_column("raw_available_at")
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.drop_constraint("uq_processing_order_generation_key", type_="unique")
        for column in ("deadline_missed_at", "deadline", "timeliness", "generation_key", "trigger"):
            batch_op.drop_column(column)
