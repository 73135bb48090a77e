"""The input trigger and sensor: serialisation, a real wait on SQLite, one shared poller.

The trigger runs in ``asyncio.run`` against a real catalogue (an S5P order planned
with its inputs missing); deliveries are ingested from a thread while it waits. The
sensor is checked for what the scheduler and the triggerer read from it
(``start_from_trigger``, ``start_trigger_args``, template fields) and for what
``execute_complete`` does with each status.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG, TaskInstanceState, task_group
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout, TaskDeferred
from airflow.serialization.serialized_objects import DagSerialization
from airflow.triggers.base import TaskSuccessEvent, TriggerEvent
from sqlalchemy import select

from proseo.catalog.db import Catalog, make_engine, utcnow
from proseo.catalog.ingest import Ingestor
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_order import InputQuery, Job, JobStep, ProcessingOrder
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.orchestration import triggers
from proseo.orchestration.sensors import JobStepInputSensor
from proseo.orchestration.triggers import CLASSPATH, JobStepInputsTrigger
from proseo.planning import lifecycle, orders, readiness
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR

FIRST_ORBIT = 37100
BANDS_BUT_ONE = {"L0__ODB_1_", "L0__ODB_4_", "AUX_L1_CKD"}


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def cat(sqlite_template: Path, tmp_path: Path, data_dirs: dict[str, Path]) -> Any:
    path = tmp_path / "catalog.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    catalog = Catalog(url, engine=engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
    yield catalog
    triggers.dispose_engines()
    engine.dispose()


def _window(catalog: Catalog, first: int, last: int) -> tuple[datetime, datetime]:
    with catalog.session() as s:
        orbits = {o.number: o for o in loaded_from_catalog(s, "S5P").orbits["S5P"]}
    return orbits[first].start, orbits[last].stop


def _ingest(catalog: Catalog, first: int, last: int, tmp: Path, classes: set[str]) -> None:
    """Deliveries of the orbits (and the calibration) for the given classes."""
    start, stop = _window(catalog, first, last)
    with catalog.session() as s:
        mission = loaded_from_catalog(s, "S5P")
    files = write_inputs(mission, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", classes=classes, size=64)
    assert Ingestor(catalog, mission).run(files).ok


def _l1b_steps(catalog: Catalog, first: int, last: int, tmp: Path) -> list[int]:
    """An L1B order over the orbits; every step waits for band 6 (the rest is delivered)."""
    spec = OrderSpec(
        identifier="o1",
        requested_classes=["L1B_______"],
        orbit_from=first,
        orbit_to=last,
        output_parameters={"*": {"collection": 3}},
    )
    _ingest(catalog, first, last, tmp, BANDS_BUT_ONE)
    with catalog.session() as s:
        orders.create_order(s, "S5P", spec)
    lifecycle.approve_order(catalog, "S5P", "o1")
    lifecycle.plan_order(catalog, "S5P", "o1")
    with catalog.session() as s:
        rows = s.execute(
            select(JobStep.id, JobStep.state)
            .join(Job, Job.id == JobStep.job_id)
            .join(ProcessingOrder, ProcessingOrder.id == Job.order_id)
            .order_by(JobStep.start_time)
        ).all()
    assert {state for _, state in rows} == {"WAITING_INPUT"}
    return [sid for sid, _ in rows]


def _collect(trigger: JobStepInputsTrigger) -> list[dict[str, Any]]:
    async def drain() -> list[dict[str, Any]]:
        return [e.payload async for e in trigger.run()]

    return asyncio.run(drain())


def _state(catalog: Catalog, step: int) -> str:
    with catalog.session() as s:
        return s.get(JobStep, step).state


# --- the trigger -----------------------------------------------------------------------------


def test_serialize_round_trip() -> None:
    trigger = JobStepInputsTrigger(
        catalog_url="postgresql://proseo@db/catalog",
        job_step_id=12,
        poll_interval=5.0,
        timeout_s=600.0,
        on_timeout="RUN_WITH_AVAILABLE",
        end_from_trigger=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "proseo.orchestration.triggers.JobStepInputsTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs  # JSON primitives only
    module, _, name = classpath.rpartition(".")  # as the triggerer imports it
    again = getattr(importlib.import_module(module), name)(**kwargs)
    assert type(again) is JobStepInputsTrigger and again.serialize() == (classpath, kwargs)
    assert vars(again) | {"_registration": None} == vars(trigger) | {"_registration": None}


def test_trigger_waits_until_the_input_is_ingested(cat: Catalog, tmp_path: Path) -> None:
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    trigger = JobStepInputsTrigger(cat.url, step, poll_interval=0.1, timeout_s=30)

    async def scenario() -> tuple[list[dict[str, Any]], float]:
        started = time.monotonic()
        run = asyncio.ensure_future(_drain(trigger))
        await asyncio.sleep(0.5)
        assert not run.done()  # still waiting for band 6
        await asyncio.to_thread(_ingest, cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path, {"L0__ODB_6_"})
        events = await asyncio.wait_for(run, 10)
        return events, time.monotonic() - started

    events, took = asyncio.run(scenario())
    assert len(events) == 1 and events[0]["status"] == "ready", events
    assert events[0]["job_step_id"] == step and "inputs complete" in events[0]["message"]
    assert any(n.startswith("L0__ODB_6_") for n in events[0]["newly_satisfied"])
    assert took < 10 and _state(cat, step) == "PLANNED"
    assert triggers.active_pollers() == []


def test_end_from_trigger_ends_the_task_in_the_triggerer(cat: Catalog, tmp_path: Path) -> None:
    """Ready with end_from_trigger: Airflow's TaskSuccessEvent with the sensor's XCom, so no
    worker starts; a timeout still goes back to the sensor on a worker."""
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    _ingest(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path, {"L0__ODB_6_"})

    async def events(trigger: JobStepInputsTrigger) -> list[TriggerEvent]:
        return [e async for e in trigger.run()]

    (ended,) = asyncio.run(events(JobStepInputsTrigger(cat.url, step, 0.1, 30, end_from_trigger=True)))
    assert isinstance(ended, TaskSuccessEvent)
    assert ended.task_instance_state == TaskInstanceState.SUCCESS
    xcom = ended.xcoms["return_value"]
    assert xcom["job_step_id"] == step and xcom["status"] == "ready" and "inputs complete" in xcom["message"]
    assert json.loads(json.dumps(ended.xcoms)) == ended.xcoms
    # What dag.test() hands back to the sensor when the trigger ended the task.
    sensor = JobStepInputSensor(task_id="s", job_step_id=step, catalog_url=cat.url)
    assert sensor.execute_complete({}, ended.payload) == {
        "job_step_id": step,
        "status": "ready",
        "message": "inputs complete",
    }
    (resumed,) = asyncio.run(events(JobStepInputsTrigger(cat.url, step, 0.1, 30)))
    assert type(resumed) is TriggerEvent and resumed.payload["status"] == "ready"


def test_end_from_trigger_leaves_timeouts_to_the_worker(cat: Catalog, tmp_path: Path) -> None:
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    trigger = JobStepInputsTrigger(cat.url, step, 0.1, timeout_s=0.3, end_from_trigger=True)

    async def events() -> list[TriggerEvent]:
        return [e async for e in trigger.run()]

    (event,) = asyncio.run(events())
    assert type(event) is TriggerEvent and event.payload["status"] == "timeout"


def test_a_timeout_before_the_first_poll_ended_still_names_what_is_missing(
    cat: Catalog, tmp_path: Path
) -> None:
    """A slow catalogue (CI) can let the timeout come before the first refresh returned."""
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    (event,) = _collect(JobStepInputsTrigger(cat.url, step, poll_interval=0.1, timeout_s=0.001))
    assert event["status"] == "timeout"
    assert [w.split(":")[0] for w in event["waiting"]] == ["L0__ODB_6_"]
    assert "L0__ODB_6_" in event["message"]


async def _drain(trigger: JobStepInputsTrigger) -> list[dict[str, Any]]:
    return [e.payload async for e in trigger.run()]


def test_timeout_yields_a_timeout_event(cat: Catalog, tmp_path: Path) -> None:
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    (event,) = _collect(JobStepInputsTrigger(cat.url, step, poll_interval=0.1, timeout_s=0.4))
    assert event["status"] == "timeout" and event["on_timeout"] == "FAIL"
    assert [w.split(":")[0] for w in event["waiting"]] == ["L0__ODB_6_"]
    assert "no complete inputs after 0.4 s" in event["message"] and "L0__ODB_6_" in event["message"]
    # After a triggerer restart the deadline comes from Airflow's (timeout_after), not a new clock.
    restarted = JobStepInputsTrigger(cat.url, step, poll_interval=0.1, timeout_s=3600)
    restarted.timeout_after = utcnow() + timedelta(seconds=triggers.TIMEOUT_GRACE_S + 0.3)
    started = time.monotonic()
    (event,) = _collect(restarted)
    assert event["status"] == "timeout" and time.monotonic() - started < 5


def test_errors_become_events(cat: Catalog, tmp_path: Path) -> None:
    (bad_url,) = _collect(JobStepInputsTrigger("nosuchdriver://nowhere/x", 1, poll_interval=0.05))
    assert bad_url["status"] == "error" and "cannot poll the catalogue" in bad_url["message"]
    (bad_arg,) = _collect(JobStepInputsTrigger(cat.url, "not-a-number", poll_interval=0.05))
    assert bad_arg["status"] == "error" and "invalid trigger arguments" in bad_arg["message"]
    (gone,) = _collect(JobStepInputsTrigger(cat.url, 424242, poll_interval=0.05))
    assert gone["status"] == "error" and "does not exist" in gone["message"]
    # A database without the catalogue schema: transient-looking errors, given up after a few polls.
    (empty,) = _collect(JobStepInputsTrigger(f"sqlite:///{tmp_path / 'empty.db'}", 1, poll_interval=0.05))
    assert empty["status"] == "error" and f"{triggers.MAX_FAILED_POLLS} polls in a row" in empty["message"]
    assert triggers.active_pollers() == []


def test_triggers_share_one_poller_and_one_poll_per_interval(
    cat: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT + 2, tmp_path)
    assert len(steps) == 3
    polls: list[list[int]] = []
    real = readiness.poll_readiness

    def counting(session, ids, since):
        polls.append(sorted(ids))
        return real(session, ids, since)

    monkeypatch.setattr(readiness, "poll_readiness", counting)
    interval = 0.1
    # Four triggers (two for the same step), one more on another interval.
    waiting = [
        JobStepInputsTrigger(cat.url, s, poll_interval=interval, timeout_s=30) for s in [*steps, steps[0]]
    ]
    other = JobStepInputsTrigger(cat.url, steps[1], poll_interval=0.25, timeout_s=30)

    async def scenario() -> tuple[list[list[dict[str, Any]]], float, dict[float, dict[int, int]]]:
        started = time.monotonic()
        runs = [asyncio.ensure_future(_drain(t)) for t in [*waiting, other]]
        await asyncio.sleep(0.55)
        seen = {p.interval: {sid: len(w) for sid, w in p.waiters.items()} for p in triggers.active_pollers()}
        assert not any(r.done() for r in runs)
        await asyncio.to_thread(_ingest, cat, FIRST_ORBIT, FIRST_ORBIT + 2, tmp_path, {"L0__ODB_6_"})
        done = await asyncio.wait_for(asyncio.gather(*runs), 10)
        return done, time.monotonic() - started, seen

    results, took, seen = asyncio.run(scenario())
    assert [r[0]["status"] for r in results] == ["ready"] * 5
    assert [r[0]["job_step_id"] for r in results] == [*steps, steps[0], steps[1]]
    # One poller per (catalogue, interval), however many triggers.
    assert seen == {interval: {steps[0]: 2, steps[1]: 1, steps[2]: 1}, 0.25: {steps[1]: 1}}
    # Each poll asks about every waiting step at once: one poll_readiness per interval.
    fast = [ids for ids in polls if ids == steps]
    assert all(ids in (steps, [steps[1]]) for ids in polls)
    assert 2 <= len(fast) <= took / interval + 2
    assert triggers.active_pollers() == []


def test_cancelled_triggers_unregister_and_the_poller_stops(cat: Catalog, tmp_path: Path) -> None:
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    trigger = JobStepInputsTrigger(cat.url, step, poll_interval=0.1)

    async def scenario() -> None:
        run = asyncio.ensure_future(_drain(trigger))
        await asyncio.sleep(0.3)
        (poller,) = triggers.active_pollers()
        assert list(poller.waiters) == [step]
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert poller.waiters == {}
        await asyncio.wait_for(poller.task, 2)  # stops without waiting for the interval
        assert triggers.active_pollers() == []
        await trigger.cleanup()  # idempotent

    asyncio.run(scenario())


# --- the sensor ------------------------------------------------------------------------------


def test_sensor_starts_from_the_triggerer_with_serialisable_arguments() -> None:
    with DAG("sensing", schedule=None, start_date=datetime(2025, 1, 1, tzinfo=UTC)) as dag:
        sensor = JobStepInputSensor(
            task_id="inputs",
            job_step_id=12,
            poll_interval=5,
            timeout_s=600,
            on_timeout="RUN_WITH_AVAILABLE",
        )

        @task_group(group_id="level_0")
        def group(job_step_id: Any) -> None:
            JobStepInputSensor(task_id="inputs", job_step_id=job_step_id)

        group.expand(job_step_id=[1, 2, 3])

    assert sensor.start_from_trigger is True
    args = sensor.start_trigger_args
    assert args.trigger_cls == CLASSPATH and args.next_method == "execute_complete"
    assert args.timeout == timedelta(seconds=600 + triggers.TIMEOUT_GRACE_S)
    assert args.trigger_kwargs == {
        "catalog_url": None,
        "job_step_id": 12,
        "poll_interval": 5.0,
        "timeout_s": 600.0,
        "on_timeout": "RUN_WITH_AVAILABLE",
        "end_from_trigger": True,
    }
    assert json.loads(json.dumps(args.trigger_kwargs)) == args.trigger_kwargs
    assert JobStepInputsTrigger(**args.trigger_kwargs).serialize() == (CLASSPATH, args.trigger_kwargs)
    assert JobStepInputSensor.start_trigger_args.trigger_kwargs == {}  # the class attribute is untouched
    # A mapped task group's argument cannot be rendered by the triggerer: start on a worker.
    assert dag.get_task("level_0.inputs").start_from_trigger is False
    # What the scheduler reads back from the serialised DAG.
    back = DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag)))).get_task(
        "inputs"
    )
    assert back.start_from_trigger is True
    assert back.start_trigger_args.trigger_cls == CLASSPATH
    assert back.start_trigger_args.timeout == args.timeout
    with pytest.raises(ValueError, match="on_timeout"):
        JobStepInputSensor(task_id="bad", job_step_id=1, on_timeout="IGNORE")


def test_the_triggerer_renders_templated_arguments_on_the_trigger() -> None:
    sensor = JobStepInputSensor(task_id="inputs", job_step_id="{{ params.step }}", poll_interval=1)
    trigger = JobStepInputsTrigger(**sensor.start_trigger_args.trigger_kwargs)
    # As the triggerer does: the task instance carries the task, then fields are rendered.
    trigger.task_instance = SimpleNamespace(task=sensor, task_id="inputs")
    assert set(trigger.template_fields) == {"catalog_url", "job_step_id"}
    trigger.render_template_fields(context={"params": {"step": 7}})
    assert trigger.job_step_id == "7"


def test_sensor_without_start_from_trigger_defers_from_execute() -> None:
    sensor = JobStepInputSensor(task_id="inputs", job_step_id=5, catalog_url="sqlite:///c.db", timeout_s=10)
    sensor.start_from_trigger = False
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(context={})
    deferred = info.value
    assert deferred.method_name == "execute_complete" and deferred.timeout == timedelta(seconds=70)
    assert deferred.trigger.serialize() == (CLASSPATH, sensor.trigger_kwargs())


def test_execute_complete_for_each_status(cat: Catalog, tmp_path: Path) -> None:
    (step,) = _l1b_steps(cat, FIRST_ORBIT, FIRST_ORBIT, tmp_path)
    failing = JobStepInputSensor(task_id="a", job_step_id=step, catalog_url=cat.url, timeout_s=1)
    ready = {"status": "ready", "job_step_id": step, "message": "inputs complete"}
    assert failing.execute_complete({}, ready) == {
        "job_step_id": step,
        "status": "ready",
        "message": "inputs complete",
    }
    with pytest.raises(AirflowException, match="database away"):
        failing.execute_complete({}, {"status": "error", "job_step_id": step, "message": "database away"})
    timeout = {"status": "timeout", "job_step_id": step, "message": "no complete inputs after 1.0 s"}
    with pytest.raises(AirflowSensorTimeout):
        failing.execute_complete({}, timeout)
    assert _state(cat, step) == "WAITING_INPUT"

    lenient = JobStepInputSensor(
        task_id="b", job_step_id=step, catalog_url=cat.url, timeout_s=1, on_timeout="RUN_WITH_AVAILABLE"
    )
    result = lenient.execute_complete({}, timeout)
    assert result["status"] == "timeout" and [g.split(":")[0] for g in result["given_up"]] == ["L0__ODB_6_"]
    assert _state(cat, step) == "PLANNED"
    with cat.session() as s:
        odb6 = s.scalar(
            select(InputQuery).where(
                InputQuery.job_step_id == step, InputQuery.rule_text.startswith("FOR L0__ODB_6_")
            )
        )
        assert odb6.satisfied and odb6.given_up_at is not None
        assert "input timeout after 1.0 s" in odb6.explanation and "nothing found" in odb6.explanation
