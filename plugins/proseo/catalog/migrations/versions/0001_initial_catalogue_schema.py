"""initial catalogue schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:47:36.742856
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import proseo.catalog.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "mission",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    op.create_table(
        "configured_processor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=128), nullable=False),
        sa.Column("processor_class", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("configuration", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["mission_id"], ["mission.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mission_id", "identifier"),
    )
    op.create_table(
        "facility",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("storage_url", sa.String(length=1000), nullable=False),
        sa.Column(
            "storage_options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("scratch_path", sa.String(length=1000), nullable=False),
        sa.Column("max_concurrent_job_steps", sa.Integer(), nullable=False),
        sa.Column(
            "kubernetes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["mission_id"], ["mission.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mission_id", "name"),
    )
    op.create_table(
        "mission_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source_file", sa.String(length=1000), nullable=False),
        sa.Column("source_text", sa.Text(), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("loaded_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["mission_id"], ["mission.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mission_id", "number"),
    )
    op.create_table(
        "product_class",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("product_type", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("processor_class", sa.String(length=64), nullable=True),
        sa.Column("enclosing_type", sa.String(length=64), nullable=True),
        sa.Column("slicing_type", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["mission_id"], ["mission.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mission_id", "product_type"),
    )
    op.create_table(
        "spacecraft",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["mission_id"], ["mission.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mission_id", "code"),
    )
    op.create_table(
        "orbit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("spacecraft_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("start_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("stop_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["spacecraft_id"], ["spacecraft.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("spacecraft_id", "number"),
    )
    with op.batch_alter_table("orbit", schema=None) as batch_op:
        batch_op.create_index("ix_orbit_time", ["spacecraft_id", "start_time"], unique=False)

    op.create_table(
        "processing_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=True),
        sa.Column(
            "requested_classes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "input_only_classes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "configured_processors",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("output_file_class", sa.String(length=32), nullable=False),
        sa.Column("processing_mode", sa.String(length=32), nullable=False),
        sa.Column("production_type", sa.String(length=32), nullable=False),
        sa.Column("start_time", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.Column("stop_time", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.Column("orbit_from", sa.Integer(), nullable=True),
        sa.Column("orbit_to", sa.Integer(), nullable=True),
        sa.Column("slicing_type", sa.String(length=16), nullable=False),
        sa.Column("slice_duration_s", sa.Float(), nullable=True),
        sa.Column("slice_overlap_s", sa.Float(), nullable=False),
        sa.Column(
            "input_filters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "dynamic_parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "output_parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("execution_time", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.Column("input_timeout_s", sa.Float(), nullable=True),
        sa.Column("on_input_timeout", sa.String(length=16), nullable=False),
        sa.Column("notification_endpoint", sa.String(length=1000), nullable=True),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("created_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facility.id"],
        ),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["mission.id"],
        ),
        sa.ForeignKeyConstraint(
            ["revision_id"],
            ["mission_revision.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mission_id", "identifier"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.create_index("ix_order_state", ["mission_id", "state"], unique=False)

    op.create_table(
        "job",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("start_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("stop_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("orbit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["orbit_id"],
            ["orbit.id"],
        ),
        sa.ForeignKeyConstraint(["order_id"], ["processing_order.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_order", ["order_id"], unique=False)

    op.create_table(
        "job_step",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("product_class_id", sa.Integer(), nullable=False),
        sa.Column("configured_processor_id", sa.Integer(), nullable=False),
        sa.Column("processing_mode", sa.String(length=32), nullable=False),
        sa.Column("start_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("stop_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column(
            "planned_outputs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("job_order_filename", sa.String(length=500), nullable=True),
        sa.Column("task_id", sa.String(length=250), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("log_url", sa.String(length=1500), nullable=True),
        sa.Column("started_at", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.Column("completed_at", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["configured_processor_id"],
            ["configured_processor.id"],
        ),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["product_class_id"],
            ["product_class.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("job_step", schema=None) as batch_op:
        batch_op.create_index("ix_job_step_job", ["job_id"], unique=False)
        batch_op.create_index("ix_job_step_state", ["state"], unique=False)

    op.create_table(
        "input_query",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_class_id", sa.Integer(), nullable=False),
        sa.Column("rule_text", sa.Text(), nullable=False),
        sa.Column("mandatory", sa.Boolean(), nullable=False),
        sa.Column("min_cover", sa.Float(), nullable=True),
        sa.Column(
            "filters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("satisfied", sa.Boolean(), nullable=False),
        sa.Column(
            "explanation",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["job_step_id"], ["job_step.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["source_class_id"],
            ["product_class.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.create_index("ix_input_query_step", ["job_step_id"], unique=False)

    op.create_table(
        "job_step_edge",
        sa.Column("upstream_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("downstream_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["downstream_id"], ["job_step.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["upstream_id"], ["job_step.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("upstream_id", "downstream_id"),
    )
    with op.batch_alter_table("job_step_edge", schema=None) as batch_op:
        batch_op.create_index("ix_job_step_edge_down", ["downstream_id"], unique=False)

    op.create_table(
        "product",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("identity", sa.String(length=64), nullable=False),
        sa.Column("mission_id", sa.Integer(), nullable=False),
        sa.Column("product_class_id", sa.Integer(), nullable=False),
        sa.Column("file_class", sa.String(length=32), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=True),
        sa.Column("sensing_start", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("sensing_stop", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("generation_time", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.Column("production_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "parameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("orbit_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "enclosing_product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("configured_processor_id", sa.Integer(), nullable=True),
        sa.Column("job_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("eviction_time", proseo.catalog.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["configured_processor_id"],
            ["configured_processor.id"],
        ),
        sa.ForeignKeyConstraint(["enclosing_product_id"], ["product.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_step_id"], ["job_step.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["mission_id"],
            ["mission.id"],
        ),
        sa.ForeignKeyConstraint(
            ["orbit_id"],
            ["orbit.id"],
        ),
        sa.ForeignKeyConstraint(
            ["product_class_id"],
            ["product_class.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("identity"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.create_index(
            "ix_product_class_generation", ["product_class_id", "generation_time"], unique=False
        )
        batch_op.create_index(
            "ix_product_class_start", ["product_class_id", "sensing_start", "sensing_stop"], unique=False
        )
        batch_op.create_index("ix_product_class_stop", ["product_class_id", "sensing_stop"], unique=False)
        batch_op.create_index("ix_product_enclosing", ["enclosing_product_id"], unique=False)
        batch_op.create_index("ix_product_job_step", ["job_step_id"], unique=False)

    op.create_table(
        "input_query_product",
        sa.Column("query_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("policy", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["query_id"], ["input_query.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("query_id", "product_id"),
    )
    with op.batch_alter_table("input_query_product", schema=None) as batch_op:
        batch_op.create_index("ix_iqp_product", ["product_id"], unique=False)

    op.create_table(
        "product_file",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("facility_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=500), nullable=False),
        sa.Column("storage_url", sa.String(length=1500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["facility_id"],
            ["facility.id"],
        ),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("product_id", "facility_id", "file_name"),
        sa.UniqueConstraint("storage_url"),
    )
    op.create_table(
        "product_input",
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("input_product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(["input_product_id"], ["product.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("product_id", "input_product_id"),
    )
    with op.batch_alter_table("product_input", schema=None) as batch_op:
        batch_op.create_index("ix_product_input_input", ["input_product_id"], unique=False)

    op.create_table(
        "provenance",
        sa.Column("product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_step_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("configured_processor_id", sa.Integer(), nullable=True),
        sa.Column(
            "configuration",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("job_order", sa.Text(), nullable=True),
        sa.Column("dag_id", sa.String(length=250), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("task_id", sa.String(length=250), nullable=True),
        sa.Column("try_number", sa.Integer(), nullable=True),
        sa.Column("map_index", sa.Integer(), nullable=True),
        sa.Column("created_at", proseo.catalog.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["configured_processor_id"],
            ["configured_processor.id"],
        ),
        sa.ForeignKeyConstraint(["job_step_id"], ["job_step.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["product_id"], ["product.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("product_id"),
    )


def downgrade() -> None:

    op.drop_table("provenance")
    with op.batch_alter_table("product_input", schema=None) as batch_op:
        batch_op.drop_index("ix_product_input_input")

    op.drop_table("product_input")
    op.drop_table("product_file")
    with op.batch_alter_table("input_query_product", schema=None) as batch_op:
        batch_op.drop_index("ix_iqp_product")

    op.drop_table("input_query_product")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index("ix_product_job_step")
        batch_op.drop_index("ix_product_enclosing")
        batch_op.drop_index("ix_product_class_stop")
        batch_op.drop_index("ix_product_class_start")
        batch_op.drop_index("ix_product_class_generation")

    op.drop_table("product")
    with op.batch_alter_table("job_step_edge", schema=None) as batch_op:
        batch_op.drop_index("ix_job_step_edge_down")

    op.drop_table("job_step_edge")
    with op.batch_alter_table("input_query", schema=None) as batch_op:
        batch_op.drop_index("ix_input_query_step")

    op.drop_table("input_query")
    with op.batch_alter_table("job_step", schema=None) as batch_op:
        batch_op.drop_index("ix_job_step_state")
        batch_op.drop_index("ix_job_step_job")

    op.drop_table("job_step")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_order")

    op.drop_table("job")
    with op.batch_alter_table("processing_order", schema=None) as batch_op:
        batch_op.drop_index("ix_order_state")

    op.drop_table("processing_order")
    with op.batch_alter_table("orbit", schema=None) as batch_op:
        batch_op.drop_index("ix_orbit_time")

    op.drop_table("orbit")
    op.drop_table("spacecraft")
    op.drop_table("product_class")
    op.drop_table("mission_revision")
    op.drop_table("facility")
    op.drop_table("configured_processor")
    op.drop_table("mission")
