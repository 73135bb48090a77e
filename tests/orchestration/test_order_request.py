"""The ``proseo_order_request`` trigger-form DAG: its form, its runs, its refusals, its reruns.

The step functions are tested in-process on both catalogue backends (the ``catalog``
fixture). The DAG itself is parsed from the real ``dags/`` folder and run with
``dag.test(run_conf=...)`` in ONE separate process with its own Airflow home (Airflow
reads AIRFLOW_HOME on first import; the first ``dag.test()`` costs seconds, later ones
little), over a sequence of requests against one SQLite catalogue.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from proseo.catalog.db import Catalog
from proseo.catalog.mission_sync import sync_mission
from proseo.catalog.model_order import OrderEvent, ProcessingOrder
from proseo.catalog.schema import upgrade
from proseo.devtools.dagtest import prepare_home
from proseo.missions import load_mission
from proseo.orchestration import order_request as orq
from proseo.planning import orders

from tests_paths import MISSION_DIR, REPO

S5P = {
    "mission": "S5P",
    "identifier": "no2-req",
    "requested_classes": ["L2__NO2___"],
    "start": "2025-03-01T00:00:00Z",
    "stop": "2025-03-01T06:00:00Z",
    "processing_mode": "OFFL",
    "output_parameters": {"*": {"collection": 1}},
}
SKY = {
    "mission": "SKY",
    "identifier": "sky-night",
    "requested_classes": ["SRC_CAT"],
    "start": "2025-03-01T00:00:00Z",
    "stop": "2025-03-02T00:00:00Z",
    "output_parameters": {},  # the form's default is the first mission's (S5P names need a collection)
}
SCENARIOS = [
    ("s5p", S5P),
    ("sky", SKY),
    ("s5p-again", S5P),
    ("unknown-class", {**S5P, "identifier": "bad-class", "requested_classes": ["L2__NO2___", "NOPE"]}),
    ("stop-before-start", {**S5P, "identifier": "bad-period", "stop": "2025-02-28T00:00:00Z"}),
    ("form-defaults", {}),
]

RUNNER = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select

dags, scenarios = sys.argv[1], json.loads(open(sys.argv[2]).read())
bag = DagBag(dag_folder=dags)
dag = bag.get_dag("proseo_order_request")
form = {}
for name in dag.params:
    param = dag.params.get_param(name)
    form[name] = {**param.schema, "description": param.description, "default": param.value}
print(json.dumps({
    "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dag_ids),
    "timetable": type(dag.timetable).__name__,
    "tags": sorted(dag.tags),
    "paused_at_creation": dag.is_paused_upon_creation,
    "params": form,
}, default=str), flush=True)
for name, conf in scenarios:
    print(f"### scenario {name}", flush=True)
    # A fresh parse per run, as a worker does: in-process, Airflow's process_params() sets the
    # conf's values on the DAG object's own Param objects, so they would leak into the next run.
    dag = DagBag(dag_folder=dag.fileloc).get_dag("proseo_order_request")
    run = dag.test(run_conf=conf)
    with create_session() as s:
        xcom = dict(s.execute(select(XComModel.task_id, XComModel.value).where(
            XComModel.dag_id == dag.dag_id, XComModel.run_id == run.run_id, XComModel.key == "return_value"
        )).all())
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    result = {"scenario": name, "state": str(run.state), "tasks": tasks, "xcom": xcom}
    print(json.dumps(result, default=str), flush=True)
print("### end", flush=True)
print(json.dumps({"dag_ids_after": sorted(DagBag(dag_folder=dags).dag_ids)}), flush=True)
"""


def _catalogue(url: str) -> Catalog:
    catalog = Catalog(url)
    upgrade(catalog.engine)
    return _loaded(catalog)


def _loaded(catalog: Catalog) -> Catalog:
    with catalog.session() as s:
        for name in ("s5p", "sky"):
            sync_mission(s, load_mission(MISSION_DIR / f"{name}.yaml"))
    return catalog


# --- the DAG under dag.test(), one process for every scenario ---------------------------------


@pytest.fixture(scope="module")
def dag_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("order_request")
    url = f"sqlite:///{tmp / 'catalog.db'}"
    catalog = _catalogue(url)
    (tmp / "scenarios.json").write_text(json.dumps(SCENARIOS))
    (tmp / "runner.py").write_text(RUNNER)
    env = {
        **os.environ,
        **prepare_home(tmp / "airflow", REPO / "dags"),
        "PROSEO_CATALOG_URL": url,
        "PROSEO_DATA": str(tmp / "data"),
        "PROSEO_SCRATCH": str(tmp / "scratch"),
    }
    result = subprocess.run(
        [sys.executable, str(tmp / "runner.py"), str(REPO / "dags"), str(tmp / "scenarios.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    out: dict[str, Any] = {"catalog": catalog, "logs": {}, "runs": {}}
    current = None
    for line in result.stdout.splitlines():
        if line.startswith("### "):
            current = line.removeprefix("### scenario ")
            out["logs"][current] = []
        elif line.startswith('{"import_errors"'):
            out["parse"] = json.loads(line)
        elif line.startswith('{"scenario"'):
            run = json.loads(line)
            out["runs"][run["scenario"]] = run
        elif line.startswith('{"dag_ids_after"'):
            out["dag_ids_after"] = json.loads(line)["dag_ids_after"]
        elif current is not None:
            out["logs"][current].append(line)
    yield out
    catalog.engine.dispose()


def test_the_dag_parses_with_a_typed_form(dag_runs: dict[str, Any]) -> None:
    parse = dag_runs["parse"]
    assert parse["import_errors"] == {}
    assert "proseo_order_request" in parse["dag_ids"]
    assert parse["timetable"] == "NullTimetable"  # manual / REST trigger only
    assert parse["tags"] == ["proseo"] and parse["paused_at_creation"] is False
    form = parse["params"]
    assert all(p["title"] and p["description"] and p["section"] for p in form.values())
    assert form["mission"]["type"] == "string" and form["mission"]["enum"] == ["S5P", "SKY"]
    assert form["mission"]["default"] == "S5P"
    classes = form["requested_classes"]
    assert classes["type"] == "array" and classes["items"]["type"] == "string"
    assert {"L2__NO2___", "L3__NO2___", "SRC_CAT"} <= set(classes["examples"])
    assert "L0__ODB_1_" not in classes["examples"]  # input-only: cannot be requested
    assert classes["default"] == ["L3__NO2___"]
    for name in ("start", "stop", "execution_time"):
        assert form[name]["type"] == ["null", "string"] and form[name]["format"] == "date-time"
    assert form["identifier"]["type"] == ["null", "string"] and form["identifier"]["default"] is None
    assert form["processing_mode"]["enum"] == [None, "NRTI", "OFFL", "RPRO", "NIGHTLY", "DRP"]
    assert form["output_file_class"]["enum"] == [None, "OPER", "TEST"]
    assert form["slicing_type"]["enum"][0] is None and "TIME_SLICE" in form["slicing_type"]["enum"]
    assert form["on_input_timeout"]["enum"] == ["FAIL", "RUN_WITH_AVAILABLE"]
    assert (form["priority"]["type"], form["priority"]["minimum"], form["priority"]["maximum"]) == (
        "integer",
        1,
        100,
    )
    assert form["output_parameters"]["type"] == "object"
    assert form["output_parameters"]["default"] == {"*": {"collection": 1}}
    assert form["release"]["type"] == "boolean" and form["release"]["default"] is True


@pytest.mark.parametrize(
    ("scenario", "mission", "identifier"), [("s5p", "S5P", "no2-req"), ("sky", "SKY", "sky-night")]
)
def test_each_sample_mission_is_created_planned_and_released(
    dag_runs: dict[str, Any], scenario: str, mission: str, identifier: str
) -> None:
    run = dag_runs["runs"][scenario]
    assert run["state"] == "success", "\n".join(dag_runs["logs"][scenario][-40:])
    assert set(run["tasks"].values()) == {"success"}
    xcom = run["xcom"]
    assert xcom["create"]["created"] is True and xcom["approve"]["approved"] is True
    assert xcom["plan"]["planned"] is True and xcom["plan"]["plan"]["job_steps"] > 0
    released = xcom["release"]
    assert released["released"] is True and released["state"] == "RELEASED"
    assert released["dag_id"] == f"proseo__{mission}__{identifier}"
    assert (released["mission"], released["identifier"]) == (mission, identifier)
    assert sum(released["job_steps"].values()) == released["plan"]["job_steps"] and released["levels"] > 0
    with dag_runs["catalog"].session() as s:
        order = orders.get_order(s, mission, identifier)
        assert order.state == "RELEASED" and order.id == released["order_id"]
        assert order.dag_blueprint and order.dag_id == released["dag_id"]
    assert released["dag_id"] in dag_runs["dag_ids_after"]  # the shard files now build its DAG


def test_a_rerun_with_the_same_identifier_creates_no_second_order(dag_runs: dict[str, Any]) -> None:
    first, again = dag_runs["runs"]["s5p"]["xcom"], dag_runs["runs"]["s5p-again"]["xcom"]
    assert dag_runs["runs"]["s5p-again"]["state"] == "success"
    assert again["create"]["created"] is False and again["approve"]["approved"] is False
    assert again["plan"]["planned"] is False and again["release"]["released"] is False
    assert again["release"]["order_id"] == first["release"]["order_id"]
    assert again["release"]["dag_id"] == first["release"]["dag_id"]
    assert again["plan"]["plan"] == first["plan"]["plan"]
    with dag_runs["catalog"].session() as s:
        order = orders.get_order(s, "S5P", "no2-req")
        count = s.scalar(select(func.count()).where(ProcessingOrder.identifier == "no2-req"))
        operations = [e.operation for e in order.events]
    assert count == 1
    assert operations == ["create", "approve", "plan", "planned", "release", "released"]


@pytest.mark.parametrize(
    ("scenario", "identifier", "message"),
    [
        ("unknown-class", "bad-class", "requested_classes: unknown product class 'NOPE'"),
        (
            "stop-before-start",
            "bad-period",
            "stop, start: Value error, stop 2025-02-28T00:00:00+00:00 is not after",
        ),
    ],
)
def test_a_bad_request_fails_the_first_task_and_writes_nothing(
    dag_runs: dict[str, Any], scenario: str, identifier: str, message: str
) -> None:
    run = dag_runs["runs"][scenario]
    assert run["state"] == "failed"
    assert run["tasks"]["validate"] == "failed"
    assert {run["tasks"][t] for t in ("create", "approve", "plan", "release")} == {"upstream_failed"}
    assert run["xcom"] == {}
    assert any(message in line and "AirflowFailException" in line for line in dag_runs["logs"][scenario])
    with dag_runs["catalog"].session() as s:
        assert s.scalar(select(func.count()).where(ProcessingOrder.identifier == identifier)) == 0


def test_the_form_defaults_make_an_order_with_a_generated_identifier(dag_runs: dict[str, Any]) -> None:
    run = dag_runs["runs"]["form-defaults"]
    assert run["state"] == "success", "\n".join(dag_runs["logs"]["form-defaults"][-40:])
    released = run["xcom"]["release"]
    assert released["mission"] == "S5P" and released["state"] == "RELEASED"
    assert released["identifier"].startswith("L3__NO2-20250301T000000-")
    assert run["xcom"]["validate"]["identifier"] == released["identifier"]
    with dag_runs["catalog"].session() as s:
        assert s.scalar(select(func.count()).select_from(ProcessingOrder)) == 3  # s5p, sky, defaults


# --- the steps in-process, on both catalogue backends ---------------------------------------


def _params(**conf: Any) -> dict[str, Any]:
    """The form's values for ``conf`` (what Airflow hands the task as ``params``)."""
    defaults = {name: param.value for name, param in orq.request_params([]).items()}
    return {**defaults, "mission": "S5P", "output_parameters": {"*": {"collection": 1}}, **conf}


def _request(catalog: Catalog, run_id: str = "manual__1", **conf: Any) -> dict[str, Any]:
    conf = {"mission": "S5P", "requested_classes": ["L2__NO2___"], **conf}
    return orq.validate_request(catalog, _params(**conf), conf, run_id)


def test_the_form_falls_back_to_plain_fields_without_a_catalogue(tmp_path: Path, catalog: Catalog) -> None:
    missing = tmp_path / "nowhere" / "catalog.db"
    assert orq.known_missions(f"sqlite:///{missing}") == []
    assert not missing.parent.exists()  # parsing creates no catalogue
    assert orq.known_missions("postgresql://nobody@127.0.0.1:1/none") == []
    assert orq.known_missions(catalog.url) == []  # migrated but empty
    dag = orq.build_dag([])
    mission = dag.params.get_param("mission").schema
    assert mission["type"] == "string" and "enum" not in mission
    assert "examples" not in dag.params.get_param("requested_classes").schema
    assert [m.code for m in orq.known_missions(_loaded(catalog).url)] == ["S5P", "SKY"]


@pytest.mark.parametrize(
    ("conf", "field"),
    [
        ({"requested_classes": ["NOPE"]}, "requested_classes: unknown product class 'NOPE'"),
        ({"requested_classes": ["L0__ODB_1_"]}, "requested_classes: L0__ODB_1_ has no processor"),
        ({"requested_classes": []}, "requested_classes: List should have at least 1 item"),
        ({"stop": "2025-02-01T00:00:00Z"}, "stop, start: Value error, stop 2025-02-01"),
        ({"start": "yesterday"}, "start: Value error, invalid time 'yesterday'"),
        ({"processing_mode": "NIGHTLY"}, "processing_mode: 'NIGHTLY' is not one of NRTI, OFFL, RPRO"),
        ({"priority": 0}, "priority: Input should be greater than or equal to 1"),
        ({"identifier": "-x"}, "identifier: String should match pattern"),
        ({"slice_duration": "6h"}, "slice_duration: applies only with slicing_type TIME_SLICE"),
        ({"slicing_type": "CALENDAR_DAY", "slice_duration": "6h"}, "slicing_type: Value error, 'duration'"),
        ({"requested_class": ["L2__NO2___"]}, "unknown field(s) 'requested_class'"),
        ({"mission": "NOPE"}, "mission: mission 'NOPE' is not in the catalogue"),
        ({"output_parameters": {"*": {"collection": "one"}}}, "output_parameters.*.collection"),
    ],
)
def test_a_bad_request_names_its_field_and_writes_nothing(
    catalog: Catalog, conf: dict[str, Any], field: str
) -> None:
    _loaded(catalog)
    with pytest.raises(orq.OrderError) as caught:
        _request(catalog, **conf)
    assert field in str(caught.value)
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(ProcessingOrder)) == 0


def test_the_steps_skip_forward_after_a_crash_and_refuse_a_different_request(catalog: Catalog) -> None:
    _loaded(catalog)
    request = _request(catalog, identifier="crash", start="2025-03-01T00:00:00Z", stop="2025-03-01T03:00:00Z")
    assert orq.create_step(catalog, request)["created"] is True
    # The worker died after creating; a retry runs every step again.
    assert orq.create_step(catalog, request)["created"] is False
    assert orq.approve_step(catalog, request)["approved"] is True
    assert orq.approve_step(catalog, request)["approved"] is False
    planned = orq.plan_step(catalog, request)
    assert planned["planned"] is True and planned["state"] == "PLANNED"
    assert orq.plan_step(catalog, request)["planned"] is False
    released = orq.release_step(catalog, request)
    assert released["released"] is True and released["dag_id"] == "proseo__S5P__crash"
    assert orq.release_step(catalog, request)["note"] == "already RELEASED: release skipped"
    # The same identifier with another request is refused, naming what differs.
    other = _request(
        catalog,
        identifier="crash",
        requested_classes=["L2__O3____"],
        start="2025-03-01T00:00:00Z",
        stop="2025-03-01T03:00:00Z",
    )
    with pytest.raises(orq.RequestError, match=r"differs in: requested_classes\)"):
        orq.create_step(catalog, other)
    with catalog.session() as s:
        assert s.scalar(select(func.count()).select_from(ProcessingOrder)) == 1
        assert s.scalar(select(func.count()).where(OrderEvent.operation == "create")) == 1


def test_release_false_leaves_the_order_planned(catalog: Catalog) -> None:
    _loaded(catalog)
    request = _request(catalog, identifier="review", release=False, stop="2025-03-01T03:00:00Z")
    for step in (orq.create_step, orq.approve_step, orq.plan_step):
        step(catalog, request)
    result = orq.release_step(catalog, request)
    assert result["state"] == "PLANNED" and result["released"] is False and result["dag_id"] is None


def test_a_generated_identifier_is_stable_within_a_run() -> None:
    conf = {"requested_classes": ["L2__NO2___"]}
    _, first = orq.spec_from_params(_params(**conf), conf, "manual__2025-03-01T00:00:00+00:00")
    _, retry = orq.spec_from_params(_params(**conf), conf, "manual__2025-03-01T00:00:00+00:00")
    _, other = orq.spec_from_params(_params(**conf), conf, "manual__2025-03-02T00:00:00+00:00")
    assert first.identifier == retry.identifier != other.identifier
    assert first.identifier.startswith("L2__NO2-20250301T000000-")
