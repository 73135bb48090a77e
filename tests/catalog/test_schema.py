"""Migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from proseo.catalog.db import Base, Catalog, make_engine
from proseo.catalog.schema import compare_filters, current_revision, head_revision, require_current, upgrade
from proseo.errors import SchemaError


def test_migrated_schema_matches_the_models(catalog: Catalog) -> None:
    assert current_revision(catalog.engine) == head_revision()
    with catalog.engine.connect() as conn:
        opts = {"compare_type": True, **compare_filters(conn.dialect.name)}
        diff = compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata)
    assert diff == []


def test_overlap_index_exists(catalog: Catalog) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(catalog.engine).get_indexes("product")}
    assert indexes["ix_product_class_start"] == ["product_class_id", "sensing_start", "sensing_stop"]


def test_upgrade_is_repeatable(catalog: Catalog) -> None:
    before, after = upgrade(catalog.engine)
    assert before == after == head_revision()


def test_an_empty_database_is_refused_with_a_hint(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(SchemaError, match="run 'proseo db upgrade'"):
        require_current(engine)
    upgrade(engine)
    require_current(engine)
    engine.dispose()


def test_migrations_after_0010_go_down_and_up_again(catalog: Catalog) -> None:
    """0011 subscriptions, 0012 ODIP orders, 0013 CADIP sessions, 0014 the publication index,
    0015 Slurm facilities, 0016 the ODIP dispatcher's claim, 0017 step facilities, 0018 the
    step's run reference: each
    downgrade removes what its upgrade added, and the upgrade again gives exactly the
    models' schema."""
    from proseo.catalog.schema import downgrade

    assert downgrade(catalog.engine, "0010") == (head_revision(), "0010")
    gone = inspect(catalog.engine)
    for table in ("subscription", "subscription_notification", "odip_order", "cadip_session", "cadip_file"):
        assert not gone.has_table(table), table
    assert "ix_product_created" not in {i["name"] for i in gone.get_indexes("product")}
    assert "slurm" not in {c["name"] for c in gone.get_columns("facility")}
    step_columns = {c["name"] for c in gone.get_columns("job_step")}
    assert not step_columns & {"facility_id", "facility_reason", "facility_scores", "run_ref"}
    assert "facilities" not in {c["name"] for c in gone.get_columns("processing_order")}
    upgrade(catalog.engine)
    with catalog.engine.connect() as conn:
        opts = {"compare_type": True, **compare_filters(conn.dialect.name)}
        assert compare_metadata(MigrationContext.configure(conn, opts=opts), Base.metadata) == []
