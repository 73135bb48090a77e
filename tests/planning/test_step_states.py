"""The job-step life cycle: the transition table, and the order operations that move steps in bulk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import Job, JobStep, ProcessingOrder
from proseo.catalog.model_order import StepState as S
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec
from proseo.planning.step_states import (
    STEP_TRANSITIONS,
    IllegalStepTransition,
    StepOp,
    move_step,
    sources_of,
)

from tests_paths import MISSION_DIR

DAY = datetime(2025, 3, 1, tzinfo=UTC)


def test_a_running_step_may_start_again_but_an_ended_one_may_not() -> None:
    step = SimpleNamespace(id=5, state=S.RUNNING.value, failure_reason="try 1 failed: x; Airflow retries it")
    assert move_step(step, StepOp.START, keep_reason=True) is S.RUNNING
    assert step.failure_reason == "try 1 failed: x; Airflow retries it"
    for ended in (S.COMPLETED, S.FAILED, S.SKIPPED):
        with pytest.raises(
            IllegalStepTransition, match=rf"job step 5: cannot start \({ended.value} -> RUNNING\)"
        ):
            move_step(SimpleNamespace(id=5, state=ended.value, failure_reason=None), StepOp.START)


def test_no_operation_leaves_a_completed_step_except_completing_it_again() -> None:
    assert [op for op, (sources, _) in STEP_TRANSITIONS.items() if S.COMPLETED in sources] == [
        StepOp.COMPLETE
    ]
    assert (
        sources_of(StepOp.CANCEL)
        == sources_of(StepOp.NOT_RUN)
        == ["PLANNED", "READY", "RUNNING", "WAITING_INPUT"]
    )


def _steps(catalog: Catalog) -> dict[int, tuple[str, str | None]]:
    with catalog.session() as s:
        return {
            i: (st, r) for i, st, r in s.execute(select(JobStep.id, JobStep.state, JobStep.failure_reason))
        }


def _set(catalog: Catalog, step: int, state: S) -> None:
    with catalog.session() as s:
        s.execute(update(JobStep).where(JobStep.id == step).values(state=state.value))


@pytest.fixture
def night(catalog: Catalog, data_dirs: dict[str, Path]) -> list[int]:
    """A released SKY order (no inputs ingested: its first step waits); its step ids."""
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        orders.create_order(
            s,
            "SKY",
            OrderSpec(identifier="n", requested_classes=["STACK_G"], start=DAY, stop=DAY + timedelta(days=1)),
        )
    lifecycle.approve_order(catalog, "SKY", "n")
    lifecycle.plan_order(catalog, "SKY", "n")
    lifecycle.release_order(catalog, "SKY", "n")
    return sorted(_steps(catalog))


def test_cancel_fails_the_unfinished_steps_only(catalog: Catalog, night: list[int]) -> None:
    calexp, stack = night
    _set(catalog, calexp, S.COMPLETED)
    lifecycle.cancel_order(catalog, "SKY", "n")
    assert _steps(catalog) == {calexp: ("COMPLETED", None), stack: ("FAILED", "order cancelled")}


def test_retry_starts_failed_steps_over_waiting_where_inputs_never_came(
    catalog: Catalog, night: list[int]
) -> None:
    before = _steps(catalog)
    waiting = {i for i, (state, _) in before.items() if state == "WAITING_INPUT"}
    assert waiting and waiting != set(night)  # no exposures ingested: the CALEXP step waits
    lifecycle.cancel_order(catalog, "SKY", "n")
    lifecycle.retry_order(catalog, "SKY", "n")
    assert _steps(catalog) == before


def test_the_end_of_the_run_fails_what_did_not_run(catalog: Catalog, night: list[int]) -> None:
    calexp, stack = night
    _set(catalog, calexp, S.RUNNING)
    with catalog.session() as s:
        order_id = s.scalar(select(Job.order_id).join(JobStep, JobStep.job_id == Job.id).limit(1))
        assert order_id is not None
        state = lifecycle.finalize_order(s, order_id, "DAG run r1 ended failed")
    assert state == "FAILED"
    reason = "not run: DAG run r1 ended failed"
    assert _steps(catalog) == {calexp: ("FAILED", reason), stack: ("FAILED", reason)}
    with catalog.session() as s:
        assert s.scalar(select(ProcessingOrder.state)) == "FAILED"
