"""Released orders of both sample missions run as Airflow DAGs built by the factory.

The orders are planned and released in a catalogue; their DAGs come from the real
shard files in ``dags/`` (one catalogue query per shard); ``dag.test()`` runs them in
a separate process with its own Airflow home (Airflow reads AIRFLOW_HOME on first
import). Every job step runs the real wrapper and sample processor on the local
backend and registers its outputs.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from proseo.catalog.db import Catalog
from proseo.catalog.ingest import Ingestor
from proseo.catalog.lineage import lineage
from proseo.catalog.mission_sync import loaded_from_catalog, sync_mission
from proseo.catalog.model_mission import ProductClass
from proseo.catalog.model_order import InputQuery, InputQueryProduct, JobStep, JobStepOutput, ProcessingOrder
from proseo.catalog.model_product import Product, ProductFile, Provenance
from proseo.catalog.schema import upgrade
from proseo.devtools.generate import write_inputs
from proseo.missions import load_mission
from proseo.planning import lifecycle, orders
from proseo.planning.spec import OrderSpec

from tests_paths import MISSION_DIR, REPO

DAY = datetime(2025, 3, 1, tzinfo=UTC)


def _ingest(catalog: Catalog, code: str, start: datetime, stop: datetime, tmp: Path) -> None:
    with catalog.session() as s:
        mission = loaded_from_catalog(s, code)
    files = write_inputs(mission, start, stop, tmp / f"in-{uuid.uuid4().hex[:6]}", size=256)
    assert Ingestor(catalog, mission).run(files).ok


def _release(catalog: Catalog, code: str, identifier: str, **fields) -> str:
    with catalog.session() as s:
        orders.create_order(s, code, OrderSpec(identifier=identifier, **fields))
    lifecycle.approve_order(catalog, code, identifier)
    lifecycle.plan_order(catalog, code, identifier)
    return lifecycle.release_order(catalog, code, identifier).dag_id or ""


def _lineage(catalog: Catalog, product_type: str) -> set[str]:
    """Product types in the whole lineage of the (first) product of ``product_type``."""
    with catalog.session() as s:
        root = s.scalar(
            select(Product.id).join(ProductClass).where(ProductClass.product_type == product_type)
        )
        assert root is not None
        return {node.product_type for node in lineage(s, root).nodes.values()} - {product_type}


def _dagtest_command(tmp_path: Path, *dag_ids: str) -> list[str]:
    home = str(tmp_path / "airflow")
    return [
        sys.executable,
        "-m",
        "proseo.devtools.dagtest",
        "--airflow-home",
        home,
        "--dags",
        str(REPO / "dags"),
        *dag_ids,
    ]


def _run_dags(tmp_path: Path, env: dict[str, str], *dag_ids: str, **extra: str) -> dict[str, dict]:
    """Run the DAGs with dag.test() in their own process; their results by DAG id."""
    result = subprocess.run(
        _dagtest_command(tmp_path, *dag_ids),
        capture_output=True,
        text=True,
        env={**os.environ, **env, **extra},
        timeout=900,
    )
    results = _results(result.stdout)
    # The helper's status says whether every run succeeded (3: a run did not).
    succeeded = all(r["state"] == "success" for r in results.values())
    assert result.returncode == (0 if succeeded else 3), result.stderr[-4000:]
    return results


def _wait_until_sensing(db: Path, process: subprocess.Popen[str], timeout: float) -> None:
    """Until dag.test() (its own metadata database) has handed an input sensor to its
    trigger: dag.test runs the trigger in-process and shows the sensor as queued."""
    deadline = time.monotonic() + timeout
    query = "SELECT 1 FROM task_instance WHERE task_id LIKE '%inputs' AND state IN ('queued', 'deferred')"
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db, timeout=5)) as c:
                if c.execute(query).fetchone():
                    return
        time.sleep(0.5)
    raise AssertionError(f"no input sensor within {timeout:.0f} s (dag.test exit code {process.poll()})")


def _results(stdout: str) -> dict[str, dict]:
    lines = [line for line in stdout.splitlines() if line.startswith('{"dag_id"')]
    return {r["dag_id"]: r for r in map(json.loads, lines)}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "PROSEO_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}",
        "PROSEO_DATA": str(tmp_path / "data"),
        "PROSEO_SCRATCH": str(tmp_path / "scratch"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_orders_of_both_missions_run_as_dags(env: dict[str, str], tmp_path: Path) -> None:
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "s5p.yaml"))
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    _ingest(catalog, "S5P", DAY - timedelta(hours=3), DAY + timedelta(days=1, hours=3), tmp_path)
    _ingest(catalog, "SKY", DAY, DAY + timedelta(days=2), tmp_path)
    dag_ids = [
        _release(
            catalog,
            "S5P",
            "no2-day",
            requested_classes=["L3__NO2___"],
            start=DAY,
            stop=DAY + timedelta(days=1),
            processing_mode="OFFL",
            output_parameters={"*": {"collection": 1}},
        ),
        _release(
            catalog,
            "SKY",
            "two-nights",
            requested_classes=["SRC_CAT"],
            start=DAY,
            stop=DAY + timedelta(days=2),
        ),
    ]
    assert dag_ids == ["proseo__S5P__no2-day", "proseo__SKY__two-nights"]

    runs = _run_dags(tmp_path, env, *dag_ids)
    assert runs["proseo__S5P__no2-day"]["state"] == "success"
    assert runs["proseo__S5P__no2-day"]["task_instances"] == {"success": 46}
    assert runs["proseo__SKY__two-nights"]["task_instances"] == {"success": 10}
    # Each facility is a pool sized by its max_concurrent_job_steps (created by the listener).
    assert runs["proseo__SKY__two-nights"]["pools"] == {"proseo__s5p__local": 2, "proseo__sky__local": 2}
    events = runs["proseo__S5P__no2-day"]["asset_events"]
    assert len(events["proseo://S5P/L2__NO2___"]) == 15 and len(events["proseo://S5P/L3__NO2___"]) == 1
    assert len(events["proseo://S5P/L1B_RA_BD3"]) == 15  # components are announced too
    assert all(len(e["product_ids"]) == 1 and e["job_step_id"] for e in events["proseo://S5P/L2__NO2___"])

    with catalog.session() as s:
        for code, identifier in (("S5P", "no2-day"), ("SKY", "two-nights")):
            order = orders.get_order(s, code, identifier)
            assert order.state == "COMPLETED"
            assert [e.operation for e in order.events][-3:] == ["released", "start", "complete"]
        assert set(s.scalars(select(JobStep.state))) == {"COMPLETED"}
        planned = s.scalar(select(func.count()).select_from(JobStepOutput))
        produced = s.scalar(select(func.count()).select_from(Product).where(Product.job_step_id.isnot(None)))
        assert produced == planned == 106 + 10  # S5P: 15 x (L1B set of 5 + CLOUD + NO2) + L3; SKY: 2 x 5
        files = s.scalars(select(ProductFile).join(Product).where(Product.job_step_id.isnot(None))).all()
        assert len(files) == produced and all(len(f.md5) == 32 and len(f.sha256) == 64 for f in files)
        provenance = s.scalars(select(Provenance)).all()
        assert len(provenance) == produced
        assert {p.dag_id for p in provenance} == set(dag_ids)
        assert all(
            p.run_id and p.task_id and p.try_number == 1 and p.map_index is not None for p in provenance
        )
    assert {"L0__ODB_1_", "L0__ODB_4_", "L0__ODB_6_", "AUX_L1_CKD", "AUX_MET_TP"} <= _lineage(
        catalog, "L3__NO2___"
    )
    assert {"RAW_EXP", "CAL_BIAS", "CAL_FLAT", "REF_CAT"} <= _lineage(catalog, "SRC_CAT")


def test_a_failing_order_ends_failed_not_running(env: dict[str, str], tmp_path: Path) -> None:
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    _ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    dag_id = _release(
        catalog,
        "SKY",
        "broken",
        requested_classes=["SRC_CAT"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        dynamic_parameters={"proseo_test_mode": "fail"},
    )
    runs = _run_dags(tmp_path, env, dag_id, PROSEO_TASK_RETRIES="0")
    (run,) = runs.values()
    assert run["state"] == "failed" and run["task_instances"] == {"failed": 5}
    with catalog.session() as s:
        order = orders.get_order(s, "SKY", "broken")
        assert order.state == "FAILED" and "5 job step(s) failed" in (order.state_message or "")
        reasons = dict(s.execute(select(JobStep.id, JobStep.failure_reason)).all())
        assert sum("proseo_test_mode=fail" in r or "exit code 130" in r for r in reasons.values()) == 2
        assert sum("upstream job step" in r for r in reasons.values()) == 3
        assert s.scalar(select(func.count()).select_from(Product).where(Product.job_step_id.isnot(None))) == 0


def test_a_late_input_is_waited_for_then_the_step_runs(env: dict[str, str], tmp_path: Path) -> None:
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
        mission = loaded_from_catalog(s, "SKY")
    night = (DAY, DAY + timedelta(days=1))
    calibrations = write_inputs(mission, *night, tmp_path / "cal", size=256, classes={"CAL_BIAS", "CAL_FLAT"})
    assert Ingestor(catalog, mission).run(calibrations).ok
    dag_id = _release(catalog, "SKY", "late", requested_classes=["CALEXP_G"], start=night[0], stop=night[1])
    with catalog.session() as s:
        assert set(s.scalars(select(JobStep.state))) == {"WAITING_INPUT"}  # no raw exposures yet

    airflow = subprocess.Popen(
        _dagtest_command(tmp_path, dag_id),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, "PROSEO_INPUT_POLL_S": "1", "PROSEO_TASK_RETRIES": "0"},
    )
    try:
        # Airflow starts (its start-up time varies with the machine's load), the sensor
        # defers and polls a few times before the exposures arrive.
        _wait_until_sensing(tmp_path / "airflow" / "airflow.db", airflow, timeout=180)
        time.sleep(6)
        with catalog.session() as s:
            assert set(s.scalars(select(JobStep.state))) == {"WAITING_INPUT"}
        raw = write_inputs(mission, *night, tmp_path / "raw", size=256, classes={"RAW_EXP"})
        assert Ingestor(catalog, mission).run(raw).ok
        ingested_at = datetime.now(UTC)
        out, err = airflow.communicate(timeout=300)
    finally:
        airflow.kill()
    assert airflow.returncode == 0, err[-4000:]
    (run,) = _results(out).values()
    assert run["state"] == "success" and run["task_instances"] == {"success": 2}
    # It was waiting before the exposures were ingested, and ended only after.
    sensor_end = next(v for k, v in run["ended"].items() if k.endswith("inputs[0]"))
    assert datetime.fromisoformat(sensor_end) > ingested_at
    with catalog.session() as s:
        assert orders.get_order(s, "SKY", "late").state == "COMPLETED"
        (query,) = s.scalars(
            select(InputQuery)
            .join(ProductClass, ProductClass.id == InputQuery.source_class_id)
            .where(ProductClass.product_type == "RAW_EXP")
        ).all()
        picked = s.scalar(
            select(func.count()).select_from(InputQueryProduct).where(InputQueryProduct.query_id == query.id)
        )
        assert query.satisfied and picked == 15  # the g exposures of the night


def test_inputs_that_never_arrive_fail_the_order_not_leave_it_running(
    env: dict[str, str], tmp_path: Path
) -> None:
    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    dag_id = _release(
        catalog,
        "SKY",
        "starved",
        requested_classes=["STACK_G"],
        start=DAY,
        stop=DAY + timedelta(days=1),
        input_timeout="3 s",
        on_input_timeout="FAIL",
    )
    runs = _run_dags(tmp_path, env, dag_id, PROSEO_INPUT_POLL_S="1", PROSEO_TASK_RETRIES="0")
    (run,) = runs.values()
    assert run["state"] == "failed"
    with catalog.session() as s:
        order = orders.get_order(s, "SKY", "starved")
        assert order.state == "FAILED", [(e.operation, e.to_state, e.message) for e in order.events]
        steps = dict(s.execute(select(JobStep.id, JobStep.failure_reason).order_by(JobStep.id)).all())
    # The waiting step says why (the sensor's failure callback), its downstream step why not.
    waited = next(i for i, r in steps.items() if r and "AirflowSensorTimeout" in r)
    assert "inputs try 1 failed" in steps[waited] and "MANDATORY" in steps[waited]
    (other,) = set(steps) - {waited}
    assert steps[other] == f"upstream job step(s) [{waited}] failed"


def test_an_order_whose_products_all_exist_completes_without_a_run(
    env: dict[str, str], tmp_path: Path
) -> None:
    from proseo.orchestration.factory import blueprints

    catalog = Catalog(env["PROSEO_CATALOG_URL"])
    upgrade(catalog.engine)
    with catalog.session() as s:
        sync_mission(s, load_mission(MISSION_DIR / "sky.yaml"))
    _ingest(catalog, "SKY", DAY, DAY + timedelta(days=1), tmp_path)
    request = {"requested_classes": ["CALEXP_G"], "start": DAY, "stop": DAY + timedelta(days=1)}
    first = _release(catalog, "SKY", "first", **request)
    assert _run_dags(tmp_path, env, first)[first]["state"] == "success"

    # Ordered again: everything is reused, there is nothing to run and no DAG to build.
    assert _release(catalog, "SKY", "again", **request) == ""
    with catalog.session() as s:
        again = orders.get_order(s, "SKY", "again")
        assert again.state == "COMPLETED" and again.plan_summary["job_steps"] == 0
        order_id = again.id
    shards = 4
    assert not [bp for n in range(shards) for bp in blueprints(catalog, n, shards) if bp["order"] == "again"]

    # An order released with an empty DAG (as releases did before): the DAG factory builds
    # it, its run succeeds with no task, and the run-end listener completes the order.
    with catalog.session() as s:
        s.execute(
            update(ProcessingOrder)
            .where(ProcessingOrder.id == order_id)
            .values(state="RELEASED", dag_id="proseo__SKY__again")
        )
    (run,) = _run_dags(tmp_path, env, "proseo__SKY__again").values()
    assert run["state"] == "success" and run["task_instances"] == {}
    with catalog.session() as s:
        assert orders.get_order(s, "SKY", "again").state == "COMPLETED"
    assert lifecycle.close_order(catalog, "SKY", "again").state == "CLOSED"
