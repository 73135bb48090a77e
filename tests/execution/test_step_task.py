"""The step task around the run, through the local operator (``JobStepOperator``).

The operator runs a stand-in wrapper (``STAND_IN``: a manifest of the planned outputs,
or a failure, on request) against a planned and released SKY order, with the task
instance Airflow would hand it. Checks: registration, Asset events and roll-up; a
failed try that Airflow retries keeps the step RUNNING (the order does not roll up to
FAILED), the final try fails it; upstream checks; ``on_kill``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from sqlalchemy import select
from tests_execution_helpers import DAY, ingest, plan, steps_of

from proseo.catalog.db import Catalog
from proseo.catalog.model_order import JobStep, ProcessingOrder
from proseo.catalog.model_product import Product
from proseo.execution import ExecutionError, steptask
from proseo.execution.local import JobStepOperator
from proseo.execution.steptask import is_final_try, step_try_failed
from proseo.planning.lifecycle import release_order

TASK = "level_0_run"


def _release(catalog: Catalog, tmp: Path, classes: list[str]) -> dict[str, list[int]]:
    ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp)
    plan(catalog, "SKY", requested_classes=classes, start=DAY, stop=DAY + timedelta(days=1))
    release_order(catalog, "SKY", "o1")
    return steps_of(catalog)


@pytest.fixture
def calexp(sky_cat: Catalog, tmp_path: Path) -> int:
    """The one CALEXP_G step of a released order."""
    (step,) = _release(sky_cat, tmp_path, ["CALEXP_G"])["CALEXP_G"]
    return step


def _operator(catalog: Catalog, step: int, wrapper: list[str], mode: str = "ok") -> JobStepOperator:
    return JobStepOperator(
        task_id=TASK,
        job_step_id=step,
        mission="SKY",
        catalog_url=catalog.url,
        wrapper=[*wrapper, "--mode", mode],
    )


def _context(try_number: int = 1, max_tries: int = 2, task: Any = None) -> dict[str, Any]:
    ti = SimpleNamespace(
        task_id=TASK,
        dag_id="proseo__SKY__o1",
        run_id="r1",
        map_index=0,
        try_number=try_number,
        max_tries=max_tries,
    )
    return {"ti": ti, "task": task, "outlet_events": defaultdict(SimpleNamespace)}


def _states(catalog: Catalog, step: int) -> tuple[str, str | None, str]:
    """(step state, its reason, the order's state)"""
    with catalog.session() as s:
        js = s.get(JobStep, step)
        order = s.scalar(select(ProcessingOrder).where(ProcessingOrder.identifier == "o1"))
        return js.state, js.failure_reason, order.state


def test_a_run_registers_announces_and_rolls_up(sky_cat: Catalog, calexp: int, stand_in: list[str]) -> None:
    context = _context()
    result = _operator(sky_cat, calexp, stand_in).execute(context)
    with sky_cat.session() as s:
        made = sorted(s.scalars(select(Product.id).where(Product.job_step_id == calexp)))
    assert result == {"job_step_id": calexp, "product_ids": made, "status": "SUCCESS"} and made
    (event,) = context["outlet_events"].values()
    assert event.extra == {"job_step_id": calexp, "product_ids": made}
    assert _states(sky_cat, calexp) == ("COMPLETED", None, "COMPLETED")


def test_a_failed_try_that_airflow_retries_keeps_the_step_running(
    sky_cat: Catalog, calexp: int, stand_in: list[str]
) -> None:
    """Try 1 of 3 fails: the step stays RUNNING with a note and the order stays RUNNING, so
    the successful try 2 completes the order (it used to stay FAILED)."""
    failing = _operator(sky_cat, calexp, stand_in, "fail")
    with pytest.raises(AirflowException, match="failed at run: the processor failed") as info:
        failing.execute(_context(try_number=1, max_tries=2))
    assert not isinstance(info.value, AirflowFailException)
    note = "try 1 failed: run: the processor failed with exit code 134; Airflow retries it"
    assert _states(sky_cat, calexp) == ("RUNNING", note, "RUNNING")
    # Airflow's retry callback keeps the task's own note of this try.
    step_try_failed({**_context(1, 2, task=failing), "exception": info.value})
    assert _states(sky_cat, calexp) == ("RUNNING", note, "RUNNING")

    _operator(sky_cat, calexp, stand_in).execute(_context(try_number=2, max_tries=2))
    assert _states(sky_cat, calexp) == ("COMPLETED", None, "COMPLETED")


def test_the_final_try_fails_the_step_and_the_order(
    sky_cat: Catalog, calexp: int, stand_in: list[str]
) -> None:
    with pytest.raises(AirflowException, match="failed at run"):
        _operator(sky_cat, calexp, stand_in, "fail").execute(_context(try_number=3, max_tries=2))
    state, reason, order = _states(sky_cat, calexp)
    assert (state, reason, order) == ("FAILED", "run: the processor failed with exit code 134", "FAILED")
    with sky_cat.session() as s:
        assert s.get(JobStep, calexp).exit_code == 134
    # Cleared in Airflow behind the catalogue's back: the step does not start again (an
    # order retry would move it back to PLANNED first).
    with pytest.raises(AirflowFailException, match=r"cannot start \(FAILED -> RUNNING\)"):
        _operator(sky_cat, calexp, stand_in).execute(_context(try_number=4, max_tries=4))
    assert _states(sky_cat, calexp)[0] == "FAILED"


def test_a_refused_spec_is_final_at_once(sky_cat: Catalog, calexp: int, stand_in: list[str]) -> None:
    with pytest.raises(AirflowFailException, match=r"failed at spec.*; not retried"):
        _operator(sky_cat, calexp, stand_in, "failspec").execute(_context(try_number=1, max_tries=2))
    assert _states(sky_cat, calexp)[0] == "FAILED"


@pytest.mark.parametrize(
    ("ti", "final"),
    [
        (SimpleNamespace(try_number=1, max_tries=2), False),
        (SimpleNamespace(try_number=2, max_tries=2), False),
        (SimpleNamespace(try_number=3, max_tries=2), True),
        (SimpleNamespace(try_number=1, max_tries=0), True),  # retries=0
        (SimpleNamespace(try_number=1, task=SimpleNamespace(retries=1)), False),  # no max_tries
        # The server's word wins (a task cleared while running is always retried).
        (
            SimpleNamespace(
                try_number=5, max_tries=2, _ti_context_from_server=SimpleNamespace(should_retry=True)
            ),
            False,
        ),
        (
            SimpleNamespace(
                try_number=1, max_tries=2, _ti_context_from_server=SimpleNamespace(should_retry=False)
            ),
            True,
        ),
        (None, True),
    ],
)
def test_final_tries_are_decided_as_airflow_does(ti: Any, final: bool) -> None:
    assert is_final_try(ti) is final


def test_upstream_pending_retries_and_failed_upstream_fails_fast(
    sky_cat: Catalog, tmp_path: Path, stand_in: list[str]
) -> None:
    steps = _release(sky_cat, tmp_path, ["STACK_G"])
    (calexp,), (stack,) = steps["CALEXP_G"], steps["STACK_G"]
    with pytest.raises(
        AirflowException, match=rf"upstream job step\(s\) \[{calexp}\] have not completed"
    ) as info:
        _operator(sky_cat, stack, stand_in).execute(_context())
    assert not isinstance(info.value, AirflowFailException)
    assert _states(sky_cat, stack)[:2] == ("PLANNED", None)

    with pytest.raises(AirflowException):
        _operator(sky_cat, calexp, stand_in, "fail").execute(_context(try_number=3, max_tries=2))
    with pytest.raises(AirflowFailException, match=rf"upstream job step\(s\) \[{calexp}\] failed"):
        _operator(sky_cat, stack, stand_in).execute(_context())
    assert _states(sky_cat, stack) == ("FAILED", f"upstream job step(s) [{calexp}] failed", "FAILED")


def test_a_facility_of_another_backend_is_refused(sky_cat: Catalog, calexp: int) -> None:
    with pytest.raises(
        AirflowFailException, match="facility local uses backend 'local', this task runs 'slurm'"
    ):
        steptask.begin(sky_cat, calexp, task_id=TASK, try_number=1, backend="slurm")
    assert _states(sky_cat, calexp)[:2] == ("PLANNED", None)


def test_on_kill_ends_the_wrapper_process_group(sky_cat: Catalog, calexp: int, stand_in: list[str]) -> None:
    op = _operator(sky_cat, calexp, stand_in, "sleep")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(_context())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while op._process is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the stand-in get going
    op.on_kill()
    thread.join(30)
    assert not thread.is_alive()
    assert op._process is not None and op._process.returncode is not None
    assert op._process.returncode < 0  # killed by a signal
    assert outcome and isinstance(outcome[0], ExecutionError)
    assert _states(sky_cat, calexp)[0] == "RUNNING"  # the failure callbacks take it from here
