"""Foreign keys of bulk plan rows checked per set on PostgreSQL (planning/bulk_keys.py).

With the per-row key triggers off for a plan's COPYs, the writer itself must refuse a
reference to nothing (naming table, column and value, leaving nothing written), lock
what it refers to as the triggers would, put the triggers back on for the rest of the
transaction, and fall back to the triggers for a role that may not turn them off.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from proseo.catalog.db import Catalog, make_engine
from proseo.catalog.model_order import InputQuery, InputQueryProduct, Job, JobStep
from proseo.errors import CatalogError
from proseo.planning.bulk import RowWriter, allocate_ids
from proseo.planning.bulk_keys import KeyCheck, single_column_keys
from tests_plan_rows import job_row, query_row, s5p_order, step_row

PLAN_TABLES = [Job, JobStep, InputQuery, InputQueryProduct]


#: PostgreSQL only: SQLite checks each row's keys itself (nothing is relaxed there).
ON_POSTGRESQL = pytest.mark.parametrize(
    "catalog_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)


@pytest.fixture
def pg(catalog: Catalog) -> Catalog:
    return catalog


@pytest.fixture
def order_id(catalog: Catalog) -> int:
    return s5p_order(catalog, "keys")


def _role(s) -> str:  # type: ignore[no-untyped-def]
    return str(s.execute(text("SHOW session_replication_role")).scalar_one())


def test_every_plan_table_has_keys_that_can_be_checked_per_set() -> None:
    from proseo.catalog.model_order import InputQueryOutput, JobStepEdge, JobStepOutput

    for model in [*PLAN_TABLES, JobStepEdge, JobStepOutput, InputQueryOutput]:
        keys = single_column_keys(model.__table__)
        assert keys, model.__tablename__
    assert single_column_keys(JobStep.__table__) == {
        "job_id": ("job", "id"),
        "product_class_id": ("product_class", "id"),
        "configured_processor_id": ("configured_processor", "id"),
        "facility_id": ("facility", "id"),  # set at release by the facility choice, NULL in a plan
    }


@ON_POSTGRESQL
def test_rows_written_per_set_are_kept_and_the_triggers_come_back(pg: Catalog, order_id: int) -> None:
    with pg.session() as s:
        job_id, step_id = allocate_ids(s, Job, 1)[0], allocate_ids(s, JobStep, 1)[0]
        with RowWriter(s) as writer:
            assert writer._keys is not None, "the test role is a superuser: keys are checked per set"
            assert _role(s) == "replica"
            writer.write(Job, [job_row(job_id, order_id)])
            writer.write(JobStep, [step_row(s, step_id, job_id)])
        assert _role(s) == "origin"
        # The triggers check every row again in the same transaction.
        with pytest.raises(Exception, match="foreign key"), s.begin_nested():
            s.execute(
                text("INSERT INTO job_step_edge (upstream_id, downstream_id) VALUES (:a, -1)"), {"a": step_id}
            )
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(JobStep).where(JobStep.id == step_id)) == 1


@ON_POSTGRESQL
def test_a_reference_to_nothing_is_refused_by_name_and_nothing_is_written(pg: Catalog, order_id: int) -> None:
    with pytest.raises(CatalogError) as caught, pg.session() as s:
        step_id = allocate_ids(s, JobStep, 1)[0]
        with RowWriter(s) as writer:
            writer.write(JobStep, [step_row(s, step_id, 10**9)])  # a job nobody wrote
    assert "job_step.job_id refers to job.id = 1000000000, which does not exist" in str(caught.value)
    with (
        pytest.raises(
            CatalogError, match=r"input_query_product\.product_id refers to product\.id = 1000000000"
        ),
        pg.session() as s,
    ):
        query_id = allocate_ids(s, InputQuery, 1)[0]
        job_id, step_id = allocate_ids(s, Job, 1)[0], allocate_ids(s, JobStep, 1)[0]
        with RowWriter(s) as writer:
            writer.write(Job, [job_row(job_id, order_id)])
            writer.write(JobStep, [step_row(s, step_id, job_id)])
            writer.write(InputQuery, [query_row(s, query_id, step_id)])
            writer.write(InputQueryProduct, [{"query_id": query_id, "product_id": 10**9, "policy": "x"}])
    with pg.session() as s:
        for model in PLAN_TABLES:
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__tablename__


@ON_POSTGRESQL
def test_referenced_rows_are_locked_until_the_plan_commits(
    pg: Catalog, catalog_url: str, order_id: int
) -> None:
    other = make_engine(catalog_url)
    try:
        with pg.session() as s:
            job_id, step_id = allocate_ids(s, Job, 1)[0], allocate_ids(s, JobStep, 1)[0]
            row = step_row(s, step_id, job_id)
            with RowWriter(s) as writer:
                writer.write(Job, [job_row(job_id, order_id)])
                writer.write(JobStep, [row])
            # Another transaction may not delete the class the new step refers to meanwhile.
            with other.connect() as conn, pytest.raises(OperationalError, match="lock timeout"):
                conn.execute(text("SET lock_timeout = '300ms'"))
                conn.execute(text("DELETE FROM product_class WHERE id = :c"), {"c": row["product_class_id"]})
    finally:
        other.dispose()


@pytest.fixture
def plain_role(catalog_url: str) -> Iterator[str]:
    """A login role that is not a superuser, allowed to use the test database."""
    name = f"proseo_plain_{uuid.uuid4().hex[:6]}"
    admin = make_engine(catalog_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{name}" LOGIN'))
    try:
        yield catalog_url.replace("postgres@", f"{name}@", 1)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


@ON_POSTGRESQL
def test_a_role_that_may_not_relax_keeps_the_triggers(pg: Catalog, plain_role: str) -> None:
    assert "postgres@" not in plain_role
    engine = make_engine(plain_role)
    try:
        with engine.connect() as conn, conn.begin():
            assert KeyCheck.relax(conn) is None
            # The refused SET left the transaction usable and the triggers on.
            assert conn.execute(text("SHOW session_replication_role")).scalar_one() == "origin"
    finally:
        engine.dispose()


@ON_POSTGRESQL
def test_the_plan_tables_have_no_trigger_the_replica_role_would_silence(pg: Catalog) -> None:
    """session_replication_role = replica skips ordinary triggers as well as the key checks."""
    from proseo.catalog.model_order import InputQueryOutput, JobStepEdge, JobStepOutput

    tables = [m.__tablename__ for m in (*PLAN_TABLES, JobStepEdge, JobStepOutput, InputQueryOutput)]
    with pg.session() as s:
        found = s.execute(
            text(
                "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
                "WHERE NOT tgisinternal AND tgrelid::regclass::text = ANY(:t)"
            ),
            {"t": tables},
        ).all()
    assert found == [], f"triggers on plan tables would not fire during bulk writes: {found}"
