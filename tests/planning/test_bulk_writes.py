"""Plan rows written in bulk (ids allocated up front, COPY / executemany), on SQLite and PostgreSQL.

The bulk path must store exactly what an ORM insert stores, never hand out an id twice,
and leave nothing behind when a later table fails.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import InputQuery, InputQueryOutput, Job, JobStep
from proseo.planning.bulk import RowWriter, allocate_ids, write_rows
from tests_plan_rows import T0, T1, job_row, s5p_order, step_row


@pytest.fixture
def order_id(catalog: Catalog) -> int:
    return s5p_order(catalog, "bulk")


def test_bulk_rows_read_back_as_orm_rows_do(catalog: Catalog, order_id: int) -> None:
    with catalog.session() as s:
        job_id, step_id = allocate_ids(s, Job, 1)[0], allocate_ids(s, JobStep, 1)[0]
        write_rows(
            s,
            Job,
            [job_row(job_id, order_id)],
        )
        write_rows(s, JobStep, [step_row(s, step_id, job_id)])
        class_id = s.scalars(select(ProductClass.id)).first()
        common = {
            "job_step_id": step_id,
            "source_class_id": class_id,
            "rule_text": "FOR AUX_MET_TP SELECT ValIntersect(3 H, 3 H) MINCOVER(100)",
            "mandatory": True,
            "min_cover": 100.0,
            "satisfied": False,
            "explanation": "not satisfied: AUX_MET_TP: 0 candidates; naïve ünïcode, 'quotes'\tand\\tabs",
            "origin": "L2__NO2___.selection_rules[3]",
            "coverage": 12.5,
        }
        bulk_id, empty_id = allocate_ids(s, InputQuery, 2)
        write_rows(s, InputQuery, [{**common, "id": bulk_id, "filters": {"a": "1", "b": "x\ny"}}])
        write_rows(s, InputQuery, [{**common, "id": empty_id, "filters": {}}])
        s.add(InputQuery(**{**common, "filters": {"a": "1", "b": "x\ny"}}))
    with catalog.session() as s:
        rows = s.scalars(select(InputQuery).order_by(InputQuery.id)).all()
        assert [r.id for r in rows[:2]] == [bulk_id, empty_id]
        bulk, empty, orm = rows
        for name in common:
            assert getattr(bulk, name) == getattr(orm, name), name
        assert bulk.filters == orm.filters == {"a": "1", "b": "x\ny"}
        assert empty.filters == {}
        step = s.get(JobStep, step_id)
        assert step is not None and step.start_time == T0 and step.start_time.tzinfo is not None
        assert step.requested is True
        # The database's own comparison sees the same instants (ordering and range queries).
        assert s.scalar(select(func.count()).where(JobStep.start_time == T0)) == 1


def test_ids_are_never_handed_out_twice(catalog: Catalog, order_id: int) -> None:
    with catalog.session() as s:
        first = allocate_ids(s, Job, 3)
        write_rows(
            s,
            Job,
            [job_row(i, order_id) for i in first],
        )
    with catalog.session() as s:
        second = allocate_ids(s, Job, 2)
        assert len(set(second)) == 2 and min(second) > max(first)
        # An ORM insert afterwards does not collide with ids handed out in bulk either.
        write_rows(
            s,
            Job,
            [job_row(i, order_id) for i in second],
        )
        s.add(Job(order_id=order_id, start_time=T0, stop_time=T1, state="PLANNED", priority=50))
    with catalog.session() as s:
        assert s.scalar(select(func.count(func.distinct(Job.id)))) == 6


@pytest.mark.postgres
def test_concurrent_allocations_are_disjoint(catalog: Catalog, catalog_url: str) -> None:
    if not catalog_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time; the planning transaction holds its lock")
    with catalog.session() as a, catalog.session() as b:
        ids_a = allocate_ids(a, JobStep, 500)
        ids_b = allocate_ids(b, JobStep, 500)
        assert not set(ids_a) & set(ids_b)


def test_a_failing_table_leaves_nothing_written(catalog: Catalog, order_id: int) -> None:
    with pytest.raises(Exception) as caught, catalog.session() as s:
        job_id, step_id = allocate_ids(s, Job, 1)[0], allocate_ids(s, JobStep, 1)[0]
        query_id = allocate_ids(s, InputQuery, 1)[0]
        with RowWriter(s) as writer:
            writer.write(
                Job,
                [job_row(job_id, order_id)],
            )
            writer.write(JobStep, [step_row(s, step_id, job_id)])
            # A binding to an output that does not exist: the foreign key refuses it.
            writer.write(InputQueryOutput, [{"query_id": query_id, "output_id": 10**9, "policy": "x"}])
    assert "foreign key" in str(caught.value).lower() or "FOREIGN KEY" in str(caught.value)
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
        assert s.scalar(select(func.count()).select_from(InputQueryOutput)) == 0
