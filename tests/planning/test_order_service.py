"""Order operations on the catalogue: the life cycle, its side effects and its refusals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import Job, JobStep, OrderEvent, ProcessingOrder
from proseo.errors import ConflictError, IllegalTransition, OrderError, PlanningError
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR


@pytest.fixture
def s5p(catalog: Catalog) -> Catalog:
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    return catalog


def _create(catalog: Catalog, identifier: str = "o1", **fields) -> None:
    fields.setdefault("requested_classes", ["L2__CLOUD_"])
    fields.setdefault("output_parameters", {"*": {"collection": 1}})
    if "start" not in fields:
        fields.setdefault("orbit_from", 37010)
        fields.setdefault("orbit_to", 37011)
    with catalog.session() as s:
        orders.create_order(s, "S5P", OrderSpec(identifier=identifier, **fields))


def _state(catalog: Catalog, identifier: str = "o1") -> str:
    with catalog.session() as s:
        return orders.get_order(s, "S5P", identifier).state


def _steps(catalog: Catalog, identifier: str = "o1") -> dict[str, int]:
    with catalog.session() as s:
        return orders.step_counts(s, orders.get_order(s, "S5P", identifier))


def test_life_cycle_with_history(s5p: Catalog) -> None:
    _create(s5p)
    assert _state(s5p) == "INITIAL"
    assert lifecycle.approve_order(s5p, "S5P", "o1").state == "APPROVED"
    plan = lifecycle.plan_order(s5p, "S5P", "o1")
    assert _state(s5p) == "PLANNED" and len(plan.steps) == 4
    planned_states = _steps(s5p)
    assert planned_states == {"WAITING_INPUT": 4}  # no L0, no AUX ingested
    assert lifecycle.release_order(s5p, "S5P", "o1").state == "RELEASED"
    # Nothing runs yet, so a suspension completes at once.
    assert lifecycle.suspend_order(s5p, "S5P", "o1").state == "PLANNED"
    assert lifecycle.resume_order(s5p, "S5P", "o1").state == "RELEASED"
    assert lifecycle.cancel_order(s5p, "S5P", "o1", message="operator stop").state == "FAILED"
    assert _steps(s5p) == {"FAILED": 4}
    assert lifecycle.retry_order(s5p, "S5P", "o1").state == "RELEASED"
    assert _steps(s5p) == planned_states
    lifecycle.cancel_order(s5p, "S5P", "o1")
    assert lifecycle.close_order(s5p, "S5P", "o1").state == "CLOSED"
    with s5p.session() as s:
        order = orders.get_order(s, "S5P", "o1")
        trail = [(e.operation, e.from_state, e.to_state) for e in order.events]
        assert trail[:4] == [
            ("create", "", "INITIAL"),
            ("approve", "INITIAL", "APPROVED"),
            ("plan", "APPROVED", "PLANNING"),
            ("planned", "PLANNING", "PLANNED"),
        ]
        assert ("cancel", "RELEASED", "FAILED") in trail and trail[-1] == ("close", "FAILED", "CLOSED")
        assert any(e.message == "operator stop" for e in order.events)
        assert order.planned_at is not None and order.plan_summary["job_steps"] == 4


def test_suspend_waits_for_running_steps_unless_forced(s5p: Catalog) -> None:
    _create(s5p)
    lifecycle.approve_order(s5p, "S5P", "o1")
    lifecycle.plan_order(s5p, "S5P", "o1")
    lifecycle.release_order(s5p, "S5P", "o1")
    with s5p.session() as s:
        order_id = orders.get_order(s, "S5P", "o1").id
        first = s.scalar(select(JobStep.id).join(Job).where(Job.order_id == order_id).limit(1))
        s.execute(update(JobStep).where(JobStep.id == first).values(state="RUNNING"))
    assert lifecycle.suspend_order(s5p, "S5P", "o1").state == "SUSPENDING"
    with pytest.raises(IllegalTransition, match="cannot resume an order in state SUSPENDING"):
        lifecycle.resume_order(s5p, "S5P", "o1")
    assert lifecycle.cancel_order(s5p, "S5P", "o1").state == "FAILED"
    assert lifecycle.retry_order(s5p, "S5P", "o1").state == "RELEASED"
    with s5p.session() as s:
        s.execute(update(JobStep).where(JobStep.id == first).values(state="RUNNING"))
    assert lifecycle.suspend_order(s5p, "S5P", "o1", force=True).state == "PLANNED"


def test_reset_drops_the_plan_and_the_order_can_be_planned_again(s5p: Catalog) -> None:
    _create(s5p)
    lifecycle.approve_order(s5p, "S5P", "o1")
    lifecycle.plan_order(s5p, "S5P", "o1")
    assert lifecycle.reset_order(s5p, "S5P", "o1").state == "INITIAL"
    with s5p.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 0
        assert s.scalar(select(func.count()).select_from(JobStep)) == 0
    lifecycle.approve_order(s5p, "S5P", "o1")
    assert len(lifecycle.plan_order(s5p, "S5P", "o1").steps) == 4


def test_illegal_operations_name_the_state(s5p: Catalog) -> None:
    _create(s5p)
    with pytest.raises(IllegalTransition) as info:
        lifecycle.release_order(s5p, "S5P", "o1")
    assert "S5P/o1: cannot release an order in state INITIAL (allowed from PLANNED)" in str(info.value)
    assert info.value.exit_code == 4
    with pytest.raises(IllegalTransition, match="state INITIAL"):
        lifecycle.plan_order(s5p, "S5P", "o1")
    assert _state(s5p) == "INITIAL"


def test_duplicate_and_invalid_orders_write_nothing(s5p: Catalog) -> None:
    _create(s5p)
    with pytest.raises(ConflictError, match="S5P/o1: an order with this identifier exists"):
        _create(s5p)
    with pytest.raises(OrderError) as info:
        _create(s5p, "bad", requested_classes=["L2__NOPE__", "L0__ODB_1_"], processing_mode="FAST")
    message = str(info.value)
    assert "requested_classes: unknown product class 'L2__NOPE__'" in message
    assert "requested_classes: L0__ODB_1_ has no processor" in message
    assert "processing_mode: 'FAST' is not one of NRTI, OFFL, RPRO" in message
    with s5p.session() as s:
        assert s.scalar(select(func.count()).select_from(ProcessingOrder)) == 1
        assert s.scalar(select(func.count()).select_from(OrderEvent)) == 1


def test_planning_failure_is_recorded_and_leaves_no_plan(s5p: Catalog) -> None:
    _create(s5p, orbit_from=1, orbit_to=2)
    lifecycle.approve_order(s5p, "S5P", "o1")
    with pytest.raises(PlanningError, match="orbit 1 is not in the mission's orbit table"):
        lifecycle.plan_order(s5p, "S5P", "o1")
    with s5p.session() as s:
        order = orders.get_order(s, "S5P", "o1")
        assert order.state == "PLANNING_FAILED" and "orbit 1" in (order.state_message or "")
        assert s.scalar(select(func.count()).select_from(JobStep)) == 0
    # A window outside every orbit fails the same way for ORBIT slicing.
    _create(s5p, "early", start=datetime(2020, 1, 1, tzinfo=UTC), stop=datetime(2020, 1, 2, tzinfo=UTC))
    lifecycle.approve_order(s5p, "S5P", "early")
    with pytest.raises(PlanningError, match="no orbit intersects"):
        lifecycle.plan_order(s5p, "S5P", "early")
    assert _state(s5p, "early") == "PLANNING_FAILED"
