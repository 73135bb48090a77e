"""Inputs that arrive after planning: the cheap poll and the refresh, on SQLite and PostgreSQL.

An S5P order is planned with nothing in the catalogue (every step waits); then the
deliveries are ingested for real, the poll flags the steps, the refresh selects the
products and records them as planning would, and the job specification can be
built. Upstream outputs are registered as registration writes them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from proseo.catalog.db import Catalog, utcnow
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import InputQuery, InputQueryProduct, Job, JobStep, ProcessingOrder, StepState
from proseo.devtools.generate import write_inputs
from proseo.execution.errors import InputsNotReady
from proseo.execution.jobspec import build_job_spec
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.readiness import (
    PollStatus,
    give_up_waiting,
    poll_readiness,
    refresh_inputs,
    refresh_many,
)
from proseo.planning.spec import OrderSpec
from proseo.planning.stepinputs import read_step_inputs

from tests_paths import MISSION_DIR
from tests_registration import register_planned

COLLECTION = {"*": {"collection": 3}}
FIRST_ORBIT = 37100


@pytest.fixture
def s5p(catalog: Catalog, data_dirs: dict[str, Path]) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


def _orbit_window(catalog: Catalog, first: int, last: int):
    with catalog.session() as s:
        orbits = {o.number: o for o in loaded_from_catalog(s, "S5P").orbits["S5P"]}
    return orbits[first].start, orbits[last].stop


def _ingest(catalog: Catalog, start, stop, tmp: Path, classes=None) -> None:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "S5P")
    files = write_inputs(mission, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", classes=classes, size=128)
    assert files
    report = Ingestor(catalog, mission).run(files)
    assert report.ok


def _plan(catalog: Catalog, first: int, last: int, identifier: str = "o1") -> dict[str, list[int]]:
    spec = OrderSpec(
        identifier=identifier,
        requested_classes=["L2__O3____"],
        orbit_from=first,
        orbit_to=last,
        output_parameters=COLLECTION,
    )
    with catalog.session() as s:
        orders.create_order(s, "S5P", spec)
    lifecycle.approve_order(catalog, "S5P", identifier)
    lifecycle.plan_order(catalog, "S5P", identifier)
    with catalog.session() as s:
        rows = s.execute(
            select(ProductClass.product_type, JobStep.id)
            .join(JobStep, JobStep.product_class_id == ProductClass.id)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .where(ProcessingOrder.identifier == identifier)
            .order_by(JobStep.start_time, JobStep.id)
        ).all()
    out: dict[str, list[int]] = {}
    for ptype, sid in rows:
        out.setdefault(ptype, []).append(sid)
    return out


def _register(catalog: Catalog, job_step_id: int) -> None:
    """The step's planned outputs on storage and registered (the step COMPLETED)."""
    register_planned(catalog, job_step_id)


def _status(catalog: Catalog, ids, since):
    with catalog.session() as s:
        return {sid: p.status for sid, p in poll_readiness(s, ids, since).items()}


def test_inputs_arriving_after_planning_make_steps_ready(s5p: Catalog, tmp_path: Path) -> None:
    steps = _plan(s5p, FIRST_ORBIT, FIRST_ORBIT + 1)
    l1b, l2 = steps["L1B_______"], steps["L2__O3____"]
    assert len(l1b) == 2 and len(l2) == 2
    everything = l1b + l2

    # Nothing delivered: every step waits, and says for what.
    with s5p.session() as s:
        first = refresh_inputs(s, l1b[0])
        consumer = refresh_inputs(s, l2[0])
    assert not first.ready and first.upstream_pending == () and first.state == "WAITING_INPUT"
    assert any(w.startswith("L0__ODB_1_: FOR L0__ODB_1_ SELECT ValIntersect") for w in first.waiting)
    assert any(w.startswith("AUX_L1_CKD: ") for w in first.waiting)
    assert consumer.upstream_pending == (l1b[0],)
    assert [w.split(":")[0] for w in consumer.waiting] == ["AUX_MET_TP"]
    assert "upstream job step(s)" in consumer.summary() and "AUX_MET_TP" in consumer.summary()

    # A first poll (no watermark) sends every step with open queries to refresh; a poll
    # after planning with nothing new leaves them waiting.
    assert set(_status(s5p, everything, None).values()) == {PollStatus.CHANGED}
    planned = utcnow()
    assert set(_status(s5p, everything, planned).values()) == {PollStatus.WAITING}

    # The deliveries arrive.
    start, stop = _orbit_window(s5p, FIRST_ORBIT, FIRST_ORBIT + 1)
    _ingest(s5p, start - timedelta(hours=6), stop + timedelta(hours=6), tmp_path)
    assert _status(s5p, everything, planned) == {sid: PollStatus.CHANGED for sid in everything}
    assert set(_status(s5p, everything, utcnow() + timedelta(seconds=1)).values()) == {PollStatus.WAITING}

    with s5p.session() as s:
        ready = refresh_inputs(s, l1b[0])
        assert ready.ready and ready.state == "PLANNED" and ready.waiting == ()
        assert {n.split(":")[0] for n in ready.newly_satisfied} >= {
            "L0__ODB_1_",
            "L0__ODB_4_",
            "L0__ODB_6_",
            "AUX_L1_CKD",
            "L0__ENG_A_",  # optional and empty at planning: filled now
        }
        queries = s.scalars(select(InputQuery).where(InputQuery.job_step_id == l1b[0])).all()
        assert all(q.satisfied for q in queries)
        picks = s.execute(
            select(InputQueryProduct.query_id, InputQueryProduct.policy).where(
                InputQueryProduct.query_id.in_([q.id for q in queries])
            )
        ).all()
        assert {q for q, _ in picks} == {q.id for q in queries}
        assert {p for _, p in picks} >= {"ValIntersect", "LatestValCover"}
        odb1 = next(q for q in queries if q.rule_text.startswith("FOR L0__ODB_1_"))
        assert ("ValIntersect" in {p for q, p in picks if q == odb1.id}) and odb1.refreshed_at is not None
        assert "chose" in odb1.explanation and odb1.origin
        context = build_job_spec(s, l1b[0])
        assert {f.product_type for f in context.spec.inputs} >= {"L0__ODB_1_", "L0__ODB_4_", "AUX_L1_CKD"}

    # The consumer has its AUX now, but its L1B is a planned output of a step not run yet.
    with s5p.session() as s:
        both = refresh_many(s, l2)
        upstream_query = s.scalar(
            select(InputQuery).where(
                InputQuery.job_step_id == l2[0], InputQuery.rule_text.startswith("FOR L1B_RA_BD3")
            )
        )
        bound = next(i for i in read_step_inputs(s, [l2[0]])[l2[0]] if i.query_id == upstream_query.id)
        assert [o.job_step_id for o in bound.outputs] == [l1b[0]]  # not re-evaluated
        assert (
            s.scalar(
                select(func.count())
                .select_from(InputQueryProduct)
                .where(InputQueryProduct.query_id == upstream_query.id)
            )
            == 0
        )
    assert [both[i].upstream_pending for i in l2] == [(l1b[0],), (l1b[1],)]
    assert all(both[i].waiting == () and both[i].state == "PLANNED" and not both[i].ready for i in l2)
    with s5p.session() as s, pytest.raises(InputsNotReady):
        build_job_spec(s, l2[0])
    later = utcnow() + timedelta(seconds=1)
    assert _status(s5p, l2, later) == {l2[0]: PollStatus.WAITING, l2[1]: PollStatus.WAITING}

    # The upstream step registers its outputs: the consumer is ready, and runs.
    _register(s5p, l1b[0])
    assert _status(s5p, l2, later) == {l2[0]: PollStatus.READY, l2[1]: PollStatus.WAITING}
    with s5p.session() as s:
        done = refresh_inputs(s, l2[0])
        assert done.ready and done.upstream_pending == ()
        context = build_job_spec(s, l2[0])
        assert "L1B_RA_BD3" in {f.product_type for f in context.spec.inputs}


def test_poll_reads_fifty_steps_in_two_statements(s5p: Catalog, tmp_path: Path) -> None:
    steps = _plan(s5p, FIRST_ORBIT, FIRST_ORBIT + 24)
    ids = steps["L1B_______"] + steps["L2__O3____"]
    assert len(ids) == 50
    start, _ = _orbit_window(s5p, FIRST_ORBIT, FIRST_ORBIT)
    mark = utcnow()
    _ingest(s5p, start, start + timedelta(hours=3), tmp_path, classes={"L0__ODB_1_", "AUX_MET_TP"})
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(s5p.engine, "before_cursor_execute", count)
    try:
        with s5p.session() as s:
            result = poll_readiness(s, ids, mark)
        with_watermark = len(statements)
        with s5p.session() as s:
            poll_readiness(s, ids, None)
    finally:
        event.remove(s5p.engine, "before_cursor_execute", count)
    assert with_watermark <= 2, statements
    assert len(statements) - with_watermark <= 1  # no watermark: no product statement
    changed = {sid for sid, p in result.items() if p.status is PollStatus.CHANGED}
    # Only the steps whose windows the early deliveries touch.
    assert changed and len(changed) < 10
    assert set(steps["L1B_______"][:2]) & changed
    assert all(p.open_queries >= 1 for p in result.values())


def test_failed_upstream_and_missing_steps_block(s5p: Catalog) -> None:
    steps = _plan(s5p, FIRST_ORBIT, FIRST_ORBIT)
    (l1b,), (l2,) = steps["L1B_______"], steps["L2__O3____"]
    with s5p.session() as s:
        s.get(JobStep, l1b).state = StepState.FAILED.value
    with s5p.session() as s:
        polls = poll_readiness(s, [l1b, l2, 999_999], utcnow())
        readiness = refresh_inputs(s, l2)
    assert polls[l1b].status is PollStatus.BLOCKED and "FAILED" in polls[l1b].message
    assert polls[l2].status is PollStatus.BLOCKED and polls[l2].upstream_failed == 1
    assert polls[999_999].status is PollStatus.BLOCKED and "does not exist" in polls[999_999].message
    assert readiness.upstream_failed == (l1b,) and "failed" in readiness.summary()


def test_giving_up_runs_with_what_exists(s5p: Catalog, tmp_path: Path) -> None:
    steps = _plan(s5p, FIRST_ORBIT, FIRST_ORBIT)
    (l1b,) = steps["L1B_______"]
    start, stop = _orbit_window(s5p, FIRST_ORBIT, FIRST_ORBIT)
    # The calibration, later one detector band: the other two bands never come.
    _ingest(s5p, start - timedelta(days=1), stop, tmp_path, classes={"AUX_L1_CKD"})
    with s5p.session() as s:
        before = refresh_inputs(s, l1b)
    assert not before.ready and {w.split(":")[0] for w in before.waiting} == {
        "L0__ODB_1_",
        "L0__ODB_4_",
        "L0__ODB_6_",
    }
    _ingest(s5p, start, stop, tmp_path, classes={"L0__ODB_1_"})
    with s5p.session() as s:
        after = give_up_waiting(s, l1b, "input timeout after 600 s")
        assert after.ready and after.state == "PLANNED" and after.waiting == ()
        assert {g.split(":")[0] for g in after.given_up} == {"L0__ODB_4_", "L0__ODB_6_"}
        assert "L0__ODB_1_" in {n.split(":")[0] for n in after.newly_satisfied}
        queries = {
            q.rule_text.split()[1]: q
            for q in s.scalars(select(InputQuery).where(InputQuery.job_step_id == l1b))
        }
        assert queries["L0__ODB_1_"].given_up_at is None
        assert queries["L0__ODB_4_"].given_up_at is not None
        assert queries["L0__ODB_4_"].explanation.startswith(
            "given up waiting (input timeout after 600 s), nothing found"
        )
        context = build_job_spec(s, l1b)
    assert {f.product_type for f in context.spec.inputs} == {"L0__ODB_1_", "AUX_L1_CKD"}
